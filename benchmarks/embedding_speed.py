"""TTEmbedding against Embedding: lookup latency and memory, TF and LiteRT.

For each table shape, a `keras.layers.Embedding` and a `keras_tt.TTEmbedding`
of the same shape look up a batch of random ids (batch 1 and 256), timed in
alternation (`interleaved_median_seconds`) as ``tf.function`` graphs and,
exported with `keras_tt.export_tflite` (float32, fixed batch), in the LiteRT
interpreter (XNNPACK, one thread). Memory is the bytes of the weights and
the size of the ``.tflite`` file. Ratios are Embedding / TTEmbedding:
above 1 means the TT layer is faster or smaller.

Usage:
    python benchmarks/embedding_speed.py [--min-seconds 0.5] [--no-litert]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.timing import format_table  # noqa: E402
from benchmarks.timing import interleaved_median_seconds  # noqa: E402
from keras_tt import TTEmbedding  # noqa: E402
from keras_tt import export_tflite  # noqa: E402

# (label, vocabulary, width, TT-rank)
TABLES = [
    ("hashed n-grams 2^18 x 64", 2**18, 64, 16),
    ("BERT-base tokens 30522 x 768", 30522, 768, 32),
]


def _model(layer, batch):
    ids = keras.Input((1,), batch_size=batch, dtype="int32")
    return keras.Model(ids, layer(ids))


def _tf_fn(model):
    fn = tf.function(lambda ids: model(ids, training=False))
    return lambda ids: fn(ids).numpy()


def _litert_fn(model, batch, folder, name, data):
    from ai_edge_litert.interpreter import Interpreter

    path = os.path.join(folder, f"{name}_{batch}.tflite")
    export_tflite(
        model,
        path,
        representative_data=data,
        batch_size=batch,
        verbose=False,
    )
    interpreter = Interpreter(model_path=path, num_threads=1)
    interpreter.allocate_tensors()
    index = interpreter.get_input_details()[0]["index"]
    out = interpreter.get_output_details()[0]["index"]

    def run(ids):
        interpreter.set_tensor(index, ids)
        interpreter.invoke()
        return interpreter.get_tensor(out)

    return run, os.path.getsize(path)


def measure(min_seconds, litert):
    rng = np.random.default_rng(0)
    rows = []
    folder = tempfile.mkdtemp()
    for label, vocab, width, rank in TABLES:
        dense = keras.layers.Embedding(vocab, width)
        tt = TTEmbedding(vocab, width, rank)
        dense.build()
        tt.build()
        memory = dense.count_params() * 4, tt.count_params() * 4
        rows.append(
            (
                label,
                "weights (MB)",
                f"{memory[0] / 1e6:.2f}",
                f"{memory[1] / 1e6:.3f}",
                f"{memory[0] / memory[1]:.0f}x",
            )
        )
        for batch in (1, 256):
            ids = rng.integers(0, vocab, size=(batch, 1)).astype("int32")
            models = _model(dense, batch), _model(tt, batch)
            fns = [_tf_fn(m) for m in models]
            times = interleaved_median_seconds(
                [lambda f=f, i=ids: f(i) for f in fns], min_total=min_seconds
            )
            rows.append(
                (
                    label,
                    f"TF graph, batch {batch} (us)",
                    f"{times[0] * 1e6:.0f}",
                    f"{times[1] * 1e6:.0f}",
                    f"{times[0] / times[1]:.2f}x",
                )
            )
            if not litert:
                continue
            data = rng.integers(0, vocab, size=(8, 1)).astype("int32")
            runs, sizes = zip(
                *(
                    _litert_fn(m, batch, folder, n, data)
                    for m, n in zip(models, ("dense", "tt"))
                )
            )
            times = interleaved_median_seconds(
                [lambda r=r, i=ids: r(i) for r in runs], min_total=min_seconds
            )
            rows.append(
                (
                    label,
                    f"LiteRT, batch {batch} (us)",
                    f"{times[0] * 1e6:.0f}",
                    f"{times[1] * 1e6:.0f}",
                    f"{times[0] / times[1]:.2f}x",
                )
            )
            if batch == 1:
                rows.append(
                    (
                        label,
                        ".tflite size (MB)",
                        f"{sizes[0] / 1e6:.2f}",
                        f"{sizes[1] / 1e6:.3f}",
                        f"{sizes[0] / sizes[1]:.0f}x",
                    )
                )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-seconds", type=float, default=0.5)
    parser.add_argument("--no-litert", action="store_true")
    args = parser.parse_args(argv)
    rows = measure(args.min_seconds, not args.no_litert)
    print(
        format_table(
            ["table", "measure", "Embedding", "TTEmbedding", "ratio"], rows
        )
    )


if __name__ == "__main__":
    main()
