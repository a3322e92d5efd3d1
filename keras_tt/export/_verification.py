"""Checking a converted file against the Keras model it came from."""

from __future__ import annotations

import numpy as np

from keras_tt.export import _input_data
from keras_tt.export._compiled_model import NAME as COMPILED_MODEL
from keras_tt.export._compiled_model import CompiledModelRunner
from keras_tt.export.report import Comparison
from keras_tt.export.report import VerificationError
from keras_tt.export.runtime import TFLiteRunner

# Number of samples compared with Keras when none are given.
_NUM_RANDOM_SAMPLES = 8
# Most samples taken from the representative data for the comparison.
_MAX_CALIBRATION_SAMPLES = 64


def samples(model, inputs, validation_data, batches):
    """Inputs (one array per model input), labels or None, a description.

    From ``validation_data`` (``x`` or ``(x, labels)``), else the first
    representative samples, else random ones: normal floats for float
    inputs and valid ids for integer inputs that feed a lookup table
    (``keras.layers.Embedding``); an integer input without one needs data.
    """
    if validation_data is not None:
        x, labels = validation_data, None
        if isinstance(validation_data, tuple) and len(validation_data) == 2:
            x, labels = validation_data
        arrays = _input_data.arrays_for_inputs(x, inputs, "validation_data")
        if labels is not None:
            labels = _checked_labels(labels, arrays[0].shape[0])
        return arrays, labels, "validation_data"
    if batches:
        merged = [np.concatenate(parts) for parts in zip(*batches)]
        merged = [a[:_MAX_CALIBRATION_SAMPLES] for a in merged]
        return merged, None, "representative_data"
    limits = _input_data.integer_input_limits(model, inputs)
    rng = np.random.default_rng(0)
    arrays = []
    for model_input, limit in zip(inputs, limits):
        shape = (_NUM_RANDOM_SAMPLES,) + model_input.shape
        if not model_input.is_integer:
            arrays.append(rng.normal(size=shape).astype(model_input.dtype))
        elif limit:
            arrays.append(
                rng.integers(0, limit, shape).astype(model_input.dtype)
            )
        else:
            raise ValueError(
                "Received an invalid value for `validation_data`, expected "
                "sample inputs for a model with the integer input "
                f"{model_input.describe()}, which feeds no lookup table "
                "(such as keras.layers.Embedding) whose size would give the "
                "valid values, so random samples cannot be drawn. Pass "
                "`validation_data` or `representative_data`. Received: "
                "validation_data=None"
            )
    return arrays, None, "random inputs"


def _checked_labels(labels, num_samples) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim == 0 or labels.reshape(labels.shape[0], -1).shape[1] != 1:
        raise ValueError(
            "Received an invalid value for `labels` (the second entry of "
            "`validation_data`), expected one integer class per sample, "
            f"shape ({num_samples},). Received: labels of shape "
            f"{labels.shape}"
        )
    labels = labels.reshape(-1)
    if labels.shape[0] != num_samples:
        raise ValueError(
            "Received an invalid value for `labels` (the second entry of "
            f"`validation_data`), expected {num_samples} labels, one per "
            f"sample. Received: {labels.shape[0]} labels"
        )
    return labels


def keras_outputs(model, arrays):
    """The Keras model's outputs, flattened in the order the converter uses."""
    import keras
    import tensorflow as tf

    chunks = []
    step = 256
    for start in range(0, len(arrays[0]), step):
        part = [a[start : start + step] for a in arrays]
        out = model(_input_data.pack(model, part), training=False)
        chunks.append(
            [keras.ops.convert_to_numpy(o) for o in tf.nest.flatten(out)]
        )
    return [np.concatenate(c).astype(np.float32) for c in zip(*chunks)]


def _as_list(outputs):
    return outputs if isinstance(outputs, list) else [outputs]


def check_finite(outputs, where) -> None:
    """Raise `VerificationError` if any output holds NaN or infinity."""
    for k, output in enumerate(outputs):
        finite = np.isfinite(output)
        if not np.all(finite):
            count = int(finite.size - np.count_nonzero(finite))
            raise VerificationError(
                f"The {where} outputs hold NaN or infinite values (output "
                f"{k}: {count} of {finite.size} values), so they cannot be "
                "compared; no file was written."
            )


def nan_max(values) -> float:
    """``max`` that returns NaN when any value is NaN."""
    values = [float(v) for v in values]
    if any(np.isnan(v) for v in values):
        return float("nan")
    return max(values)


def errors(got, expected) -> tuple[float, float]:
    """Relative (Frobenius) and largest absolute error over all outputs."""
    relative, max_abs = [0.0], [0.0]
    for g, e in zip(got, expected):
        diff = g.astype(np.float64) - e.astype(np.float64)
        norm = float(np.linalg.norm(e.astype(np.float64)))
        relative.append(float(np.linalg.norm(diff)) / (norm or 1.0))
        if diff.size:
            max_abs.append(float(np.max(np.abs(diff))))
    return nan_max(relative), nan_max(max_abs)


def _sizes(n, batch_size):
    return [batch_size] if batch_size else sorted({1, max(2, min(n, 16))})


def compare(path, inputs, arrays, reference, batch_size, runtime):
    """Compare at batch 1 and a larger batch (or the fixed batch)."""
    runner = TFLiteRunner(path, runtime=runtime)
    names = [i.name for i in inputs]
    checks = []
    sizes = _sizes(len(arrays[0]), batch_size)
    for size in sizes:
        part = [np.resize(a, (size,) + a.shape[1:]) for a in arrays]
        expected = [np.resize(r, (size,) + r.shape[1:]) for r in reference]
        got = _as_list(runner(dict(zip(names, part))))
        _check_shapes(got, expected, runtime, size)
        check_finite(got, f"LiteRT ({runtime}, batch {size})")
        checks.append(Comparison(runtime, size, *errors(got, expected)))
    full = runner.predict(dict(zip(names, arrays)), batch_size=max(sizes))
    return checks, _as_list(full)


def compare_compiled_model(path, info, inputs, arrays, reference, batch_size):
    """Compare the ``CompiledModel`` API's outputs with Keras's.

    The same batch sizes as `compare`; a resizable batch is resized with
    ``resize_input_tensor``.
    """
    runner = CompiledModelRunner(path, info)
    names = [i.name for i in inputs]
    checks = []
    for size in _sizes(len(arrays[0]), batch_size):
        part = [np.resize(a, (size,) + a.shape[1:]) for a in arrays]
        expected = [np.resize(r, (size,) + r.shape[1:]) for r in reference]
        got = runner(dict(zip(names, part)), [e.shape for e in expected])
        _check_shapes(got, expected, COMPILED_MODEL, size)
        check_finite(got, f"LiteRT ({COMPILED_MODEL}, batch {size})")
        checks.append(Comparison(COMPILED_MODEL, size, *errors(got, expected)))
    return checks


def _check_shapes(got, expected, runtime, size) -> None:
    shapes = [g.shape for g in got], [e.shape for e in expected]
    if shapes[0] != shapes[1]:
        raise VerificationError(
            f"The LiteRT output shapes {shapes[0]} differ from Keras's "
            f"{shapes[1]} (runtime={runtime}, batch {size})."
        )


def check_tolerance(comparisons, tolerance) -> None:
    """Raise `VerificationError` if a comparison exceeds ``tolerance``."""
    for c in comparisons:
        if not c.relative_error <= tolerance:
            raise VerificationError(
                "The float32 export does not match the Keras model: relative "
                f"error {c.relative_error:.3g} > {tolerance:g} "
                f"(runtime={c.runtime}, batch {c.batch_size})."
            )


def accuracy(outputs, labels) -> float:
    """Fraction of samples whose first output's argmax equals the label."""
    return float(np.mean(np.argmax(outputs[0], -1) == labels))
