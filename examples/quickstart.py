"""keras_tt quickstart: a TT network on real MNIST, next to a dense one.

Trains the same 784 -> 1024 -> 10 network twice, once with `keras.layers.Dense`
and once with `keras_tt.TTDense`, on MNIST, then prints held-out accuracy,
parameter counts and compression, and checks that the TT model survives a
`.keras` save and load.

Data: ``--data PATH`` (a folder with the MNIST IDX files), else
``$KERAS_TT_MNIST_DIR``, else ``../shared/data/mnist`` beside the checkout
(the 10,000-image MNIST test set, split 8,000 train / 2,000 held-out), else
the Keras download (needs internet).

Usage:
    python examples/quickstart.py [--data PATH] [--epochs 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_tt  # noqa: E402
from keras_tt.datasets import load_mnist  # noqa: E402


def flatten(images):
    return images.reshape(len(images), -1).astype("float32") / 255.0


def dense_model():
    return keras.Sequential([
        keras.Input((784,)),
        keras.layers.Dense(1024, activation="relu", name="hidden"),
        keras.layers.Dense(10, activation="softmax", name="classifier"),
    ], name="dense_mlp")


def tt_model():
    return keras.Sequential([
        keras.Input((784,)),
        keras_tt.TTDense(1024, tt_rank=8, activation="relu", name="hidden"),
        keras_tt.TTDense(10, tt_rank=4, in_modes=(4, 8, 8, 4),
                         out_modes=(1, 2, 5, 1), activation="softmax",
                         name="classifier"),
    ], name="tt_mlp")


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
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(flatten(data.x_train), data.y_train, epochs=epochs,
              batch_size=100, verbose=0)
    _, accuracy = model.evaluate(flatten(data.x_test), data.y_test, verbose=0)
    return accuracy


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None,
                        help="folder with the MNIST IDX files")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    data = load_mnist(args.data)
    print(f"Data: {data.description}.")

    print(f"\n1. Train a dense and a TT network ({args.epochs} epochs each)")
    dense = dense_model()
    dense_acc = train(dense, data, args.epochs, args.seed)
    keras.utils.set_random_seed(args.seed)
    tt = tt_model()
    tt_acc = train(tt, data, args.epochs, args.seed)
    for layer in tt.layers:
        print(f"   {layer.name}: modes {layer.in_modes} x {layer.out_modes}, "
              f"TT-ranks {layer.tt_ranks}, {layer.num_core_params:,} core "
              f"parameters, {layer.compression_ratio:,.1f}x smaller than Dense")
    print(f"   {'model':<10} {'kernel params':>14} {'all params':>11} "
          f"{'held-out accuracy':>18}")
    for name, model, acc in (("dense", dense, dense_acc), ("TT", tt, tt_acc)):
        print(f"   {name:<10} {kernel_params(model):>14,} "
              f"{model.count_params():>11,} {acc:>18.2%}")
    print(f"   kernel compression {kernel_params(dense) / kernel_params(tt):,.1f}x, "
          f"whole model {dense.count_params() / tt.count_params():,.1f}x")

    print("\n2. Save and reload the TT model as a .keras file")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "tt_mlp.keras")
        tt.save(path)
        reloaded = keras.saving.load_model(path)
        sample = flatten(data.x_test[:256])
        same = np.array_equal(reloaded.predict(sample, verbose=0),
                              tt.predict(sample, verbose=0))
        print(f"   {os.path.getsize(path):,} bytes; reloaded outputs identical: "
              f"{same}")
    return {"dense_accuracy": dense_acc, "tt_accuracy": tt_acc}


if __name__ == "__main__":
    main()
