"""TTDense against Dense: forward and training step, TF graph and XLA.

Every row times a `TTDense` layer and the `Dense` layer of the same shape
in the same run, in alternation (`interleaved_median_seconds`), and
reports the medians and the speed-up (Dense time / TTDense time) with the
contraction plan the layer chose for that batch size. Each function is a
``tf.function`` traced for its batch size (the plan depends on it), in
graph mode and compiled by XLA (``jit_compile=True``). "train" is a full
step: forward, backward and an SGD update of the layer's weights. The last
row compares the TT layer in TF graph mode with the same layer exported to
LiteRT (float32, XNNPACK), both at batch 1. A last table times, for each
layer and batch, the plan `contraction="auto"` chose against every other
candidate plan in the same run (chosen / best; target <= 1.10).

Absolute times depend on the machine and its load; the ratios are what to
compare. The paper (CPU, 25088 -> 4096, TT-rank 4): 16.1 ms vs 1.2 ms at
batch 1, 13.4x; 97.2 ms vs 94.7 ms at batch 100, 1.03x.

With ``--check`` the script exits with status 1 when a chosen plan ran
more than 10% slower than the best candidate in its own run (the same
check against recorded timings, free of one run's noise, is in
``tests/test_plan_costs.py``).

Usage:
    python benchmarks/layer_speed.py [--threads 1] [--min-seconds 1]
        [--layers vgg mnist] [--no-litert] [--check]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.timing import format_table  # noqa: E402
from benchmarks.timing import interleaved_median_seconds  # noqa: E402
from keras_tt import TTDense  # noqa: E402

LAYERS = {
    # name: (title, input width, units, TTDense arguments)
    "vgg": (
        "VGG fc6 25088x4096, rank 4",
        25088,
        4096,
        dict(tt_rank=4, in_modes=(2, 7, 8, 8, 7, 4), out_modes=(4,) * 6),
    ),
    "mnist": (
        "MNIST 1024x1024 4x8x8x4, rank 8",
        1024,
        1024,
        dict(tt_rank=8, in_modes=(4, 8, 8, 4), out_modes=(4, 8, 8, 4)),
    ),
}
BATCHES = (1, 100)
MODES = {"graph": False, "XLA": True}


def forward_fn(layer, input_dim, batch, jit_compile):
    return tf.function(
        lambda x: layer(x),
        input_signature=[tf.TensorSpec((batch, input_dim), tf.float32)],
        jit_compile=jit_compile,
    )


def train_step_fn(layer, input_dim, batch, jit_compile):
    """Forward, backward and an SGD update of ``layer``'s weights."""
    optimizer = keras.optimizers.SGD(1e-6)
    optimizer.build(layer.trainable_variables)

    def step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(layer(x)))
        grads = tape.gradient(loss, layer.trainable_variables)
        optimizer.apply(grads, layer.trainable_variables)
        return loss

    return tf.function(
        step,
        input_signature=[tf.TensorSpec((batch, input_dim), tf.float32)],
        jit_compile=jit_compile,
    )


def measure(layer_names, min_seconds):
    rows = []
    for name in layer_names:
        title, input_dim, units, tt_kwargs = LAYERS[name]
        dense_layer = keras.layers.Dense(units)
        dense_layer.build((None, input_dim))
        tt_layer = TTDense(units, **tt_kwargs)
        tt_layer.build((None, input_dim))
        for batch in BATCHES:
            x = tf.constant(
                np.random.default_rng(0).standard_normal((batch, input_dim)),
                tf.float32,
            )
            for work, make in (
                ("forward", forward_fn),
                ("train", train_step_fn),
            ):
                for mode, jit_compile in MODES.items():
                    dense = make(dense_layer, input_dim, batch, jit_compile)
                    tt = make(tt_layer, input_dim, batch, jit_compile)
                    t_dense, t_tt = interleaved_median_seconds(
                        [
                            lambda f=dense, v=x: f(v).numpy(),
                            lambda f=tt, v=x: f(v).numpy(),
                        ],
                        repeats=5 if batch > 1 and name == "vgg" else 20,
                        warmup=2,
                        min_total=min_seconds,
                    )
                    rows.append(
                        dict(
                            layer=title,
                            work=work,
                            mode=mode,
                            batch=batch,
                            dense_ms=1e3 * t_dense,
                            tt_ms=1e3 * t_tt,
                            speedup=t_dense / t_tt,
                            plan=tt_layer.contraction_plan(batch).name,
                        )
                    )
                    print(_format_rows(rows[-1:], header=False), flush=True)
    return rows


def litert_row(threads, min_seconds):
    """TF graph time of the VGG TT layer over its LiteRT time, batch 1."""
    from benchmarks.litert_speed import MODELS
    from benchmarks.litert_speed import build_pair
    from keras_tt.export import TFLiteRunner
    from keras_tt.export import export_tflite

    spec = MODELS["fc6"]
    tt_model, _ = build_pair(spec)
    folder = tempfile.mkdtemp(prefix="layer_speed_")
    try:
        path = os.path.join(folder, "tt.tflite")
        export_tflite(tt_model, path, verbose=False)
        runner = TFLiteRunner(path, num_threads=threads or None)
        x = np.random.default_rng(0).random(
            (1, spec["input_dim"]), dtype=np.float32
        )
        runner.set_inputs(x)
        graph = forward_fn(tt_model, spec["input_dim"], 1, False)
        x_tf = tf.constant(x)
        t_graph, t_lite = interleaved_median_seconds(
            [lambda: graph(x_tf).numpy(), runner.interpreter.invoke],
            repeats=20,
            warmup=3,
            min_total=min_seconds,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return t_graph, t_lite


def plan_check(layer_names, min_seconds, limit=8):
    """For each layer and batch: the chosen plan's forward time (TF graph)
    over the best of the candidate plans, timed in the same run. Returns
    the table and the largest of those ratios."""
    from benchmarks.fit_plan_costs import candidate_plans
    from benchmarks.fit_plan_costs import time_plans

    rows, worst = [], 0.0
    for name in layer_names:
        title, input_dim, units, tt_kwargs = LAYERS[name]
        layer = TTDense(units, **tt_kwargs)
        layer.build((None, input_dim))
        shape = (layer.in_modes, layer.out_modes, layer.tt_ranks)
        for batch in BATCHES:
            chosen = layer.contraction_plan(batch)
            plans = candidate_plans(*shape, batch, limit)
            if chosen not in plans:
                plans.append(chosen)
            times = dict(
                zip(plans, time_plans(layer, batch, plans, min_seconds))
            )
            best = min(times, key=times.get)
            ratio = times[chosen] / times[best]
            worst = max(worst, ratio)
            rows.append(
                [
                    title,
                    batch,
                    chosen.name,
                    f"{1e3 * times[chosen]:.3f}",
                    best.name,
                    f"{1e3 * times[best]:.3f}",
                    f"{ratio:.2f}" + ("" if ratio <= 1.10 else "  (> 1.10)"),
                ]
            )
    headers = [
        "layer",
        "batch",
        "chosen plan",
        "ms",
        "best candidate",
        "ms",
        "chosen / best",
    ]
    return format_table(headers, rows), worst


def _format_rows(rows, header=True):
    table = format_table(
        [
            "layer",
            "work",
            "mode",
            "batch",
            "Dense ms",
            "TTDense ms",
            "speed-up",
            "plan",
        ],
        [
            [
                r["layer"],
                r["work"],
                r["mode"],
                r["batch"],
                f"{r['dense_ms']:.3f}",
                f"{r['tt_ms']:.3f}",
                f"{r['speedup']:.2f}x",
                r["plan"],
            ]
            for r in rows
        ],
    )
    return table if header else table.splitlines()[-1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="intra-op threads (0: TensorFlow's default)",
    )
    parser.add_argument(
        "--min-seconds",
        type=float,
        default=1.0,
        help="time spent measuring each row (default 1)",
    )
    parser.add_argument(
        "--layers", nargs="+", default=list(LAYERS), choices=list(LAYERS)
    )
    parser.add_argument("--no-litert", action="store_true")
    parser.add_argument(
        "--no-plan-check",
        action="store_true",
        help="skip timing the chosen plan against the other candidates",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit with status 1 when a chosen plan ran more than 10%% "
        "slower than the best candidate in this run",
    )
    args = parser.parse_args(argv)
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    rows = measure(args.layers, args.min_seconds)
    print()
    print(_format_rows(rows))
    if not args.no_litert and "vgg" in args.layers:
        t_graph, t_lite = litert_row(args.threads, args.min_seconds)
        print(
            f"\nVGG fc6 TT layer, batch 1: TF graph {1e3 * t_graph:.3f} ms, "
            f"LiteRT {1e3 * t_lite:.3f} ms: TF graph / LiteRT = "
            f"{t_graph / t_lite:.2f}x"
        )
    worst = None
    if not args.no_plan_check:
        print("\nChosen plan against the best candidate (forward, TF graph)")
        table, worst = plan_check(args.layers, args.min_seconds / 2)
        print(table)
    print(
        f"\nTensorFlow {tf.__version__}, Keras {keras.__version__}, "
        f"{os.cpu_count()} CPUs, intra-op threads: "
        f"{args.threads or 'default'}; interleaved medians."
    )
    if args.check and worst is not None and worst > 1.10:
        print(f"check failed: a chosen plan ran {worst:.2f}x the best")
        sys.exit(1)
    return rows


if __name__ == "__main__":
    main()
