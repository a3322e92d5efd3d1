"""Whole-model budget on an MLP: uniform rank + fine-tuning against the
allocated budget + data-aware init + distillation, at the same size.

    python examples/budget_mlp.py --dataset mnist --ratios 10 50
    python examples/budget_mlp.py --dataset fashion-mnist --ratios 10 50

MNIST: only the 10k test set is in ../shared/data/mnist; it is split
8,000 train / 2,000 held out (`keras_tt.datasets.load_mnist`). Fashion-
MNIST: the full 60k / 10k set (`keras_tt.datasets.load_fashion_mnist`).
Both are read from local files only (``--data``, or where
`keras_tt.datasets` looks).
"""

import argparse
import math
from pathlib import Path

import keras
import numpy as np

from keras_tt.data_aware import data_aware_init
from keras_tt.datasets import load_fashion_mnist
from keras_tt.datasets import load_mnist
from keras_tt.distillation import distill
from keras_tt.tensorize import tensorize


def load(dataset, root=None):
    """``(x_train, y_train, x_test, y_test)``, pixels in [0, 1]."""
    if dataset == "mnist":
        folder = None if root is None else Path(root) / "mnist"
        data = load_mnist(folder, download=False)
    else:
        folder = None if root is None else Path(root) / "fashion-mnist"
        data = load_fashion_mnist(folder, validation_size=0, download=False)
    return (
        data.x_train / 255.0,
        data.y_train.astype("int32"),
        data.x_test / 255.0,
        data.y_test.astype("int32"),
    )


def accuracy(model, x, y):
    return float(np.mean(np.argmax(model.predict(x, verbose=0), -1) == y))


def fine_tune(model, x, y, epochs):
    model.compile(
        "adam",
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(x, y, epochs=epochs, batch_size=128, verbose=0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument(
        "--data",
        default=None,
        help="folder holding mnist/ and fashion-mnist/ (default: searched "
        "as keras_tt.datasets does)",
    )
    parser.add_argument("--ratios", type=float, nargs="+", default=[10, 50])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--finetune-epochs", type=int, default=2)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    x_train, y_train, x_test, y_test = load(args.dataset, args.data)
    x_train = x_train.reshape(len(x_train), -1).astype("float32")
    x_test = x_test.reshape(len(x_test), -1).astype("float32")
    model = keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(512, activation="relu", name="fc1"),
            keras.layers.Dense(256, activation="relu", name="fc2"),
            keras.layers.Dense(10, name="head"),
        ]
    )
    fine_tune(model, x_train, y_train, args.epochs)
    dense = accuracy(model, x_test, y_test)
    print(f"| dense | {model.count_params():,} | 1x | {dense:.2%} | |")
    calibration = x_train[:1024]
    for ratio in args.ratios:
        budget = math.floor(model.count_params() / ratio)
        rank = 1
        while (
            tensorize(model, tt_rank=rank + 1, verbose=0).count_params()
            <= budget
        ):
            rank += 1
        uniform = tensorize(model, tt_rank=rank, verbose=0)
        u0 = accuracy(uniform, x_test, y_test)
        fine_tune(uniform, x_train, y_train, args.finetune_epochs)
        u1 = accuracy(uniform, x_test, y_test)
        ours = tensorize(
            model, model_ratio=ratio, calibration_data=calibration, verbose=0
        )
        data_aware_init(ours, model, calibration)
        o0 = accuracy(ours, x_test, y_test)
        distill(ours, model, x_train, y_train, epochs=args.finetune_epochs)
        o1 = accuracy(ours, x_test, y_test)
        allocation = ours.tensorize_report.allocation
        ranks, kept = allocation.ranks, allocation.chosen_method
        print(
            f"| {ratio:g}x uniform rank {rank} + fine-tune | "
            f"{uniform.count_params():,} | "
            f"{model.count_params() / uniform.count_params():.1f}x | "
            f"{u1:.2%} | before fine-tuning {u0:.2%} |"
        )
        print(
            f"| {ratio:g}x budget {ranks} ({kept} kept of "
            f"{allocation.candidates}) + data-aware + distill | "
            f"{ours.count_params():,} | "
            f"{model.count_params() / ours.count_params():.1f}x | "
            f"{o1:.2%} | before distillation {o0:.2%} |"
        )


if __name__ == "__main__":
    main()
