"""Accuracy of the two TT layouts at the same size: balanced against fast.

Trains a Fashion-MNIST MLP (784-512-512-10) on 55,000 images of the
official training set (5,000 held out by `load_fashion_mnist`, unused
here) and tests on the official 10,000 test images. Then it compresses
both hidden `Dense` layers with `keras_tt.tensorize` at the same
compression ratio (``target_ratio``, the TT-rank chosen per layer to reach
it) in two layouts: the automatic, balanced modes (`keras_tt.auto_modes`,
four cores) and the two-core modes of ``modes="fast"``
(`keras_tt.fast_modes`), which run several times faster in LiteRT. It
reports the test accuracy right after TT-SVD and after one epoch of
fine-tuning, the hidden layers' weights and the relative error of each
kernel.

Usage:
    python benchmarks/fast_modes_accuracy.py [--ratios 10 30] [--epochs 3]
        [--data PATH]
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras_tt  # noqa: E402
from benchmarks.timing import format_table  # noqa: E402
from keras_tt.datasets import load_fashion_mnist  # noqa: E402

HIDDEN = ("hidden_1", "hidden_2")


def build_mlp():
    return keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(512, activation="relu", name="hidden_1"),
            keras.layers.Dense(512, activation="relu", name="hidden_2"),
            keras.layers.Dense(10, name="logits"),
        ]
    )


def compile_model(model):
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def accuracy(model, x, y):
    logits = model.predict(x, batch_size=1000, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == y))


def kernel_error(dense_model, tt_model, name):
    kernel = keras.ops.convert_to_numpy(dense_model.get_layer(name).kernel)
    approx = tt_model.get_layer(name).full_kernel()
    return np.linalg.norm(approx - kernel) / np.linalg.norm(kernel)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ratios", nargs="+", type=float, default=[10, 30])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--data", default=None, help="Fashion-MNIST folder")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    data = load_fashion_mnist(args.data, download=False)
    x_train = data.x_train.reshape(-1, 784).astype("float32") / 255.0
    x_test = data.x_test.reshape(-1, 784).astype("float32") / 255.0
    y_train, y_test = data.y_train, data.y_test
    keras.utils.set_random_seed(args.seed)
    dense = compile_model(build_mlp())
    dense.fit(x_train, y_train, batch_size=128, epochs=args.epochs, verbose=0)
    dense_weights = sum(dense.get_layer(n).count_params() for n in HIDDEN)
    dense_accuracy = f"{100 * accuracy(dense, x_test, y_test):.2f}"
    rows = [["Dense", "1x", "-", f"{dense_weights:,}", dense_accuracy, ""]]
    for ratio in args.ratios:
        for layout in ("balanced", "fast"):
            modes = "fast" if layout == "fast" else None
            keras.utils.set_random_seed(args.seed)
            tt = keras_tt.tensorize(
                dense,
                target_ratio=ratio,
                layers=list(HIDDEN),
                modes=modes,
                verbose=0,
            )
            errors = [kernel_error(dense, tt, name) for name in HIDDEN]
            weights = sum(tt.get_layer(name).count_params() for name in HIDDEN)
            before = accuracy(tt, x_test, y_test)
            compile_model(tt).fit(
                x_train, y_train, batch_size=128, epochs=1, verbose=0
            )
            after = accuracy(tt, x_test, y_test)
            layer = tt.get_layer("hidden_2")
            rows.append(
                [
                    f"TT {layout}",
                    f"{ratio:g}x",
                    f"{layer.in_modes} x {layer.out_modes}, ranks "
                    f"{layer.tt_ranks[1:-1]}",
                    f"{weights:,}",
                    f"{100 * before:.2f} -> {100 * after:.2f}",
                    ", ".join(f"{e:.3f}" for e in errors),
                ]
            )
            print("  " + " | ".join(rows[-1]), flush=True)
    print()
    print(
        f"Fashion-MNIST MLP 784-512-512-10, {args.epochs} epochs dense, "
        "hidden layers tensorized, 1 epoch of fine-tuning; seed "
        f"{args.seed}; {data.description}"
    )
    print(
        format_table(
            [
                "model",
                "ratio",
                "hidden_2 layout",
                "hidden weights",
                "test accuracy % (TT-SVD -> 1 epoch)",
                "kernel rel. error",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
