"""LiteRT latency and file size of TT models against their dense originals.

Each pair (TT model, dense model with the same shapes) is exported with
`keras_tt.export.export_tflite` (float32 and full int8), and both files are
timed in the same run in the LiteRT interpreter at batch 1 with one thread,
a stand-in for one low-end phone core. XNNPACK, the interpreter's default
CPU delegate, is on, as it is on a phone. Reported: median latencies, the
speed-up (dense / TT), file sizes, and the file size ratio beside the
parameter ratio. Absolute times depend on the machine; compare ratios.

Usage:
    nice -n 10 python benchmarks/litert_speed.py [--min-seconds 2]
        [--modes float32 int8] [--models fc6 mnist]
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

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.timing import format_table  # noqa: E402
from benchmarks.timing import median_seconds  # noqa: E402
from keras_tt import TTDense  # noqa: E402
from keras_tt.export import TFLiteRunner  # noqa: E402
from keras_tt.export import export_tflite  # noqa: E402
from keras_tt.export.inspect import format_bytes  # noqa: E402

# name: (input width, TTDense arguments and units, hidden head or None)
MODELS = {
    # VGG-16 fc6 as in the paper: 25088 -> 4096, TT-rank 4.
    "fc6": dict(
        title="fc6 25088->4096 (rank 4)",
        input_dim=25088,
        units=4096,
        tt=dict(tt_rank=4, in_modes=(2, 7, 8, 8, 7, 4), out_modes=(4,) * 6),
        head=None,
    ),
    # The paper's MNIST network: 32x32 = 1024 -> 1024 (TT) -> 10.
    "mnist": dict(
        title="MNIST 1024->1024(TT)->10 (rank 8)",
        input_dim=1024,
        units=1024,
        tt=dict(tt_rank=8, in_modes=(4, 8, 8, 4), out_modes=(4, 8, 8, 4)),
        head=10,
    ),
}


def build_pair(spec, seed=0):
    """(TT model, dense model) with the same input, width and head."""
    models = []
    for kind in ("tt", "dense"):
        keras.utils.set_random_seed(seed)
        inputs = keras.Input((spec["input_dim"],))
        # Random biases: zero ones could be folded away by the converter.
        bias = "random_normal"
        if kind == "tt":
            layer = TTDense(
                spec["units"], **spec["tt"], bias_initializer=bias, name="fc"
            )
        else:
            layer = keras.layers.Dense(
                spec["units"], bias_initializer=bias, name="fc"
            )
        activation = "relu" if spec["head"] else None
        x = layer(inputs)
        if activation:
            x = keras.layers.Activation(activation)(x)
        if spec["head"]:
            x = keras.layers.Dense(
                spec["head"], bias_initializer=bias, name="head"
            )(x)
        models.append(keras.Model(inputs, x, name=f"{kind}_model"))
    return tuple(models)


def calibration_data(input_dim, n=16, seed=1):
    """Inputs in [0, 1), like scaled pixels or post-ReLU features."""
    return np.random.default_rng(seed).random((n, input_dim), dtype=np.float32)


def export_pair(spec, folder, mode, seed=0):
    """Export both models of a pair; returns {kind: (path, report, params)}."""
    quantization = None if mode == "float32" else mode
    data = calibration_data(spec["input_dim"])
    out = {}
    for kind, model in zip(("tt", "dense"), build_pair(spec, seed)):
        path = os.path.join(folder, f"{spec['input_dim']}_{kind}_{mode}.tflite")
        report = export_tflite(
            model,
            path,
            quantization=quantization,
            representative_data=data if quantization == "int8" else None,
            validation_data=data[:4],
            verbose=False,
        )
        out[kind] = (path, report, model.count_params())
        del model
        keras.backend.clear_session()
    return out


def latency_seconds(path, input_dim, threads=1, batch=1, min_seconds=2.0):
    """Median time of one invoke at ``batch``, XNNPACK on, on ``threads``."""
    runner = TFLiteRunner(path, num_threads=threads)
    runner.set_inputs(calibration_data(input_dim, n=batch, seed=2))
    return median_seconds(
        runner.interpreter.invoke, repeats=20, warmup=3, min_total=min_seconds
    )


def run(models, modes, min_seconds, folder):
    rows = []
    for name in models:
        spec = MODELS[name]
        for mode in modes:
            exported = export_pair(spec, folder, mode)
            (tt_path, tt_report, tt_params) = exported["tt"]
            (dense_path, dense_report, dense_params) = exported["dense"]
            # Alternate the two models so load on the machine hits both alike.
            tt_times, dense_times = [], []
            for _ in range(3):
                dense_times.append(
                    latency_seconds(
                        dense_path,
                        spec["input_dim"],
                        min_seconds=min_seconds / 3,
                    )
                )
                tt_times.append(
                    latency_seconds(
                        tt_path, spec["input_dim"], min_seconds=min_seconds / 3
                    )
                )
            t_tt, t_dense = sorted(tt_times)[1], sorted(dense_times)[1]
            rows.append(
                [
                    spec["title"],
                    mode,
                    f"{1000 * t_dense:.3f}",
                    f"{1000 * t_tt:.3f}",
                    f"{t_dense / t_tt:.1f}x",
                    format_bytes(dense_report.file_size),
                    format_bytes(tt_report.file_size),
                    f"{dense_report.file_size / tt_report.file_size:,.0f}x",
                    f"{dense_params / tt_params:,.0f}x",
                    tt_report.min_runtime_version,
                ]
            )
            print(f"  done: {spec['title']}, {mode}", flush=True)
            for path in (tt_path, dense_path):
                os.remove(path)
    headers = [
        "model",
        "mode",
        "dense ms",
        "TT ms",
        "speed-up",
        "dense file",
        "TT file",
        "file ratio",
        "param ratio",
        "TT min runtime",
    ]
    return format_table(headers, rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models", nargs="+", default=list(MODELS), choices=list(MODELS)
    )
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["float32", "int8"],
        choices=["float32", "float16", "dynamic", "int8"],
    )
    parser.add_argument(
        "--min-seconds",
        type=float,
        default=2.0,
        help="time spent measuring each model (default 2)",
    )
    args = parser.parse_args(argv)
    folder = tempfile.mkdtemp(prefix="litert_speed_")
    try:
        table = run(args.models, args.modes, args.min_seconds, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print()
    print("LiteRT, batch 1, 1 thread, XNNPACK delegate (median of invokes)")
    print(table)
    print(
        "param ratio: all parameters of the dense model over the TT model's "
        "(biases and head included)."
    )


if __name__ == "__main__":
    main()
