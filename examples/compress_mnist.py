"""Compress a trained MNIST MLP with `tensorize`, then fine-tune it.

The network of t3f's compression tutorial: 784 -> 625 (ReLU) -> 10. It is
trained as a dense model, its 784 x 625 hidden layer is replaced by a
TT-layer initialised by TT-SVD at TT-rank 16 (t3f's modes 784 = 7*4*7*4,
625 = 5^4), and the result is fine-tuned briefly. Accuracy is reported on
held-out data before tensorizing, right after, and after fine-tuning.

Data: the MNIST files in ``../shared/data/mnist`` hold only the 10,000-image
test set, split into 8,000 training and 2,000 held-out images (not the
60,000-image training set t3f used); every printed figure says so.

    python examples/compress_mnist.py [--data PATH] [--epochs 8]
        [--finetune-epochs 6] [--tt-rank 16]

The core is importable: ``run(data_path=None, ...)`` returns a dict.
"""

from __future__ import annotations

import argparse
import sys
import time

import keras
import numpy as np

import keras_tt
from keras_tt.datasets import DataNotFoundError
from keras_tt.datasets import load_mnist

T3F_MODES = ((7, 4, 7, 4), (5, 5, 5, 5))
# t3f's tutorial (full MNIST, 60k training images): accuracy right after
# TT-SVD of the 784 x 625 layer at TT-rank 16, and after fine-tuning.
T3F_AFTER_TT_SVD = 0.64
T3F_AFTER_FINETUNE = 0.977


def build_mlp(hidden: int = 625) -> keras.Model:
    """The dense baseline: 784 -> ``hidden`` (ReLU) -> 10 (softmax)."""
    return keras.Sequential(
        [
            keras.Input((784,), name="pixels"),
            keras.layers.Dense(hidden, activation="relu", name="hidden"),
            keras.layers.Dense(10, activation="softmax", name="logits"),
        ],
        name="mnist_mlp",
    )


def _prepare(images):
    return images.reshape(len(images), -1).astype("float32") / 255.0


def _accuracy(model, x, y) -> float:
    predictions = model.predict(x, batch_size=500, verbose=0)
    return float(np.mean(np.argmax(predictions, axis=1) == y))


def run(
    data_path=None,
    epochs: int = 8,
    finetune_epochs: int = 6,
    tt_rank: int = 16,
    modes=T3F_MODES,
    batch_size: int = 64,
    seed: int = 0,
    verbose: int = 1,
) -> dict:
    """Train, tensorize, fine-tune; return the figures as a dict.

    Args:
        data_path: folder with the MNIST IDX files (see
            `keras_tt.datasets.load_mnist`).
        epochs: training epochs of the dense baseline.
        finetune_epochs: epochs of fine-tuning after TT-SVD.
        tt_rank: TT-rank of the compressed hidden layer.
        modes: ``(in_modes, out_modes)`` of the hidden layer, or ``None``
            for automatic modes.
        batch_size: batch size for training and fine-tuning.
        seed: seed for Keras, NumPy and TensorFlow.
        verbose: 0 silent, 1 report and progress.

    Returns:
        A dict with ``data`` (where the figures come from),
        ``dense_accuracy``, ``tt_svd_accuracy``, ``finetuned_accuracy``,
        ``rel_error`` (TT-SVD of the hidden kernel), ``layer_compression``,
        ``model_compression``, ``params_before``, ``params_after``,
        ``seconds`` (per stage) and ``report`` (the `CompressionReport`).
    """
    keras.utils.set_random_seed(seed)
    data = load_mnist(data_path)
    x_train, y_train = _prepare(data.x_train), data.y_train
    x_test, y_test = _prepare(data.x_test), data.y_test
    seconds = {}

    # 1. The dense baseline.
    start = time.perf_counter()
    model = build_mlp()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, verbose=0)
    seconds["train"] = time.perf_counter() - start
    dense_accuracy = _accuracy(model, x_test, y_test)

    # 2. TT-SVD of the hidden layer.
    start = time.perf_counter()
    settings = {"tt_rank": tt_rank}
    if modes is not None:
        settings.update(in_modes=modes[0], out_modes=modes[1])
    tt_model = keras_tt.tensorize(
        model, layers={"hidden": settings}, verbose=verbose
    )
    seconds["tensorize"] = time.perf_counter() - start
    tt_svd_accuracy = _accuracy(tt_model, x_test, y_test)

    # 3. Fine-tuning (tt_model is compiled like the original, fresh Adam).
    start = time.perf_counter()
    tt_model.fit(
        x_train,
        y_train,
        epochs=finetune_epochs,
        batch_size=batch_size,
        verbose=0,
    )
    seconds["finetune"] = time.perf_counter() - start
    finetuned_accuracy = _accuracy(tt_model, x_test, y_test)

    report = tt_model.tensorize_report
    return {
        "data": data.description,
        "dense_accuracy": dense_accuracy,
        "tt_svd_accuracy": tt_svd_accuracy,
        "finetuned_accuracy": finetuned_accuracy,
        "rel_error": report.layers[0].rel_error,
        "ranks": report.layers[0].ranks,
        "layer_compression": report.layers[0].compression,
        "model_compression": report.compression,
        "params_before": report.params_before,
        "params_after": report.params_after,
        "seconds": seconds,
        "report": report,
    }


def format_results(results: dict, epochs: int, finetune_epochs: int) -> str:
    """The figures side by side with t3f's tutorial, as Markdown."""
    r = results
    return "\n".join(
        [
            f"Held-out accuracy, 784x625 hidden layer at TT-rank "
            f"{max(r['ranks'])} (data: {r['data']}; held-out = the 2,000 "
            "images not used for training)",
            "",
            "| stage | keras_tt (8,000 train / 2,000 held-out) "
            "| t3f tutorial (60k train / 10k test) |",
            "|---|---:|---:|",
            f"| dense baseline ({epochs} epochs) "
            f"| {r['dense_accuracy']:.2%} | - |",
            f"| right after TT-SVD (rel. error {r['rel_error']:.3f}) "
            f"| {r['tt_svd_accuracy']:.2%} | {T3F_AFTER_TT_SVD:.0%} |",
            f"| after fine-tuning ({finetune_epochs} epochs) "
            f"| {r['finetuned_accuracy']:.2%} | {T3F_AFTER_FINETUNE:.1%} |",
            "",
            f"Hidden layer: {r['layer_compression']:.1f}x fewer kernel "
            f"parameters; whole model: {r['params_before']:,} -> "
            f"{r['params_after']:,} parameters "
            f"({r['model_compression']:.1f}x).",
            "Time: train {train:.1f} s, tensorize {tensorize:.1f} s, fine-tune "
            "{finetune:.1f} s.".format(**r["seconds"]),
        ]
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", default=None, help="folder with the MNIST IDX files"
    )
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--finetune-epochs", type=int, default=6)
    parser.add_argument("--tt-rank", type=int, default=16)
    parser.add_argument(
        "--auto-modes",
        action="store_true",
        help="let keras_tt pick the modes instead of t3f's",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        results = run(
            data_path=args.data,
            epochs=args.epochs,
            finetune_epochs=args.finetune_epochs,
            tt_rank=args.tt_rank,
            modes=None if args.auto_modes else T3F_MODES,
            seed=args.seed,
        )
    except DataNotFoundError as error:
        hint = "" if "--data" in str(error) else " Or pass --data PATH."
        print(f"compress_mnist.py: {error}{hint}", file=sys.stderr)
        return 2
    print()
    print(format_results(results, args.epochs, args.finetune_epochs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
