"""Calibration and validation data: one array per model input, checked.

Data for a model may be given as a single array (one-input models), a list
or tuple in ``model.inputs`` order, or a dict keyed by input name (the
model's dict keys, or the names of its ``keras.Input`` tensors). Every
array keeps its input's dtype: token ids stay integers.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

import numpy as np


@dataclasses.dataclass(frozen=True)
class ModelInput:
    """One model input, as the export sees it.

    Attributes:
        name: the TFLite tensor name the export gives it.
        aliases: every name data may use for it (dict key, tensor name).
        shape: the shape without the batch axis.
        dtype: the NumPy dtype of the Keras input.
    """

    name: str
    aliases: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def is_integer(self) -> bool:
        return bool(np.issubdtype(self.dtype, np.integer))

    def describe(self) -> str:
        shape = ", ".join(str(s) for s in (None,) + self.shape)
        return f"{self.name!r} (shape ({shape}), {self.dtype.name})"


def clean_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-/]", "_", name.split(":")[0]) or "input"


def input_structure(model):
    """The structure the model is called with (dict, list or tensor)."""
    try:
        return model.input
    except (AttributeError, ValueError):
        return None


def model_inputs(model) -> list[ModelInput]:
    """One `ModelInput` per entry of ``model.inputs``, in that order."""
    inputs = getattr(model, "inputs", None)
    if not inputs:
        raise ValueError(
            "Received an invalid value for `model`, expected a Keras model "
            "with known inputs (a Functional or Sequential model built on "
            "`keras.Input`). Received: model of type "
            f"{type(model).__name__} without `inputs`"
        )
    structure = input_structure(model)
    keys = {}
    if isinstance(structure, dict):
        keys = {id(tensor): key for key, tensor in structure.items()}
    result = []
    for tensor in inputs:
        shape = tuple(tensor.shape)
        if any(dim is None for dim in shape[1:]):
            raise ValueError(
                "Received a model input with an unknown non-batch dimension; "
                "TFLite export needs every dimension but the batch. "
                f"Received: input {tensor.name!r} with shape {shape}"
            )
        name = clean_name(tensor.name)
        aliases = [name, tensor.name]
        if id(tensor) in keys:
            aliases.insert(0, str(keys[id(tensor)]))
        result.append(
            ModelInput(
                name=name,
                aliases=tuple(dict.fromkeys(aliases)),
                shape=tuple(int(s) for s in shape[1:]),
                dtype=np.dtype(
                    getattr(tensor.dtype, "as_numpy_dtype", tensor.dtype)
                    or "float32"
                ),
            )
        )
    return result


def pack(model, arrays):
    """``arrays`` (in ``model.inputs`` order) in the structure of the model."""
    import keras

    structure = input_structure(model)
    if structure is None:
        return arrays[0] if len(arrays) == 1 else list(arrays)
    return keras.tree.pack_sequence_as(structure, list(arrays))


# ------------------------------------------------------------ checking data


def _is_array(value) -> bool:
    return isinstance(value, np.ndarray) or (
        hasattr(value, "shape") and hasattr(value, "dtype")
    )


def _received(value) -> str:
    if _is_array(value):
        return f"array of shape {tuple(value.shape)} and dtype {value.dtype}"
    return f"value of type {type(value).__name__}"


def arrays_for_inputs(data, inputs, argument) -> list[np.ndarray]:
    """``data`` as one checked array per input, in ``inputs`` order.

    Each array is cast to its input's dtype: integer inputs need integer
    values (floats holding whole numbers are accepted), float inputs need
    finite values, and every array needs the input's shape after the batch
    axis and the same number of samples.
    """
    names = [i.name for i in inputs]
    if isinstance(data, dict):
        remaining = dict(data)
        values = []
        for model_input in inputs:
            found = [a for a in model_input.aliases if a in remaining]
            if not found:
                raise ValueError(
                    f"Received an invalid value for `{argument}`, expected a "
                    f"dict with one entry per model input {names}. Received "
                    f"keys: {sorted(map(str, data))} (no entry for input "
                    f"{model_input.name!r})"
                )
            values.append(remaining.pop(found[0]))
        if remaining:
            raise ValueError(
                f"Received an invalid value for `{argument}`, expected a dict "
                f"with one entry per model input {names}. Received unknown "
                f"keys: {sorted(map(str, remaining))}"
            )
    elif isinstance(data, (list, tuple)):
        values = list(data)
    else:
        values = [data]
    if len(values) != len(inputs):
        raise ValueError(
            f"Received an invalid value for `{argument}`, expected "
            f"{len(inputs)} arrays (one per model input {names}, as a list "
            f"in that order or a dict keyed by input name). Received: "
            f"{len(values)} arrays"
        )
    arrays = []
    for value, model_input in zip(values, inputs):
        arrays.append(_checked_array(value, model_input, argument))
    counts = {a.shape[0] for a in arrays}
    if len(counts) > 1:
        raise ValueError(
            f"Received an invalid value for `{argument}`, expected the same "
            "number of samples for every model input. Received: "
            + ", ".join(
                f"{a.shape[0]} for {i.name!r}" for a, i in zip(arrays, inputs)
            )
        )
    return arrays


def _checked_array(value, model_input, argument) -> np.ndarray:
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"Received an invalid value for `{argument}`, expected an array "
            f"for input {model_input.describe()}. Received: "
            f"{_received(value)} ({error})"
        ) from None
    expected = (None,) + model_input.shape
    if array.ndim != len(expected) or array.shape[1:] != model_input.shape:
        raise ValueError(
            f"Received an invalid value for `{argument}`, expected samples "
            f"of shape {expected} for input {model_input.name!r}. Received: "
            f"array of shape {tuple(array.shape)}"
        )
    if array.shape[0] == 0:
        raise ValueError(
            f"Received an invalid value for `{argument}`, expected at least "
            f"one sample for input {model_input.name!r}. Received: array of "
            f"shape {tuple(array.shape)}"
        )
    numeric = np.issubdtype(array.dtype, np.number) or array.dtype == bool
    if not numeric:
        raise ValueError(
            f"Received an invalid value for `{argument}`, expected numbers "
            f"for input {model_input.describe()}. Received: array of dtype "
            f"{array.dtype}"
        )
    if model_input.is_integer:
        return _as_integers(array, model_input, argument)
    finite = np.isfinite(array)
    if not np.all(finite):
        bad = np.argwhere(~finite)[0]
        raise ValueError(
            f"Received an invalid value for `{argument}`, expected finite "
            f"values for input {model_input.name!r}. Received: "
            f"{int(np.size(finite) - np.count_nonzero(finite))} NaN or "
            f"infinite values, the first {array[tuple(bad)]!r} at index "
            f"{tuple(int(i) for i in bad)}"
        )
    return array.astype(model_input.dtype, copy=False)


def _as_integers(array, model_input, argument) -> np.ndarray:
    dtype = model_input.dtype
    if not np.issubdtype(array.dtype, np.integer) and array.dtype != bool:
        whole = np.isfinite(array) & (np.round(array) == array)
        if not np.all(whole):
            raise ValueError(
                f"Received an invalid value for `{argument}`, expected "
                f"integers for the integer input {model_input.describe()}. "
                f"Received: non-integer values such as "
                f"{array[~whole].ravel()[0]!r}"
            )
    info = np.iinfo(dtype)
    if array.size and (array.min() < info.min or array.max() > info.max):
        raise ValueError(
            f"Received an invalid value for `{argument}`, expected values "
            f"in the range of {dtype.name} for input {model_input.name!r}. "
            f"Received: values from {array.min()} to {array.max()}"
        )
    return array.astype(dtype)


# -------------------------------------------------------------- calibration


def _is_samples(data, inputs) -> bool:
    """Whether ``data`` is one set of samples rather than a set of batches."""
    if isinstance(data, dict) or _is_array(data):
        return True
    if len(inputs) > 1 and isinstance(data, (list, tuple)):
        return len(data) == len(inputs) and all(_is_array(v) for v in data)
    return False


def calibration_batches(data, inputs, batch_size=None):
    """Representative data as a list of batches, each one array per input.

    ``data`` is a set of samples (an array, a list in input order for a
    model with several inputs, or a dict), each then used as a batch of
    one; an iterable of batches (each an array, list or dict); or a
    callable returning such an iterable. With a fixed ``batch_size`` the
    samples are regrouped into batches of exactly that size (the last one
    completed by repeating samples).
    """
    argument = "representative_data"
    if callable(data) and not _is_array(data):
        data = data()
    if _is_samples(data, inputs):
        arrays = arrays_for_inputs(data, inputs, argument)
        batches = [
            [a[i : i + 1] for a in arrays] for i in range(arrays[0].shape[0])
        ]
    elif isinstance(data, Iterable) and not isinstance(data, (str, bytes)):
        batches = [arrays_for_inputs(b, inputs, argument) for b in data]
    else:
        raise ValueError(
            "Received an invalid value for `representative_data`, expected "
            "sample inputs (an array, a list in input order or a dict keyed "
            "by input name), an iterable of batches, or a callable returning "
            f"one. Received: {_received(data)}"
        )
    if not batches:
        raise ValueError(
            "Received an invalid value for `representative_data`, expected "
            "at least one batch. Received: an empty iterable"
        )
    if batch_size and any(b[0].shape[0] != batch_size for b in batches):
        merged = [np.concatenate(parts) for parts in zip(*batches)]
        n = merged[0].shape[0]
        count = -(-n // batch_size)
        batches = [
            [
                np.resize(
                    np.roll(a, -start, axis=0), (batch_size,) + a.shape[1:]
                )
                for a in merged
            ]
            for start in range(0, count * batch_size, batch_size)
        ]
    return batches


def check_calibration_range(batches, inputs) -> None:
    """Refuse calibration data that holds one value only for a float input.

    Full-integer quantisation takes each tensor's range from the
    calibration data; a constant input (all zeros, say) gives a zero range,
    and the file would be wrong on every real input.
    """
    for k, model_input in enumerate(inputs):
        if model_input.is_integer:
            continue
        low = min(float(np.min(b[k])) for b in batches)
        high = max(float(np.max(b[k])) for b in batches)
        if low == high:
            raise ValueError(
                "Received an invalid value for `representative_data`, "
                "expected calibration samples that vary, to measure the "
                "range of each tensor for quantization='int8'. Received: "
                f"every value of input {model_input.name!r} equal to {low!r}"
            )


# ------------------------------------------------------ integer input ranges


def integer_input_limits(model, inputs) -> list[int | None]:
    """For each integer input, the smallest lookup table size it feeds.

    A lookup table is a layer with integer ``input_dim`` and ``output_dim``
    attributes that takes the input directly (``keras.layers.Embedding``
    and look-alikes), also inside a nested model. ``None`` when there is
    none, or for float inputs.
    """
    limits = []
    for tensor, model_input in zip(model.inputs, inputs):
        if not model_input.is_integer:
            limits.append(None)
            continue
        sizes = _table_sizes(model, tensor)
        limits.append(min(sizes) if sizes else None)
    return limits


def _table_sizes(model, tensor) -> list[int]:
    sizes = []
    for layer in getattr(model, "layers", []):
        try:
            layer_input = layer.input
        except (AttributeError, ValueError, RuntimeError):
            continue
        if layer_input is not tensor:
            continue
        input_dim = getattr(layer, "input_dim", None)
        output_dim = getattr(layer, "output_dim", None)
        if all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool)
            for v in (input_dim, output_dim)
        ):
            sizes.append(int(input_dim))
        inner = getattr(layer, "inputs", None)
        if inner and len(inner) == 1 and getattr(layer, "layers", None):
            sizes.extend(_table_sizes(layer, inner[0]))
    return sizes
