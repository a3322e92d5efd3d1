"""What the matrix product alone costs in LiteRT when its kernel is not a
constant of the file: the bound on any TT plan that rebuilds the kernel.

One ``rows x width @ width x units`` product, four ways, each in its own
LiteRT file, timed in alternation (XNNPACK on, one thread):

- "constant kernel": a plain `keras.layers.Dense`; its weights are a
  constant of the file, which XNNPACK packs once when the model loads.
- "free rebuild": the same dense kernel plus an exact zero computed from
  the input (`keras_tt.contraction.anchor_to_input`), so it is a tensor
  computed at run time, as the rebuilt kernel of a TT layer is, but at no
  cost: the rebuild itself is left out. The product runs as BATCH_MATMUL,
  as the TT rebuild's does; "fused" lets the converter fuse it with the
  bias into a FULLY_CONNECTED with computed weights, to show why not.
- "cached kernel": the kernel rebuilt from the TT cores once, on the first
  run, into a resource variable (``CALL_ONCE``, ``VAR_HANDLE``, ``IF``),
  and read from it on every later run: the most a rebuild-once plan could
  get (its memory is the dense kernel's).
- "TT rebuild": the TT layer as export plans it for ``rows`` rows.

Ratios are the constant kernel's time / each one's: above 1 is faster.
The first four compute the same product, so what separates them is only
how LiteRT runs a product whose weights are not constant.

Usage:
    nice -n 10 python benchmarks/litert_kernel_bound.py [--rows 128]
        [--width 768] [--units 768] [--tt-rank 16] [--min-seconds 2]
"""

from __future__ import annotations

import argparse
import collections
import os
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
from keras_tt import contraction as C  # noqa: E402
from keras_tt import contraction_plans as P  # noqa: E402
from keras_tt.export import TFLiteRunner  # noqa: E402
from keras_tt.export import export_tflite  # noqa: E402
from keras_tt.export.inspect import format_bytes  # noqa: E402
from keras_tt.export.inspect import inspect_tflite  # noqa: E402


def _builtin_converter(concrete, trackable=None):
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [concrete], trackable
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    # With a trackable object the variables stay variables.
    converter.experimental_enable_resource_variables = trackable is not None
    return converter.convert()


def constant_kernel_file(kernel, bias, rows):
    """A dense layer with ``kernel`` and ``bias`` as file constants."""
    width, units = kernel.shape
    layer = keras.layers.Dense(units)
    model = keras.Sequential([keras.Input((width,)), layer])
    layer.set_weights([kernel, bias])

    @tf.function(input_signature=[tf.TensorSpec((rows, width), tf.float32)])
    def serve(x):
        return model(x)

    return _builtin_converter(serve.get_concrete_function())


def _product(x, kernel, bias, fused):
    """``x @ kernel + bias`` as FULLY_CONNECTED (``fused``) or BATCH_MATMUL.

    The converter fuses a product and a constant bias into one
    FULLY_CONNECTED; an exact zero from the input between them keeps the
    BATCH_MATMUL (as `keras_tt.contraction.rebuilt_matmul` does).
    """
    if fused:
        # Weights stored (units, width), FULLY_CONNECTED's layout.
        return tf.matmul(x, tf.transpose(kernel), transpose_b=True) + bias
    return C.anchor_to_input(tf.matmul(x, kernel), x) + bias


def free_rebuild_file(kernel, bias, rows, fused=False):
    """The product with ``kernel`` made a run-time tensor at no cost."""
    width = kernel.shape[0]
    kernel, bias = tf.constant(kernel), tf.constant(bias)

    @tf.function(input_signature=[tf.TensorSpec((rows, width), tf.float32)])
    def serve(x):
        return _product(x, C.anchor_to_input(kernel, x), bias, fused)

    return _builtin_converter(serve.get_concrete_function())


def cached_kernel_file(layer, rows):
    """``layer``'s kernel rebuilt from its cores on the first run only."""
    width, units = layer.input_dim, layer.units
    cores = [tf.constant(keras.ops.convert_to_numpy(c)) for c in layer.cores]
    bias = tf.constant(keras.ops.convert_to_numpy(layer.bias))
    state = tf.Module()
    state.kernel = tf.Variable(tf.zeros((width, units)), trainable=False)
    state.ready = tf.Variable(False, trainable=False)

    @tf.function(input_signature=[tf.TensorSpec((rows, width), tf.float32)])
    def serve(x):
        def rebuild():
            # Anchored to a variable, so the converter cannot fold it.
            zero = tf.cast(state.ready, tf.float32)
            run = [core + zero for core in cores]
            state.kernel.assign(C.tt_kernel(run))
            state.ready.assign(True)
            return tf.constant(0.0)

        tf.cond(state.ready, lambda: tf.constant(0.0), rebuild)
        return _product(x, state.kernel.read_value(), bias, fused=False)

    return _builtin_converter(serve.get_concrete_function(), state)


def tt_rebuild_file(layer, rows, path):
    """``layer`` exported as `keras_tt.export_tflite` plans it."""
    model = keras.Sequential([keras.Input((layer.input_dim,)), layer])
    x = np.random.default_rng(2).normal(size=(4, layer.input_dim))
    export_tflite(
        model,
        path,
        representative_data=x.astype(np.float32),
        batch_size=rows,
        verbose=0,
    )
    with open(path, "rb") as f:
        return f.read()


def run(rows, width, units, tt_rank, min_seconds, folder):
    keras.utils.set_random_seed(0)
    layer = TTDense(units, tt_rank=tt_rank, bias_initializer="random_normal")
    layer.build((None, width))
    kernel = keras.ops.convert_to_numpy(layer.full_kernel()).astype(np.float32)
    bias = keras.ops.convert_to_numpy(layer.bias).astype(np.float32)
    with P.contraction_scope(P.LITERT):
        plan = layer.contraction_plan(rows)
    files = {
        "constant kernel": constant_kernel_file(kernel, bias, rows),
        "free rebuild": free_rebuild_file(kernel, bias, rows),
        "free rebuild, fused": free_rebuild_file(
            kernel, bias, rows, fused=True
        ),
        "cached kernel": cached_kernel_file(layer, rows),
        f"TT rebuild ({plan.name})": tt_rebuild_file(
            layer, rows, os.path.join(folder, "tt.tflite")
        ),
    }
    x = np.random.default_rng(1).normal(size=(rows, width)).astype(np.float32)
    reference = x @ kernel + bias
    runners = {}
    for name, content in files.items():
        runner = TFLiteRunner(content, num_threads=1)
        got = runner(x)
        error = np.linalg.norm(got - reference) / np.linalg.norm(reference)
        if error > 1e-4:
            raise AssertionError(f"{name}: LiteRT differs from x @ W + b")
        runner.set_inputs(x)
        runners[name] = runner
    times = interleaved_median_seconds(
        [r.interpreter.invoke for r in runners.values()],
        repeats=20,
        warmup=3,
        min_total=min_seconds,
    )
    base = times[0]
    rows_out = []
    for (name, content), t in zip(files.items(), times):
        counts = collections.Counter(
            op for op, _ in inspect_tflite(content).operators
        )
        ops = ", ".join(f"{op} {n}" for op, n in sorted(counts.items()))
        rows_out.append(
            [
                name,
                f"{1e3 * t:.3f}",
                f"{base / t:.2f}x",
                format_bytes(len(content)),
                ops,
            ]
        )
    headers = ["kernel", "ms", "vs constant", "file", "ops"]
    return format_table(headers, rows_out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=128)
    parser.add_argument("--width", type=int, default=768)
    parser.add_argument("--units", type=int, default=768)
    parser.add_argument("--tt-rank", type=int, default=16)
    parser.add_argument("--min-seconds", type=float, default=2.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kernel_bound_") as folder:
        table = run(
            args.rows,
            args.width,
            args.units,
            args.tt_rank,
            args.min_seconds,
            folder,
        )
    print(
        f"{args.rows} x {args.width} @ {args.width} x {args.units}, TT-rank "
        f"{args.tt_rank}; LiteRT, 1 thread, XNNPACK; interleaved medians."
    )
    print(table)


if __name__ == "__main__":
    main()
