"""Forward latency of TTDense against Dense, both in `tf.function`.

Both layers are measured in the same run, in alternation, and the same mode (TensorFlow graph
mode, and graph mode compiled by XLA with ``jit_compile=True``), medians of
many repetitions, and the table reports the speed-up (Dense time / TTDense
time). Absolute times
depend on the machine; the ratios are what to compare with the paper (CPU,
25088 -> 4096, TT-rank 4: 16.1 ms vs 1.2 ms at batch 1, 13.4x; 97.2 ms vs
94.7 ms at batch 100, 1.03x).

Usage:
    python benchmarks/layer_speed.py [--repeats 50] [--threads 0]
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
from keras_tt import TTDense  # noqa: E402

CONFIGS = [
    # name, input width, units, TTDense arguments
    (
        "VGG fc6 25088x4096, rank 4",
        25088,
        4096,
        dict(tt_rank=4, in_modes=(2, 7, 8, 8, 7, 4), out_modes=(4,) * 6),
    ),
    (
        "MNIST 1024x1024, rank 8",
        1024,
        1024,
        dict(tt_rank=8, in_modes=(4, 8, 8, 4), out_modes=(4, 8, 8, 4)),
    ),
]
BATCHES = (1, 100)


MODES = {"graph": False, "XLA": True}


def compiled_forward(layer, input_dim, jit_compile):
    if not layer.built:
        layer.build((None, input_dim))
    return tf.function(
        lambda x: layer(x),
        input_signature=[tf.TensorSpec((None, input_dim), tf.float32)],
        jit_compile=jit_compile,
    )


def measure(repeats: int):
    rows = []
    for name, input_dim, units, tt_kwargs in CONFIGS:
        dense_layer = keras.layers.Dense(units)
        tt_layer = TTDense(units, **tt_kwargs)
        for mode, jit_compile in MODES.items():
            dense = compiled_forward(dense_layer, input_dim, jit_compile)
            tt = compiled_forward(tt_layer, input_dim, jit_compile)
            for batch in BATCHES:
                x = tf.constant(
                    np.random.default_rng(0).standard_normal(
                        (batch, input_dim)
                    ),
                    tf.float32,
                )
                t_dense, t_tt = interleaved_median_seconds(
                    [lambda: dense(x).numpy(), lambda: tt(x).numpy()],
                    repeats,
                    min_total=2.0,
                )
                rows.append(
                    dict(
                        layer=name,
                        mode=mode,
                        batch=batch,
                        dense_ms=1e3 * t_dense,
                        tt_ms=1e3 * t_tt,
                        speedup=t_dense / t_tt,
                        compression=tt_layer.compression_ratio,
                    )
                )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="intra-op threads (0: TensorFlow's default)",
    )
    args = parser.parse_args(argv)
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    rows = measure(args.repeats)
    print(
        format_table(
            [
                "layer",
                "mode",
                "batch",
                "Dense ms",
                "TTDense ms",
                "speed-up",
                "compression",
            ],
            [
                [
                    r["layer"],
                    r["mode"],
                    r["batch"],
                    f"{r['dense_ms']:.3f}",
                    f"{r['tt_ms']:.3f}",
                    f"{r['speedup']:.1f}x",
                    f"{r['compression']:,.0f}x",
                ]
                for r in rows
            ],
        )
    )
    print(
        f"\nTensorFlow {tf.__version__}, Keras {keras.__version__}, "
        f"{os.cpu_count()} CPUs; medians of >= {args.repeats} runs."
    )
    return rows


if __name__ == "__main__":
    main()
