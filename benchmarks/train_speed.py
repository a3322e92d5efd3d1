"""Training time per epoch of the MNIST study's network, TT against Dense.

The network of `examples/mnist_study.py` (1024 -> 1024 hidden, ReLU -> 10,
Adam, batch 100, 8,000 training images per epoch) with the hidden layer as
`Dense` and as `TTDense` of several shapes at TT-rank 8, each TT shape with
the layer's automatic plan and with the plain chain (``contraction="chain"``,
the plan before plans were chosen). Random inputs stand in for the images:
the time of an epoch does not depend on the values. Every configuration
trains one warm-up epoch (tracing), then the configurations train one epoch
each in turn, several rounds, and the table gives each one's median epoch
time over Dense's.

Usage:
    python benchmarks/train_speed.py [--rounds 3] [--threads 1] [--xla]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "examples"))

from mnist_study import BATCH_SIZE  # noqa: E402
from mnist_study import SHAPES  # noqa: E402
from mnist_study import WIDTH  # noqa: E402

from benchmarks.timing import format_table  # noqa: E402
from keras_tt import TTDense  # noqa: E402

NUM_TRAIN = 8000
RANK = 8
TT_SHAPES = ("4x8x8x4", "4x4x4x4x4", "2^10")


def hidden(kind, shape=None, contraction="auto"):
    if kind == "dense":
        return keras.layers.Dense(WIDTH, activation="relu", name="hidden")
    in_modes, out_modes = SHAPES[shape]
    return TTDense(
        WIDTH,
        tt_rank=RANK,
        in_modes=in_modes,
        out_modes=out_modes,
        activation="relu",
        contraction=contraction,
        name="hidden",
    )


def build(layer, jit_compile):
    model = keras.Sequential(
        [keras.Input((WIDTH,)), layer, keras.layers.Dense(10, name="logits")]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
    return model


def epoch_seconds(model, x, y):
    start = time.perf_counter()
    model.fit(x, y, batch_size=BATCH_SIZE, epochs=1, verbose=0)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="intra-op threads (0: TensorFlow's default)",
    )
    parser.add_argument("--xla", action="store_true", help="jit_compile=True")
    args = parser.parse_args(argv)
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    rng = np.random.default_rng(0)
    x = rng.random((NUM_TRAIN, WIDTH), dtype=np.float32)
    y = rng.integers(0, 10, NUM_TRAIN)

    configs = {"Dense": hidden("dense")}
    for shape in TT_SHAPES:
        configs[f"TT {shape} r{RANK}"] = hidden("tt", shape)
        configs[f"TT {shape} r{RANK}, chain"] = hidden("tt", shape, "chain")
    models = {name: build(layer, args.xla) for name, layer in configs.items()}
    for model in models.values():
        epoch_seconds(model, x, y)  # traces the training step
    samples = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            samples[name].append(epoch_seconds(model, x, y))
    medians = {name: statistics.median(s) for name, s in samples.items()}
    rows = []
    for name, layer in configs.items():
        plan = "-"
        if isinstance(layer, TTDense):
            plan = layer.contraction_plan(None).name
        rows.append(
            [
                name,
                f"{medians[name]:.2f}",
                f"{medians[name] / medians['Dense']:.2f}x",
                plan,
            ]
        )
    print(
        format_table(
            [
                "hidden layer",
                "s/epoch",
                "time vs Dense",
                "plan (batch unknown while tracing)",
            ],
            rows,
        )
    )
    print(
        f"\n{NUM_TRAIN} samples, batch {BATCH_SIZE}, Adam; medians of "
        f"{args.rounds} interleaved epochs; intra-op threads: "
        f"{args.threads or 'default'}; XLA: {args.xla}."
    )


if __name__ == "__main__":
    main()
