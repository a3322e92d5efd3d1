"""Checking a converted file against the Keras model it came from."""

from __future__ import annotations

import numpy as np

from keras_tt.export.report import Comparison
from keras_tt.export.report import VerificationError
from keras_tt.export.runtime import TFLiteRunner

# Number of samples compared with Keras when none are given.
_NUM_RANDOM_SAMPLES = 8


def samples(specs, validation_data, batches):
    """Inputs (list of arrays), labels or None, and a description."""
    labels = None
    if validation_data is not None:
        x = validation_data
        if isinstance(validation_data, tuple) and len(validation_data) == 2:
            x, labels = validation_data
        arrays = x if isinstance(x, (list, tuple)) else [x]
        arrays = [np.asarray(a, np.float32) for a in arrays]
        return (
            arrays,
            (None if labels is None else np.asarray(labels)),
            "validation_data",
        )
    if batches:
        merged = [np.concatenate(parts)[:64] for parts in zip(*batches[:64])]
        return merged, None, "representative_data"
    rng = np.random.default_rng(0)
    arrays = [
        rng.normal(size=(_NUM_RANDOM_SAMPLES,) + tuple(s.shape[1:])).astype(
            np.float32
        )
        for s in specs
    ]
    return arrays, None, "random normal inputs"


def keras_outputs(model, arrays):
    """The Keras model's outputs, flattened in the order the converter uses."""
    import keras
    import tensorflow as tf

    chunks = []
    step = 256
    for start in range(0, len(arrays[0]), step):
        part = [a[start : start + step] for a in arrays]
        out = model(part[0] if len(part) == 1 else part, training=False)
        chunks.append(
            [keras.ops.convert_to_numpy(o) for o in tf.nest.flatten(out)]
        )
    return [np.concatenate(c).astype(np.float32) for c in zip(*chunks)]


def _as_list(outputs):
    return outputs if isinstance(outputs, list) else [outputs]


def compare(path, arrays, reference, batch_size, runtime):
    """Compare at batch 1 and a larger batch (or the fixed batch)."""
    runner = TFLiteRunner(path, runtime=runtime)
    checks = []
    n = len(arrays[0])
    sizes = [batch_size] if batch_size else sorted({1, max(2, min(n, 16))})
    for size in sizes:
        part = [np.resize(a, (size,) + a.shape[1:]) for a in arrays]
        expected = [np.resize(r, (size,) + r.shape[1:]) for r in reference]
        got = _as_list(runner(part))
        shapes = [g.shape for g in got], [e.shape for e in expected]
        if shapes[0] != shapes[1]:
            raise VerificationError(
                f"The LiteRT output shapes {shapes[0]} differ from Keras's "
                f"{shapes[1]} (runtime={runtime}, batch {size})."
            )
        relative, max_abs = 0.0, 0.0
        for g, e in zip(got, expected):
            diff = g.astype(np.float64) - e.astype(np.float64)
            norm = float(np.linalg.norm(e.astype(np.float64)))
            relative = max(
                relative, float(np.linalg.norm(diff)) / (norm or 1.0)
            )
            max_abs = max(
                max_abs, float(np.max(np.abs(diff))) if diff.size else 0.0
            )
        checks.append(Comparison(runtime, size, relative, max_abs))
    full = runner.predict(arrays, batch_size=max(sizes))
    return checks, _as_list(full)


def check_tolerance(comparisons, tolerance) -> None:
    """Raise `VerificationError` if a comparison exceeds ``tolerance``."""
    worst = max(comparisons, key=lambda c: c.relative_error)
    if not worst.relative_error <= tolerance:
        raise VerificationError(
            "The float32 export does not match the Keras model: relative "
            f"error {worst.relative_error:.3g} > {tolerance:g} "
            f"(runtime={worst.runtime}, batch {worst.batch_size})."
        )


def accuracy(outputs, labels) -> float:
    """Fraction of samples whose first output's argmax equals the label."""
    return float(np.mean(np.argmax(outputs[0], -1) == labels))
