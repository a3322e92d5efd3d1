"""Export a representative set of keras_tt .tflite files for the ARM64 check.

Usage:
    python tools/export_arm64_set.py FOLDER

Writes ``NAME.tflite`` and ``NAME.npz`` (the check's inputs ``x0`` and the
Keras model's outputs ``keras0`` on them, and the export ``mode``) for:

- ``demo_*``: the README Quickstart network (784 -> TTDense(1024, TT-rank 8,
  relu) -> TTDense(10, TT-rank 4, modes 4x8x8x4 -> 1x2x5x1, softmax)) with
  random weights and biases, exported as float32, float16, dynamic-range,
  int8 (float inputs and outputs), int8 with int8 inputs and outputs, and
  float32 with a fixed batch of 1;
- ``tensorized_*``: a random dense 784-1024-10 network through
  `keras_tt.tensorize` at TT-rank 16 (what the quickstart exports), float32
  and int8;
- ``paper_fc6_*``: the 25088 -> 4096 layer at TT-rank 4 with modes
  2x7x8x8x7x4 -> 4x4x4x4x4x4, float32, dynamic-range and int8;
- ``sweep_d2`` ... ``sweep_d6``: one TTDense with 2 to 6 cores and odd
  modes, float32 and int8;
- ``padded_1021``: 1021 -> 10 (1021 is prime, so the layer pads the input to
  1024), float32 and int8;
- ``conv_same``: 16x16x8 images -> TTConv2D(16 filters, 3x3, TT-rank 4,
  strides 1, same padding), float32 and int8;
- ``conv_strided``: the same with strides 2 and valid padding, float32 and
  int8;
- ``fast_768``: 768 -> 768 at TT-rank 10 in the fast layout
  (``in_modes="fast"``: modes 96x8 -> 8x96), float32 and int8;
- ``tensorized_cnn``: a random 16x16x3 CNN (Conv2D 3x3 + BatchNormalization
  + ReLU + max pooling, twice, global average pooling and a Dense head)
  through `keras_tt.tensorize` at TT-rank 4, convolutions and head replaced,
  float32 and int8.

Inputs are MNIST test images when the IDX files are found
(``$KERAS_TT_MNIST_DIR`` or ``shared/data/mnist`` beside the checkout), else
uniform random images; other layers get random normal inputs (images for
the convolutions). Seeds are fixed.
"""

from __future__ import annotations

import gzip
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_tt  # noqa: E402

NUM_CHECK = 8
NUM_CALIBRATION = 64


def _mnist_images(count):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    folders = [
        os.environ.get("KERAS_TT_MNIST_DIR", ""),
        os.path.join(root, "shared", "data", "mnist"),
        os.path.join(os.path.dirname(root), "shared", "data", "mnist"),
    ]
    for folder in folders:
        for name in ("t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte"):
            path = os.path.join(folder, name)
            if folder and os.path.exists(path):
                opener = gzip.open if name.endswith(".gz") else open
                with opener(path, "rb") as f:
                    data = f.read()
                images = np.frombuffer(data, np.uint8, offset=16)
                images = images.reshape(-1, 784)[:count]
                return images.astype("float32") / 255.0, "MNIST test images"
    rng = np.random.default_rng(1)
    return rng.uniform(size=(count, 784)).astype("float32"), "uniform noise"


def _randomise(model, seed):
    """Random cores and biases (biases are zeros after initialisation)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        bias = getattr(layer, "bias", None)
        if bias is not None:
            bias.assign(rng.normal(0, 0.1, size=tuple(bias.shape)))
    return model


def demo_model():
    return keras.Sequential(
        [
            keras.Input((784,)),
            keras_tt.TTDense(1024, tt_rank=8, activation="relu"),
            keras_tt.TTDense(
                10,
                tt_rank=4,
                in_modes=(4, 8, 8, 4),
                out_modes=(1, 2, 5, 1),
                activation="softmax",
            ),
        ]
    )


def tensorized_model():
    dense = keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(1024, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    _randomise(dense, 2)
    return keras_tt.tensorize(dense, tt_rank=16, verbose=0)


def conv_layer(strides, padding):
    return keras.Sequential(
        [
            keras.Input((16, 16, 8)),
            keras_tt.TTConv2D(
                16, 3, tt_rank=4, strides=strides, padding=padding
            ),
        ]
    )


def _randomise_batch_norm(model, seed):
    """Moving statistics and affine weights away from the identity."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            size = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 1.5, size))
            layer.beta.assign(rng.normal(0, 0.1, size))
            layer.moving_mean.assign(rng.normal(0, 0.1, size))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, size))
    return model


def tensorized_cnn():
    cnn = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(16, 3, padding="same", use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, padding="same", use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.MaxPooling2D(),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10),
        ]
    )
    _randomise_batch_norm(_randomise(cnn, 30), 31)
    tt = keras_tt.tensorize(cnn, tt_rank=4, min_params=256, verbose=0)
    kinds = sorted(r.kind for r in tt.tensorize_report.layers)
    if kinds != ["Conv2D 3x3", "Conv2D 3x3", "Dense"]:
        raise RuntimeError(f"tensorize replaced {kinds} in the CNN")
    return tt


def single_layer(width, units, tt_rank, in_modes=None, out_modes=None):
    return keras.Sequential(
        [
            keras.Input((width,)),
            keras_tt.TTDense(
                units, tt_rank=tt_rank, in_modes=in_modes, out_modes=out_modes
            ),
        ]
    )


SWEEP = {
    2: ((5, 7), (3, 5)),
    3: ((3, 5, 7), (5, 3, 3)),
    4: ((3, 5, 3, 7), (3, 3, 5, 1)),
    5: ((3, 3, 5, 3, 3), (3, 1, 3, 5, 1)),
    6: ((3, 3, 3, 3, 3, 3), (1, 3, 1, 3, 1, 5)),
}


def cases():
    """(name, model builder, input kind, [(suffix, export kwargs), ...])."""
    int8 = {"quantization": "int8"}
    yield (
        "demo",
        lambda: _randomise(demo_model(), 0),
        "mnist",
        [
            ("float32", {}),
            ("float16", {"quantization": "float16"}),
            ("dynamic", {"quantization": "dynamic"}),
            ("int8", int8),
            ("int8_io", {"quantization": "int8", "io_dtype": "int8"}),
            ("float32_batch1", {"batch_size": 1}),
        ],
    )
    yield (
        "tensorized",
        tensorized_model,
        "mnist",
        [("float32", {}), ("int8", int8)],
    )
    yield (
        "paper_fc6",
        lambda: _randomise(
            single_layer(25088, 4096, 4, (2, 7, 8, 8, 7, 4), (4,) * 6), 3
        ),
        "normal",
        [
            ("float32", {}),
            ("dynamic", {"quantization": "dynamic"}),
            ("int8", int8),
        ],
    )
    for d, (n, m) in SWEEP.items():
        yield (
            f"sweep_d{d}",
            lambda n=n, m=m, d=d: _randomise(
                single_layer(
                    int(np.prod(n)), int(np.prod(m)), 3, in_modes=n, out_modes=m
                ),
                10 + d,
            ),
            "normal",
            [("float32", {}), ("int8", int8)],
        )
    yield (
        "padded_1021",
        lambda: _randomise(single_layer(1021, 10, 4), 20),
        "normal",
        [("float32", {}), ("int8", int8)],
    )
    yield (
        "conv_same",
        lambda: _randomise(conv_layer(1, "same"), 21),
        "normal",
        [("float32", {}), ("int8", int8)],
    )
    yield (
        "conv_strided",
        lambda: _randomise(conv_layer(2, "valid"), 22),
        "normal",
        [("float32", {}), ("int8", int8)],
    )
    yield (
        "fast_768",
        lambda: _randomise(single_layer(768, 768, 10, in_modes="fast"), 23),
        "normal",
        [("float32", {}), ("int8", int8)],
    )
    yield (
        "tensorized_cnn",
        tensorized_cnn,
        "uniform",
        [("float32", {}), ("int8", int8)],
    )


def main(argv):
    if len(argv) != 2 or not os.path.isdir(argv[1]):
        raise SystemExit("usage: python tools/export_arm64_set.py FOLDER")
    folder = argv[1]
    keras.utils.set_random_seed(0)
    images, source = _mnist_images(NUM_CALIBRATION)
    print(f"demo and tensorized inputs: {source}")
    for name, build, kind, exports in cases():
        start = time.perf_counter()
        model = build()
        shape = tuple(model.inputs[0].shape[1:])
        seed = int(np.prod(shape))
        if kind == "mnist":
            calibration = images
        elif kind == "uniform":
            rng = np.random.default_rng(seed)
            calibration = rng.uniform(size=(NUM_CALIBRATION, *shape))
            calibration = calibration.astype("float32")
        else:
            rng = np.random.default_rng(seed)
            calibration = rng.normal(size=(NUM_CALIBRATION, *shape))
            calibration = calibration.astype("float32")
        x = calibration[:NUM_CHECK]
        outputs = keras.ops.convert_to_numpy(model(x, training=False))
        for suffix, kwargs in exports:
            stem = os.path.join(folder, f"{name}_{suffix}")
            kwargs = dict(kwargs)
            if kwargs.get("quantization") == "int8":
                kwargs["representative_data"] = calibration
            keras_tt.export_tflite(
                model,
                stem + ".tflite",
                validation_data=x,
                verbose=False,
                **kwargs,
            )
            np.savez(
                stem + ".npz",
                x0=x,
                keras0=outputs.astype("float32"),
                mode=np.array(kwargs.get("quantization") or "float32"),
            )
        print(
            f"exported {name} ({len(exports)} files) in "
            f"{time.perf_counter() - start:.1f} s"
        )


if __name__ == "__main__":
    main(sys.argv)
