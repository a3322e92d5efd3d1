"""TT convolutions: which layout, and how fast against Conv2D.

Three parts, each a ratio against a baseline measured in the same run:

- ``layouts``: the reconstruction error of TT-SVD on trained kernels
  for three layouts of the kernel, at the largest uniform TT-rank that
  compresses each kernel 5x, 10x and 20x:
  ``spatial-middle`` (the one `keras_tt.TTConv2D` uses: input-channel
  cores, one spatial core, output-channel cores), ``merged`` (the kernel
  as a ``(kh kw c_in) x c_out`` TT-matrix, the spatial dimensions merged
  into the first input mode; for a 1x1 kernel, the `TTDense` TT-matrix
  pairing input and output modes) and ``spatial-first`` (Garipov et al. 2016:
  a spatial core first, then cores pairing input and output modes), with
  Tucker-2 (spatial-middle with one mode per side) beside them. The
  trained kernels come from a `.keras` file (``--trained``, for instance
  the dense model that ``examples/fashion_mnist_cnn.py --save-dense``
  writes).
- ``layers``: LiteRT (interpreter, XNNPACK, 1 thread, batch 1, float32)
  and TensorFlow graph (1 thread, batch 1) latency of one `TTConv2D` at
  the largest uniform rank compressing it >= 5x, against `Conv2D`, for
  ResNet-stage shapes; also the rebuilt-kernel route (the TT kernel
  computed in the graph, then one CONV_2D), which is what the ``merged``
  and ``spatial-first`` layouts need to keep a static CONV_2D filter.
- ``models``: whole ResNet50 and MobileNetV2 (keras.applications,
  weights=None, 96x96 input) tensorized at a uniform TT-rank against the
  originals, LiteRT and TF graph.

Usage:
    nice -n 10 python benchmarks/conv_speed.py [--parts layouts layers
        models] [--trained dense.keras] [--min-seconds 1]
"""

from __future__ import annotations

import argparse
import math
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
from keras_tt import TTConv2D  # noqa: E402
from keras_tt import tensorize  # noqa: E402
from keras_tt import tt_svd  # noqa: E402
from keras_tt.contraction import tt_kernel  # noqa: E402
from keras_tt.export import TFLiteRunner  # noqa: E402
from keras_tt.export import export_tflite  # noqa: E402
from keras_tt.layers.tt_conv import conv_matrix  # noqa: E402
from keras_tt.layers.tt_conv import resolve_conv_layout  # noqa: E402
from keras_tt.modes import auto_modes  # noqa: E402
from keras_tt.modes import resolve_tt_ranks  # noqa: E402
from keras_tt.tt_matrix import full_matrix  # noqa: E402
from keras_tt.tt_matrix import num_tt_params  # noqa: E402

RATIOS = (5, 10, 20)
# (height/width, c_in, c_out, kernel)
LAYER_SHAPES = [
    (56, 64, 64, 3),
    (28, 128, 128, 3),
    (14, 256, 256, 3),
    (14, 1024, 256, 1),
]


# ---------------------------------------------------------------- layouts


def layout_modes(layout, kernel_size, c_in, c_out):
    """(rows order, in_modes, out_modes) of a kernel matrix for a layout."""
    s = math.prod(kernel_size)
    n, m = auto_modes(c_in, c_out)
    if layout == "spatial-middle":
        return (
            "channel-first",
            n + (s,) + (1,) * len(m),
            (1,) * len(n) + (1,) + m,
        )
    if layout == "tucker-2":
        return "channel-first", (c_in, s, 1), (1, 1, c_out)
    if layout == "merged":
        return "position-first", (s * n[0],) + n[1:], m
    if layout == "spatial-first":
        return "position-first", (s,) + n, (1,) + m
    raise ValueError(layout)


def layout_error(kernel, layout, ratio):
    """(rank, params, relative error) at the largest rank >= ratio."""
    kernel = np.asarray(kernel, dtype=np.float64)
    kernel_size, (c_in, c_out) = kernel.shape[:-2], kernel.shape[-2:]
    order, in_modes, out_modes = layout_modes(layout, kernel_size, c_in, c_out)
    if order == "channel-first":
        matrix = conv_matrix(kernel)
    else:
        matrix = kernel.reshape(-1, c_out)
    dense = matrix.size
    best = None
    for rank in range(1, 1025):
        ranks = resolve_tt_ranks(rank, in_modes, out_modes, warn=False)
        params = num_tt_params(in_modes, out_modes, ranks)
        if dense / params < ratio:
            break
        best = (rank, params)
        if ranks == resolve_tt_ranks(rank + 1, in_modes, out_modes, warn=0):
            break
    if best is None:
        return None
    rank, params = best
    cores = tt_svd(matrix, in_modes, out_modes, tt_rank=rank)
    approx = full_matrix(cores)
    error = np.linalg.norm(approx - matrix) / np.linalg.norm(matrix)
    return rank, params, float(error)


def run_layouts(trained):
    model = keras.saving.load_model(trained)
    convs = [
        layer
        for layer in model.layers
        if isinstance(layer, keras.layers.Conv2D)
        and int(np.prod(layer.kernel.shape)) >= 2048
    ]
    rows = []
    layouts = ("spatial-middle", "merged", "spatial-first", "tucker-2")
    for layer in convs:
        kernel = keras.ops.convert_to_numpy(layer.kernel)
        for ratio in RATIOS:
            row = [layer.name, "x".join(map(str, kernel.shape)), f"{ratio}x"]
            for layout in layouts:
                found = layout_error(kernel, layout, ratio)
                row.append(
                    "-" if found is None else f"{found[2]:.3f} (r={found[0]})"
                )
            rows.append(row)
    headers = ["kernel", "shape", "ratio"] + [f"{k} error" for k in layouts]
    return (
        f"TT-SVD relative error on the trained kernels of {trained}\n"
        + format_table(headers, rows)
    )


# ----------------------------------------------------------------- timing


def rank_for_ratio(c_in, c_out, kernel_size, ratio):
    dense = c_in * c_out * math.prod(kernel_size)
    best = 1
    for rank in range(1, 513):
        _, layout = resolve_conv_layout(
            c_in, c_out, kernel_size, rank, None, None
        )
        if dense / layout.num_params < ratio:
            break
        best = rank
    return best


@keras.saving.register_keras_serializable(package="conv_speed")
class RebuiltKernelConv(keras.layers.Layer):
    """A TT convolution computed as: rebuild the kernel, then one conv."""

    def __init__(self, tt_layer=None, **kwargs):
        super().__init__(**kwargs)
        self.tt_layer = tt_layer

    def call(self, x):
        layer = self.tt_layer
        matrix = tt_kernel(layer.cores)
        c_in = layer.input_channels
        kernel = keras.ops.reshape(
            matrix, (c_in, *layer.kernel_size, layer.filters)
        )
        kernel = keras.ops.transpose(kernel, (1, 2, 0, 3))
        return keras.ops.conv(x, kernel, padding=layer.padding)


def _models_for_shape(size, c_in, c_out, k, ratio=5):
    x = keras.Input((size, size, c_in), batch_size=1)
    dense = keras.Model(
        x, keras.layers.Conv2D(c_out, k, padding="same", use_bias=False)(x)
    )
    rank = rank_for_ratio(c_in, c_out, (k, k), ratio)
    tt_layer = TTConv2D(c_out, k, tt_rank=rank, padding="same", use_bias=False)
    tt = keras.Model(x, tt_layer(x))
    models = {"Conv2D": dense, "TTConv2D": tt}
    if k > 1:
        models["rebuilt kernel"] = keras.Model(
            x, RebuiltKernelConv(tt_layer)(x)
        )
    return models, rank, tt_layer.compression_ratio


def _litert_runner(model, folder, name, sample):
    path = os.path.join(folder, f"{name}.tflite")
    report = export_tflite(model, path, validation_data=sample, verbose=False)
    runner = TFLiteRunner(path, num_threads=1)
    runner.set_inputs(sample)
    return runner, report.file_size


def _tf_function(model, sample):
    fn = tf.function(lambda t: model(t, training=False))
    tensor = tf.constant(sample)
    fn(tensor)
    return lambda: fn(tensor).numpy()


def time_models(models, sample, folder, min_seconds):
    """{name: (litert seconds, tf seconds, file bytes)}."""
    runners = {}
    for name, model in models.items():
        runners[name] = _litert_runner(
            model, folder, name.replace(" ", "_"), sample
        )
    names = list(models)
    litert = interleaved_median_seconds(
        [runners[n][0].interpreter.invoke for n in names],
        repeats=10,
        warmup=2,
        min_total=min_seconds,
    )
    graph = interleaved_median_seconds(
        [_tf_function(models[n], sample) for n in names],
        repeats=10,
        warmup=2,
        min_total=min_seconds,
    )
    return {
        n: (litert[i], graph[i], runners[n][1]) for i, n in enumerate(names)
    }


def _timing_rows(label, times, baseline, rank, ratio, ms_digits, file_size):
    """One table row per form: times and speed-ups against ``baseline``."""
    base_lite, base_graph, _ = times[baseline]
    rows = []
    for form, (lite, graph, size_bytes) in times.items():
        is_base = form == baseline
        rows.append(
            [
                label,
                form,
                "-" if is_base else f"{rank}",
                "1.0x" if is_base else f"{ratio:.1f}x",
                f"{1000 * lite:.{ms_digits}f}",
                f"{base_lite / lite:.2f}x",
                f"{1000 * graph:.{ms_digits}f}",
                f"{base_graph / graph:.2f}x",
                file_size(size_bytes),
            ]
        )
    return rows


def run_layers(folder, min_seconds):
    rows = []
    for size, c_in, c_out, k in LAYER_SHAPES:
        models, rank, ratio = _models_for_shape(size, c_in, c_out, k)
        sample = np.random.default_rng(0).random(
            (1, size, size, c_in), dtype=np.float32
        )
        times = time_models(models, sample, folder, min_seconds)
        rows += _timing_rows(
            f"{size}x{size}x{c_in}->{c_out} {k}x{k}",
            times,
            "Conv2D",
            rank,
            ratio,
            ms_digits=2,
            file_size=lambda b: f"{b / 1024:.0f} KiB",
        )
        keras.backend.clear_session()
    headers = [
        "layer",
        "form",
        "TT-rank",
        "param ratio",
        "LiteRT ms",
        "speed-up",
        "TF ms",
        "speed-up",
        "file",
    ]
    return format_table(headers, rows)


def run_models(folder, min_seconds, rank=16, size=96):
    rows = []
    for name, build in (
        ("ResNet50", keras.applications.ResNet50),
        ("MobileNetV2", keras.applications.MobileNetV2),
    ):
        model = build(input_shape=(size, size, 3), weights=None, classes=10)
        x = keras.Input((size, size, 3), batch_size=1)
        original = keras.Model(x, model(x))
        tt = tensorize(model, tt_rank=rank, verbose=0)
        ratio = tt.tensorize_report.compression_ratio
        xt = keras.Input((size, size, 3), batch_size=1)
        tt_fixed = keras.Model(xt, tt(xt))
        sample = np.random.default_rng(0).random(
            (1, size, size, 3), dtype=np.float32
        )
        times = time_models(
            {"original": original, "tensorized": tt_fixed},
            sample,
            folder,
            min_seconds,
        )
        rows += _timing_rows(
            f"{name} {size}x{size}",
            times,
            "original",
            rank,
            ratio,
            ms_digits=1,
            file_size=lambda b: f"{b / 2**20:.1f} MiB",
        )
        keras.backend.clear_session()
    headers = [
        "model",
        "form",
        "TT-rank",
        "whole-model ratio",
        "LiteRT ms",
        "speed-up",
        "TF ms",
        "speed-up",
        "file",
    ]
    return format_table(headers, rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--parts",
        nargs="+",
        default=["layers", "models"],
        choices=["layouts", "layers", "models"],
    )
    parser.add_argument("--trained", default=None, help=".keras model")
    parser.add_argument("--min-seconds", type=float, default=1.0)
    parser.add_argument("--model-rank", type=int, default=16)
    args = parser.parse_args(argv)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    folder = tempfile.mkdtemp(prefix="conv_speed_")
    try:
        if "layouts" in args.parts:
            if not args.trained:
                parser.error("--parts layouts needs --trained MODEL.keras")
            print(run_layouts(args.trained), flush=True)
        if "layers" in args.parts:
            print(run_layers(folder, args.min_seconds), flush=True)
        if "models" in args.parts:
            print(
                run_models(folder, args.min_seconds, rank=args.model_rank),
                flush=True,
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
