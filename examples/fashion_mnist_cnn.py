"""A small ResNet on Fashion-MNIST: dense, TT convolutions, Tucker-2.

The network is the kind people train for Fashion-MNIST: a 3x3 stem with
batch norm, max pooling, two residual blocks (3x3 convolutions with batch
norm, 64 then 128 channels, a strided 1x1 projection shortcut), global
average pooling and a softmax head; 290,730 parameters, 99% of them in
convolutions. It is trained dense, then compressed to a whole-model
compression of 5x, 10x and 20x (every convolution and the head included in
the count) in two ways, each followed by the same brief fine-tuning:

- ``tt``: `keras_tt.tensorize` (every Conv2D and the Dense head at one
  uniform TT-rank, the largest that reaches the compression);
- ``tucker2``: the obvious baseline at the same size, a Tucker-2 / SVD
  low-rank convolution (Kim et al. 2016: 1x1 -> kxk -> 1x1, its factors
  from a truncated SVD), which is `keras_tt.TTConv2D` with one channel
  mode per side, and a rank-r SVD of the head.

Data: the official split of ``../shared/data/fashion-mnist`` (60,000
training images, 5,000 of them held out for validation; figures on the
10,000-image test set).

    python examples/fashion_mnist_cnn.py [--data PATH] [--epochs 4]
        [--finetune-epochs 2] [--ratios 5 10 20] [--out results.json]

The core is importable: ``run(...)`` returns a dict.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_tt  # noqa: E402
from keras_tt.datasets import DataNotFoundError  # noqa: E402
from keras_tt.datasets import load_fashion_mnist  # noqa: E402
from keras_tt.layers.tt_conv import resolve_conv_layout  # noqa: E402
from keras_tt.modes import resolve_layout  # noqa: E402

L = keras.layers
# Kernels at least this large are compressed (all but the 288-entry stem).
MIN_PARAMS = 1000


def _block(x, filters, stride, name, momentum=0.99):
    shortcut = x
    y = L.Conv2D(
        filters,
        3,
        strides=stride,
        padding="same",
        use_bias=False,
        name=f"{name}_conv1",
    )(x)
    y = L.ReLU()(L.BatchNormalization(momentum=momentum, name=f"{name}_bn1")(y))
    y = L.Conv2D(
        filters, 3, padding="same", use_bias=False, name=f"{name}_conv2"
    )(y)
    y = L.BatchNormalization(momentum=momentum, name=f"{name}_bn2")(y)
    if stride != 1 or shortcut.shape[-1] != filters:
        shortcut = L.Conv2D(
            filters, 1, strides=stride, use_bias=False, name=f"{name}_proj"
        )(shortcut)
        shortcut = L.BatchNormalization(momentum=momentum, name=f"{name}_bnp")(
            shortcut
        )
    return L.ReLU()(L.Add()([y, shortcut]))


def build_resnet(bn_momentum: float = 0.99) -> keras.Model:
    """The dense network (290,730 parameters).

    ``bn_momentum``: of the batch norms' moving statistics. Keras's 0.99
    needs several hundred steps before they match the batch statistics; a
    run of a few hundred steps in all wants 0.9.
    """
    inputs = keras.Input((28, 28, 1), name="image")
    x = L.Conv2D(32, 3, padding="same", use_bias=False, name="stem")(inputs)
    x = L.ReLU()(L.BatchNormalization(momentum=bn_momentum, name="stem_bn")(x))
    x = L.MaxPooling2D()(x)
    x = _block(x, 64, 1, "b1", bn_momentum)
    x = _block(x, 128, 2, "b2", bn_momentum)
    x = L.GlobalAveragePooling2D()(x)
    outputs = L.Dense(10, activation="softmax", name="head")(x)
    return keras.Model(inputs, outputs, name="fashion_resnet")


def _prepare(images):
    return (images.astype("float32") / 255.0)[..., None]


def _accuracy(model, x, y) -> float:
    predictions = model.predict(x, batch_size=500, verbose=0)
    return float(np.mean(np.argmax(predictions, axis=1) == y))


def cosine_adam(learning_rate, steps):
    """Adam with a cosine decay of the learning rate to 0 over ``steps``."""
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps)
    return keras.optimizers.Adam(schedule)


def _compile(model, learning_rate, steps):
    model.compile(
        cosine_adam(learning_rate, steps),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )


def train(
    model, x, y, learning_rate, epochs, batch_size, validation_data, verbose
):
    """Compile with cosine decay over the run, fit; the seconds taken."""
    steps = epochs * -(-len(x) // batch_size)
    _compile(model, learning_rate, steps)
    start = time.perf_counter()
    model.fit(
        x,
        y,
        batch_size=batch_size,
        epochs=epochs,
        validation_data=validation_data,
        verbose=verbose,
    )
    return time.perf_counter() - start


def _selected(model):
    return [
        layer
        for layer in model.layers
        if isinstance(layer, (L.Conv2D, L.Dense))
        and int(np.prod(layer.kernel.shape)) >= MIN_PARAMS
    ]


def _baseline_modes(layer):
    """Channel modes that make a TT layer the Tucker-2 / SVD baseline.

    A kxk kernel with one mode per side is Tucker-2 (1x1 -> kxk -> 1x1); a
    1x1 kernel or a Dense one with modes ``(c_in, 1) x (1, c_out)`` is the
    rank-r SVD ``U V``.
    """
    c_in, c_out = (int(s) for s in layer.kernel.shape[-2:])
    spatial = int(np.prod(layer.kernel.shape[:-2]))
    if isinstance(layer, L.Dense) or spatial == 1:
        return (c_in, 1), (1, c_out)
    return (c_in,), (c_out,)


def _params_at_rank(model, rank, tucker) -> int:
    """Whole-model parameters with every selected kernel at ``rank``."""
    total = model.count_params()
    for layer in _selected(model):
        c_in, c_out = (int(s) for s in layer.kernel.shape[-2:])
        size = int(np.prod(layer.kernel.shape))
        modes = _baseline_modes(layer) if tucker else (None, None)
        if isinstance(layer, L.Dense):
            new = resolve_layout(
                c_in, c_out, rank, *modes, warn=False
            ).num_params
        else:
            kernel_size = tuple(int(s) for s in layer.kernel.shape[:-2])
            new = resolve_conv_layout(c_in, c_out, kernel_size, rank, *modes)[
                1
            ].num_params
        total += new - size
    return total


def rank_for_model_ratio(model, ratio, tucker=False) -> int:
    """The largest uniform rank whose whole model is >= ``ratio`` smaller."""
    before = model.count_params()
    best = None
    for rank in range(1, 257):
        if before / _params_at_rank(model, rank, tucker) < ratio:
            break
        best = rank
    if best is None:
        raise ValueError(f"No rank compresses the model {ratio}x.")
    return best


def tucker2(model, rank) -> keras.Model:
    """The baseline: each selected kernel as a Tucker-2 / SVD factorisation
    at ``rank`` (truncated SVD of each unfolding), other weights copied."""
    selected = {layer.name for layer in _selected(model)}

    def clone(layer):
        if layer.name in selected:
            in_modes, out_modes = _baseline_modes(layer)
            convert = (
                keras_tt.TTConv2D.from_conv
                if isinstance(layer, L.Conv2D)
                else keras_tt.TTDense.from_dense
            )
            return convert(
                layer, tt_rank=rank, in_modes=in_modes, out_modes=out_modes
            )
        return layer.__class__.from_config(layer.get_config())

    clone_model = keras.models.clone_model(model, clone_function=clone)
    for layer in model.layers:
        if layer.name not in selected and layer.weights:
            clone_model.get_layer(layer.name).set_weights(layer.get_weights())
    return clone_model


def run(
    data_path=None,
    epochs: int = 4,
    finetune_epochs: int = 2,
    ratios=(5, 10, 20),
    batch_size: int = 128,
    seed: int = 0,
    verbose: int = 1,
    save_dense: str | None = None,
) -> dict:
    """Train dense, compress both ways at each ratio, fine-tune; figures."""
    keras.utils.set_random_seed(seed)
    data = load_fashion_mnist(data_path, validation_size=5000, seed=seed)
    x_train, y_train = _prepare(data.x_train), data.y_train
    x_val, y_val = _prepare(data.x_val), data.y_val
    x_test, y_test = _prepare(data.x_test), data.y_test
    say = print if verbose else (lambda *a, **k: None)
    say(data.description)
    fit_verbose = 2 if verbose else 0

    def fit(model, learning_rate, num_epochs) -> float:
        return train(
            model,
            x_train,
            y_train,
            learning_rate,
            num_epochs,
            batch_size,
            (x_val, y_val),
            fit_verbose,
        )

    model = build_resnet()
    dense_seconds = fit(model, 2e-3, epochs)
    if save_dense:
        model.save(save_dense)
    dense_accuracy = _accuracy(model, x_test, y_test)
    say(
        f"dense: {model.count_params():,} parameters, test {dense_accuracy:.4f}"
    )
    results = {
        "data": data.description,
        "epochs": epochs,
        "finetune_epochs": finetune_epochs,
        "batch_size": batch_size,
        "dense_params": int(model.count_params()),
        "dense_accuracy": dense_accuracy,
        "dense_train_seconds": dense_seconds,
        "rows": [],
    }
    for ratio in ratios:
        for method in ("tt", "tucker2"):
            rank = rank_for_model_ratio(model, ratio, tucker=method != "tt")
            if method == "tt":
                compressed = keras_tt.tensorize(
                    model, tt_rank=rank, min_params=MIN_PARAMS, verbose=0
                )
            else:
                compressed = tucker2(model, rank)
            after_svd = _accuracy(compressed, x_test, y_test)
            seconds = fit(compressed, 1e-3, finetune_epochs)
            after = _accuracy(compressed, x_test, y_test)
            row = {
                "target": ratio,
                "method": method,
                "rank": rank,
                "params": int(compressed.count_params()),
                "compression": model.count_params() / compressed.count_params(),
                "accuracy_after_svd": after_svd,
                "accuracy": after,
                "drop_points": 100 * (dense_accuracy - after),
                "finetune_seconds": seconds,
            }
            results["rows"].append(row)
            say(
                f"{ratio}x {method:8s} rank {rank:3d}: "
                f"{row['params']:,} params ({row['compression']:.1f}x), "
                f"test {after_svd:.4f} after SVD, {after:.4f} after "
                f"fine-tuning ({row['drop_points']:+.2f} points below dense)"
            )
            keras.backend.clear_session()
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="Fashion-MNIST folder")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--finetune-epochs", type=int, default=2)
    parser.add_argument(
        "--ratios", type=float, nargs="+", default=[5.0, 10.0, 20.0]
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write the JSON here")
    parser.add_argument(
        "--save-dense", default=None, help="save the trained dense model"
    )
    args = parser.parse_args(argv)
    try:
        results = run(
            args.data,
            epochs=args.epochs,
            finetune_epochs=args.finetune_epochs,
            ratios=args.ratios,
            seed=args.seed,
            save_dense=args.save_dense,
        )
    except DataNotFoundError as error:
        print(error, file=sys.stderr)
        return 1
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
