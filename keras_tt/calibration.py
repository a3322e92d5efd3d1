"""Calibration data: checks, and what a model's layers see on a sample.

A small sample of real model inputs (a few hundred examples) tells
`keras_tt.tensorize` (``calibration_data=``) how much each layer's
truncation changes the model's outputs, and `keras_tt.data_aware_init`
what inputs each layer really receives. This module holds the shared
plumbing: the checks of the argument, batched forward passes, and
redirecting one layer's ``call`` for the length of a forward pass, to
record its inputs or to try a replacement in its place. The model's
weights are never written; the redirection is an instance attribute that
is removed afterwards, also when the pass fails.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping

import keras
import numpy as np


def _describe(data) -> str:
    if isinstance(data, Mapping):
        return (
            "{"
            + ", ".join(f"{k!r}: {_describe(v)}" for k, v in data.items())
            + "}"
        )
    if isinstance(data, (list, tuple)):
        return "[" + ", ".join(_describe(v) for v in data) + "]"
    shape = getattr(data, "shape", None)
    if shape is not None:
        return f"array of shape {tuple(shape)} ({getattr(data, 'dtype', '?')})"
    return type(data).__name__


def _leaves(data):
    if isinstance(data, Mapping):
        return list(data.values())
    if isinstance(data, (list, tuple)):
        return list(data)
    return [data]


def _as_arrays(data, name):
    if isinstance(data, Mapping):
        return {k: _as_arrays(v, name) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(_as_arrays(v, name) for v in data)
    try:
        return np.asarray(keras.ops.convert_to_numpy(data))
    except Exception:  # noqa: BLE001 - reported below
        raise ValueError(
            f"Received an invalid value for `{name}`, expected an array of "
            "model inputs (or a list or dict of arrays for several inputs)."
            f" Received: {name}={type(data).__name__}"
        ) from None


def check_calibration_data(model, data, name: str = "calibration_data"):
    """``data`` as NumPy arrays, checked against ``model``'s inputs.

    Expected: one array (or a list or dict of arrays, one per model input)
    of at least one example, all with the same number of examples, no NaN
    or Inf, and shapes the model accepts (a forward pass on two examples
    is tried). Raises a ValueError naming ``name`` otherwise.
    """
    if data is None:
        return None
    data = _as_arrays(data, name)
    leaves = _leaves(data)
    if not leaves or any(np.ndim(a) == 0 for a in leaves):
        raise ValueError(
            f"Received an invalid value for `{name}`, expected arrays whose "
            "first axis indexes the examples. "
            f"Received: {name}={_describe(data)}"
        )
    counts = {int(a.shape[0]) for a in leaves}
    if len(counts) != 1 or 0 in counts:
        raise ValueError(
            f"Received an invalid value for `{name}`, expected at least one "
            "example and the same number of examples in every input. "
            f"Received: {name}={_describe(data)}"
        )
    for a in leaves:
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise ValueError(
                f"Received an invalid value for `{name}`: it contains NaN "
                f"or Inf. Received: {name}={_describe(data)}"
            )
        if a.dtype.kind not in "biuf":
            raise ValueError(
                f"Received an invalid value for `{name}`, expected numeric "
                f"arrays. Received: {name}={_describe(data)}"
            )
    expected = _expected_shapes(model)
    if expected is not None and len(expected) == len(leaves):
        for shape, a in zip(expected, leaves):
            if len(shape) != a.ndim or any(
                s is not None and s != t for s, t in zip(shape[1:], a.shape[1:])
            ):
                raise ValueError(
                    f"Received an invalid value for `{name}`: the model "
                    f"expects inputs of shape {_shapes(expected)}. "
                    f"Received: {name}={_describe(data)}"
                )
    try:
        model(take(data, 0, min(2, counts.pop())), training=False)
    except Exception as error:  # noqa: BLE001 - reported as a ValueError
        raise ValueError(
            f"Received an invalid value for `{name}`: the model cannot be "
            f"called on it ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}). "
            f"Received: {name}={_describe(data)}"
        ) from None
    return data


def _expected_shapes(model):
    inputs = getattr(model, "inputs", None)
    if not inputs:
        return None
    try:
        return [tuple(t.shape) for t in inputs]
    except Exception:  # noqa: BLE001 - unknown shapes are not checked
        return None


def _shapes(shapes) -> str:
    if len(shapes) == 1:
        return str(shapes[0])
    return ", ".join(str(s) for s in shapes)


def num_examples(data) -> int:
    return int(_leaves(data)[0].shape[0])


def take(data, start: int, stop: int):
    """Examples ``start:stop`` of every input."""
    if isinstance(data, Mapping):
        return {k: v[start:stop] for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(v[start:stop] for v in data)
    return data[start:stop]


def batches(data, batch_size: int = 256):
    count = num_examples(data)
    for start in range(0, count, batch_size):
        yield take(data, start, min(count, start + batch_size))


def model_outputs(model, data, batch_size: int = 256) -> np.ndarray:
    """The model's outputs on ``data``, flattened to ``(examples, -1)`` and
    concatenated over outputs, in float64."""
    parts = []
    for batch in batches(data, batch_size):
        outputs = keras.tree.flatten(model(batch, training=False))
        parts.append(
            np.concatenate(
                [
                    np.asarray(
                        keras.ops.convert_to_numpy(o), np.float64
                    ).reshape(int(o.shape[0]), -1)
                    for o in outputs
                ],
                axis=1,
            )
        )
    return np.concatenate(parts, axis=0)


@contextlib.contextmanager
def redirected(layer, call):
    """Make ``layer.call`` be ``call(original_call, *args, **kwargs)``.

    Only for the length of the ``with`` block (eager forward passes); the
    instance attribute is removed afterwards.
    """
    original = layer.call
    had_own = "call" in vars(layer)

    def wrapper(*args, **kwargs):
        return call(original, *args, **kwargs)

    layer.call = wrapper
    try:
        yield
    finally:
        if had_own:
            layer.call = original
        else:
            del layer.call


def replaced(layer, new_layer):
    """``layer`` computing as ``new_layer`` for the ``with`` block."""
    return redirected(
        layer, lambda _, *args, **kwargs: new_layer(*args, **kwargs)
    )


class OutputChange:
    """Relative squared change of a model's outputs when one layer is
    swapped for another, ``||f'(x) - f(x)||^2 / ||f(x)||^2`` on ``data``."""

    def __init__(self, model, data, batch_size: int = 256):
        self.model, self.data, self.batch_size = model, data, batch_size
        self.reference = model_outputs(model, data, batch_size)
        self.norm = float(np.sum(self.reference**2)) or 1.0

    def __call__(self, layer, new_layer) -> float:
        return self.of_all([(layer, new_layer)])

    def of_all(self, pairs) -> float:
        """The change with every ``(layer, new_layer)`` of ``pairs``
        swapped at once."""
        with contextlib.ExitStack() as stack:
            for layer, new_layer in pairs:
                stack.enter_context(replaced(layer, new_layer))
            outputs = model_outputs(self.model, self.data, self.batch_size)
        change = float(np.sum((outputs - self.reference) ** 2)) / self.norm
        return change if math.isfinite(change) else math.inf


def record_inputs(model, layer, data, reduce, batch_size: int = 256):
    """Run ``model`` on ``data`` and hand every first input ``layer``
    receives to ``reduce(array)``, as NumPy."""

    def call(original, inputs, *args, **kwargs):
        reduce(np.asarray(keras.ops.convert_to_numpy(inputs)))
        return original(inputs, *args, **kwargs)

    with redirected(layer, call):
        for batch in batches(data, batch_size):
            model(batch, training=False)
