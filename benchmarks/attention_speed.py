"""TT attention against dense attention: one BERT-base-sized block.

Times `keras.layers.MultiHeadAttention` (768 wide, 12 heads) and
`keras_tt.TTMultiHeadAttention` with all four projections in TT format, on
the same inputs, in alternation (`interleaved_median_seconds`), as
``tf.function`` graphs. Ratios are dense / TT: above 1 means the TT block
is faster or smaller.

Usage:
    python benchmarks/attention_speed.py [--min-seconds 0.5]
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.timing import format_table  # noqa: E402
from benchmarks.timing import interleaved_median_seconds  # noqa: E402
from keras_tt import TTMultiHeadAttention  # noqa: E402

WIDTH, HEADS = 768, 12
PROJECTIONS = ("query", "key", "value", "output")


def _fn(layer, x):
    fn = tf.function(lambda x: layer(x, x))
    return lambda: fn(x).numpy()


def measure(min_seconds, ranks=(16, 32), shapes=((1, 128), (8, 128))):
    rng = np.random.default_rng(0)
    rows = []
    for batch, length in shapes:
        x = tf.constant(
            rng.standard_normal((batch, length, WIDTH)).astype("float32")
        )
        dense = keras.layers.MultiHeadAttention(HEADS, WIDTH // HEADS)
        dense(x, x)
        for rank in ranks:
            tt = TTMultiHeadAttention(
                HEADS,
                WIDTH // HEADS,
                tt_projections={p: {"tt_rank": rank} for p in PROJECTIONS},
            )
            tt(x, x)
            times = interleaved_median_seconds(
                [_fn(dense, x), _fn(tt, x)], min_total=min_seconds
            )
            rows.append(
                (
                    f"{batch} x {length}",
                    rank,
                    f"{dense.count_params():,}",
                    f"{tt.count_params():,}",
                    f"{dense.count_params() / tt.count_params():.0f}x",
                    f"{times[0] * 1e3:.2f}",
                    f"{times[1] * 1e3:.2f}",
                    f"{times[0] / times[1]:.2f}x",
                )
            )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-seconds", type=float, default=0.5)
    args = parser.parse_args(argv)
    headers = [
        "batch x length",
        "TT-rank",
        "dense params",
        "TT params",
        "smaller",
        "dense (ms)",
        "TT (ms)",
        "speed-up",
    ]
    print(format_table(headers, measure(args.min_seconds)))


if __name__ == "__main__":
    main()
