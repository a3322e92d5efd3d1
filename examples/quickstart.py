"""keras_tt quickstart: TT layers on real MNIST, from training to LiteRT.

1. Trains the same 784 -> 1024 -> 10 network twice, once with
   `keras.layers.Dense` and once with `keras_tt.TTDense`, and prints
   held-out accuracy, parameter counts and compression.
2. Saves and reloads the TT model as a `.keras` file.
3. Compresses the trained dense network with `keras_tt.tensorize` (TT-SVD
   of its hidden layer), prints the report and the accuracy right after and
   after a short fine-tune.
4. Exports the dense and the compressed model to TFLite (float32, and int8
   for the compressed one) with builtin ops only, runs them in the LiteRT
   interpreter on the held-out images and prints accuracy, file size and
   latency (batch 1, one thread).

Data: `keras_tt.datasets.load_mnist` reads ``--data PATH`` (a folder with
the MNIST IDX files), else ``$KERAS_TT_MNIST_DIR``, else
``~/.keras_tt/data/mnist``, else ``shared/data/mnist`` in the working
directory or a parent (here: the 10,000-image MNIST test set, split 8,000
train / 2,000 held-out), else the Keras download (needs internet).

Usage:
    python examples/quickstart.py [--data PATH] [--epochs 5] [--tt-rank 16]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_tt  # noqa: E402
from keras_tt.datasets import DataNotFoundError  # noqa: E402
from keras_tt.datasets import load_mnist  # noqa: E402


def flatten(images):
    return images.reshape(len(images), -1).astype("float32") / 255.0


def dense_model():
    return keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(1024, activation="relu", name="hidden"),
            keras.layers.Dense(10, activation="softmax", name="classifier"),
        ],
        name="dense_mlp",
    )


def tt_model():
    return keras.Sequential(
        [
            keras.Input((784,)),
            keras_tt.TTDense(1024, tt_rank=8, activation="relu", name="hidden"),
            keras_tt.TTDense(
                10,
                tt_rank=4,
                in_modes=(4, 8, 8, 4),
                out_modes=(1, 2, 5, 1),
                activation="softmax",
                name="classifier",
            ),
        ],
        name="tt_mlp",
    )


def kernel_params(model):
    """Weights held by the kernels (dense matrices or TT-cores), no biases."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras_tt.TTDense):
            total += layer.num_core_params
        elif isinstance(layer, keras.layers.Dense):
            total += int(np.prod(layer.kernel.shape))
    return total


def train(model, data, epochs, seed):
    keras.utils.set_random_seed(seed)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(
        flatten(data.x_train),
        data.y_train,
        epochs=epochs,
        batch_size=100,
        verbose=0,
    )
    _, accuracy = model.evaluate(flatten(data.x_test), data.y_test, verbose=0)
    return accuracy


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", default=None, help="folder with the MNIST IDX files"
    )
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--tt-rank",
        type=int,
        default=16,
        help="TT-rank for compressing the dense network",
    )
    parser.add_argument("--fine-tune-epochs", type=int, default=2)
    args = parser.parse_args(argv)

    try:
        data = load_mnist(args.data)
    except DataNotFoundError as error:
        hint = "" if "--data" in str(error) else " Or pass --data PATH."
        print(f"quickstart.py: {error}{hint}", file=sys.stderr)
        sys.exit(2)
    print(f"Data: {data.description}.")

    print(f"\n1. Train a dense and a TT network ({args.epochs} epochs each)")
    dense = dense_model()
    dense_acc = train(dense, data, args.epochs, args.seed)
    keras.utils.set_random_seed(args.seed)
    tt = tt_model()
    tt_acc = train(tt, data, args.epochs, args.seed)
    for layer in tt.layers:
        print(
            f"   {layer.name}: modes {layer.in_modes} x {layer.out_modes}, "
            f"TT-ranks {layer.tt_ranks}, {layer.num_core_params:,} core "
            f"parameters, {layer.compression_ratio:,.1f}x smaller than Dense"
        )
    print(
        f"   {'model':<10} {'kernel params':>14} {'all params':>11} "
        f"{'held-out accuracy':>18}"
    )
    for name, model, acc in (("dense", dense, dense_acc), ("TT", tt, tt_acc)):
        print(
            f"   {name:<10} {kernel_params(model):>14,} "
            f"{model.count_params():>11,} {acc:>18.2%}"
        )
    kernel_ratio = kernel_params(dense) / kernel_params(tt)
    model_ratio = dense.count_params() / tt.count_params()
    print(
        f"   kernel compression {kernel_ratio:,.1f}x, "
        f"whole model {model_ratio:,.1f}x"
    )

    print("\n2. Save and reload the TT model as a .keras file")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "tt_mlp.keras")
        tt.save(path)
        reloaded = keras.saving.load_model(path)
        sample = flatten(data.x_test[:256])
        same = np.array_equal(
            reloaded.predict(sample, verbose=0), tt.predict(sample, verbose=0)
        )
        print(
            f"   {os.path.getsize(path):,} bytes; reloaded outputs identical: "
            f"{same}"
        )
    print(
        f"\n3. Compress the trained dense network with TT-SVD "
        f"(tensorize, tt_rank={args.tt_rank})"
    )
    compressed = keras_tt.tensorize(dense, tt_rank=args.tt_rank, verbose=0)
    print(indent(str(compressed.tensorize_report)))
    x_test = flatten(data.x_test)
    _, after_svd = compressed.evaluate(x_test, data.y_test, verbose=0)
    compressed.fit(
        flatten(data.x_train),
        data.y_train,
        epochs=args.fine_tune_epochs,
        batch_size=100,
        verbose=0,
    )
    _, after_tuning = compressed.evaluate(x_test, data.y_test, verbose=0)
    print(
        f"   held-out accuracy: dense {dense_acc:.2%}, right after TT-SVD "
        f"{after_svd:.2%}, after {args.fine_tune_epochs} fine-tuning "
        f"epochs {after_tuning:.2%}"
    )

    print("\n4. Export to TFLite (builtin ops only) and run in LiteRT")
    results = export_and_evaluate(dense, compressed, data)
    return {
        "dense_accuracy": dense_acc,
        "tt_accuracy": tt_acc,
        "tensorized_accuracy": after_svd,
        "fine_tuned_accuracy": after_tuning,
        "litert": results,
    }


def indent(text, prefix="   "):
    return "\n".join(prefix + line for line in text.splitlines())


def export_and_evaluate(dense, compressed, data):
    """Export three .tflite files and measure them on the held-out images."""
    from keras_tt.export import evaluate_tflite

    x_test = flatten(data.x_test)
    calibration = flatten(data.x_train[:500])
    runs = [
        ("dense, float32", dense, None),
        ("TT, float32", compressed, None),
        ("TT, int8", compressed, "int8"),
    ]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for label, model, quantization in runs:
            path = os.path.join(folder, label.replace(", ", "_") + ".tflite")
            keras_tt.export_tflite(
                model,
                path,
                quantization=quantization,
                representative_data=calibration,
                validation_data=(x_test[:500], data.y_test[:500]),
                verbose=False,
            )
            result = evaluate_tflite(path, x_test, data.y_test)
            rows.append((label, result))
    dense_result = rows[0][1]
    print(
        f"   {'model':<16} {'file size':>11} {'accuracy':>9} "
        f"{'latency (batch 1, 1 thread)':>28}"
    )
    for label, result in rows:
        size_ratio = dense_result["file_size"] / result["file_size"]
        speedup = dense_result["latency_ms"] / result["latency_ms"]
        print(
            f"   {label:<16} {result['file_size']:>11,} "
            f"{result['accuracy']:>9.2%} {result['latency_ms']:>10.3f} ms"
            f"   ({size_ratio:,.1f}x smaller, {speedup:,.1f}x faster)"
        )
    return {
        label: {k: v for k, v in result.items() if k != "outputs"}
        for label, result in rows
    }


if __name__ == "__main__":
    main()
