"""`export_tflite`: a Keras model to a verified, builtin-ops-only ``.tflite`` file.

The export goes through a ``tf.function`` with an explicit input signature
and ``tf.lite.TFLiteConverter`` restricted to the builtin op sets, so the
file runs on the stock LiteRT runtime without the Flex (TF ops) delegate.
The file is first written next to its destination under a temporary name,
checked in the LiteRT interpreter, and only then moved into place.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import tempfile
import warnings
from collections.abc import Iterable
from collections.abc import Sequence
from typing import Any

import numpy as np

from keras_tt.export.inspect import TFLiteInfo
from keras_tt.export.inspect import inspect_tflite
from keras_tt.export.runtime import RUNTIMES
from keras_tt.export.runtime import TFLiteRunner
from keras_tt.report import iter_layers

QUANTIZATIONS = (None, "float32", "float16", "dynamic", "int8")
IO_DTYPES = ("float32", "int8")
# A float32 export must match Keras to this relative error (Frobenius norm
# of the difference over that of the Keras outputs).
FLOAT32_TOLERANCE = 1e-5
# Number of samples compared with Keras when none are given.
_NUM_RANDOM_SAMPLES = 8


class UnsupportedOpError(ValueError):
    """The model needs an op that the builtin LiteRT op set does not have.

    Attributes:
        ops: list of ``(op_name, layer_name, kind)`` tuples: the TensorFlow
            op (``"Einsum"``), the Keras layer it came from (``None`` when
            it could not be traced to one) and ``"flex"`` (the op exists in
            the TF-ops delegate only) or ``"custom"`` (it has no LiteRT
            kernel at all).
    """

    def __init__(
        self, message: str, ops: Sequence[tuple[str, str | None, str]]
    ):
        super().__init__(message)
        self.ops = list(ops)


class VerificationError(RuntimeError):
    """The converted model does not load, run or match the Keras model."""


@dataclasses.dataclass(frozen=True)
class Comparison:
    """LiteRT output against Keras output for one runtime and batch size."""

    runtime: str
    batch_size: int
    relative_error: float
    max_abs_error: float


@dataclasses.dataclass(frozen=True)
class ExportReport:
    """What `export_tflite` wrote and how it checked it.

    Attributes:
        path: the ``.tflite`` file written.
        quantization: the export mode (``None`` for float32).
        info: `TFLiteInfo` of the file: size, ops and versions, minimum
            runtime version, inputs and outputs.
        comparisons: one `Comparison` per runtime (XNNPACK delegate and
            reference kernels) and batch size checked.
        tolerance: the relative error a float32 export must stay within
            (``None`` for quantised exports, whose error is reported only).
        num_samples: number of inputs compared with Keras.
        sample_source: where those inputs came from.
        keras_accuracy: accuracy of the Keras model on the samples, when
            labels were given.
        tflite_accuracy: accuracy of the exported model (XNNPACK runtime)
            on the same samples.
    """

    path: str
    quantization: str | None
    info: TFLiteInfo
    comparisons: tuple[Comparison, ...]
    tolerance: float | None
    num_samples: int
    sample_source: str
    keras_accuracy: float | None = None
    tflite_accuracy: float | None = None

    @property
    def file_size(self) -> int:
        """Size of the file in bytes."""
        return self.info.file_size

    @property
    def min_runtime_version(self) -> str | None:
        """Oldest LiteRT/TFLite runtime that can load the file."""
        return self.info.min_runtime_version

    @property
    def op_versions(self) -> dict[str, int]:
        """Operator name to the version the file uses."""
        return self.info.op_versions

    @property
    def relative_error(self) -> float:
        """Largest relative error over every runtime and batch checked."""
        return max(c.relative_error for c in self.comparisons)

    @property
    def max_abs_error(self) -> float:
        """Largest absolute difference from Keras over every check."""
        return max(c.max_abs_error for c in self.comparisons)

    @property
    def accuracy_change(self) -> float | None:
        """``tflite_accuracy - keras_accuracy``, when labels were given."""
        if self.keras_accuracy is None or self.tflite_accuracy is None:
            return None
        return self.tflite_accuracy - self.keras_accuracy

    def summary(self) -> str:
        """A multi-line, human-readable report."""
        mode = self.quantization or "float32"
        lines = [
            f"Exported ({mode}): {self.path}",
            self.info.summary().split("\n", 1)[1],
        ]
        batches = sorted({c.batch_size for c in self.comparisons})
        lines.append(
            f"Checked against Keras on {self.num_samples} samples "
            f"({self.sample_source}), batch sizes {batches}:"
        )
        for c in self.comparisons:
            lines.append(
                f"  {c.runtime:9s} batch {c.batch_size:4d}: relative error "
                f"{c.relative_error:.2e}, max abs error {c.max_abs_error:.2e}"
            )
        if self.tolerance is not None:
            lines.append(
                f"  within the float32 tolerance {self.tolerance:g}: yes"
            )
        if self.accuracy_change is not None:
            lines.append(
                f"  accuracy: Keras {100 * self.keras_accuracy:.2f}%, LiteRT "
                f"{100 * self.tflite_accuracy:.2f}% "
                f"({100 * self.accuracy_change:+.2f} points)"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


# --------------------------------------------------------------- arguments


def _check_arguments(quantization, representative_data, batch_size, io_dtype):
    if quantization not in QUANTIZATIONS:
        raise ValueError(
            "Received an invalid value for `quantization`, expected one of "
            f"{QUANTIZATIONS}. Received: quantization={quantization!r}"
        )
    if quantization == "int8" and representative_data is None:
        raise ValueError(
            "Received an invalid value for `representative_data`, expected "
            "sample inputs (a NumPy array, or an iterable of batches) to "
            "calibrate the full-integer export with quantization='int8'. "
            "Received: representative_data=None"
        )
    if batch_size is not None and (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise ValueError(
            "Received an invalid value for `batch_size`, expected a positive "
            f"integer or None (resizable batch). Received: batch_size={batch_size!r}"
        )
    if io_dtype not in IO_DTYPES:
        raise ValueError(
            "Received an invalid value for `io_dtype`, expected one of "
            f"{IO_DTYPES}. Received: io_dtype={io_dtype!r}"
        )
    if io_dtype != "float32" and quantization != "int8":
        raise ValueError(
            "Received an invalid value for `io_dtype`, integer inputs and "
            "outputs need quantization='int8'. Received: "
            f"io_dtype={io_dtype!r} with quantization={quantization!r}"
        )


def _input_specs(model, batch_size):
    import tensorflow as tf

    inputs = getattr(model, "inputs", None)
    if not inputs:
        raise ValueError(
            "Received an invalid value for `model`, expected a Keras model with "
            "known inputs (a Functional or Sequential model built on "
            "`keras.Input`). Received: model of type "
            f"{type(model).__name__} without `inputs`"
        )
    specs = []
    for tensor in inputs:
        shape = tuple(tensor.shape)
        if any(dim is None for dim in shape[1:]):
            raise ValueError(
                "Received a model input with an unknown non-batch dimension; "
                "TFLite export needs every dimension but the batch. "
                f"Received: input {tensor.name!r} with shape {shape}"
            )
        specs.append(
            tf.TensorSpec(
                (batch_size,) + shape[1:],
                tensor.dtype or "float32",
                name=_clean_name(tensor.name),
            )
        )
    return specs


def _clean_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-/]", "_", name.split(":")[0]) or "input"


def _batches(data, batch_size=None) -> list[list[np.ndarray]]:
    """Representative data as a list of batches, each a list of float arrays.

    With a fixed ``batch_size`` the samples are regrouped into batches of
    exactly that size (the last one completed by repeating samples).
    """
    if callable(data) and not isinstance(data, np.ndarray):
        data = data()
    if isinstance(data, np.ndarray):
        data = [data[i : i + 1] for i in range(len(data))]
    if not isinstance(data, Iterable):
        raise ValueError(
            "Received an invalid value for `representative_data`, expected a "
            "NumPy array of sample inputs or an iterable of batches. "
            f"Received: representative_data of type {type(data).__name__}"
        )
    batches = []
    for batch in data:
        if isinstance(batch, dict):
            batch = list(batch.values())
        parts = list(batch) if isinstance(batch, (list, tuple)) else [batch]
        batches.append([np.asarray(p, dtype=np.float32) for p in parts])
    if not batches:
        raise ValueError(
            "Received an invalid value for `representative_data`, expected at "
            "least one batch. Received: an empty iterable"
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


# -------------------------------------------------------------- conversion


class _DropMessage(logging.Filter):
    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def _make_converter(model, specs, quantization, batches, io_dtype):
    import tensorflow as tf

    single = len(specs) == 1

    @tf.function(input_signature=specs, autograph=False)
    def serve(*inputs):
        return model(inputs[0] if single else list(inputs), training=False)

    concrete = serve.get_concrete_function()
    # Without a trackable object the converter freezes the variables into
    # constants, so MatMuls against them lower to FULLY_CONNECTED; with one,
    # they stay resource variables (VAR_HANDLE / READ_VARIABLE, BATCH_MATMUL)
    # and int8 calibration fails. The converter logs a deprecation notice
    # for this choice, which is dropped here.
    absl_logger = logging.getLogger("absl")
    notice = _DropMessage("trackable_obj")
    absl_logger.addFilter(notice)
    try:
        converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    finally:
        absl_logger.removeFilter(notice)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        # Per-channel weights raise FULLY_CONNECTED to a version (12) that
        # only runtimes >= 2.17 load; per-tensor weights keep older ones.
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    elif quantization == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8
        ]
        converter.representative_dataset = lambda: iter(batches)
        if io_dtype == "int8":
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    return converter


def _layer_names(model) -> list[str]:
    return [layer.name for _, layer in iter_layers(model)]


def _layer_of(scope: str, layer_names: Sequence[str]) -> str | None:
    """The innermost Keras layer whose name scope appears in ``scope``."""
    found = None
    for part in scope.split("/")[:-1]:  # the last part names the op
        matches = [
            name
            for name in layer_names
            if re.fullmatch(re.escape(name) + r"(_\d+)?", part)
        ]
        if matches:
            found = max(matches, key=len)
    return found


def _unsupported_ops(error, layer_names) -> list[tuple[str, str | None, str]]:
    ops = []
    for entry in getattr(error, "errors", None) or []:
        code = getattr(entry, "error_code", 0)
        op = entry.operator.name if entry.HasField("operator") else ""
        if not op:
            continue
        kind = "custom" if "CUSTOM" in _error_code_name(entry, code) else "flex"
        scope = ""
        location = entry.location
        for call in location.call:
            if call.name:
                scope = call.name
                break
        if not scope and location.name:
            scope = location.name
        name = op[3:] if op.startswith("tf.") else op
        item = (name, _layer_of(scope, layer_names) if scope else None, kind)
        if item not in ops:
            ops.append(item)
    if not ops:
        message = str(error)
        for name in re.findall(
            r"'tf\.(\w+)' op is neither a custom op nor a flex op", message
        ):
            item = (name, None, "flex")
            if item not in ops:
                ops.append(item)
    return ops


def _error_code_name(entry, code) -> str:
    try:
        return entry.ErrorCode.Name(code)
    except (AttributeError, ValueError):
        return str(code)


def _raise_unsupported(error, model, quantization):
    ops = _unsupported_ops(error, _layer_names(model))
    if not ops:
        raise VerificationError(
            "TFLite conversion with builtin ops only failed "
            f"(quantization={quantization!r}): {error}"
        ) from error
    described = "; ".join(
        f"{op} ({'needs the Flex delegate' if kind == 'flex' else 'no LiteRT kernel'}"
        f"{', from layer ' + repr(layer) if layer else ''})"
        for op, layer, kind in ops
    )
    raise UnsupportedOpError(
        "The model needs ops that are not LiteRT builtins, so it cannot run on "
        f"the stock runtime: {described}. Replace or rewrite those layers; "
        "no file was written.",
        ops,
    ) from None


# ------------------------------------------------------------ verification


def _samples(specs, validation_data, batches):
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


def _keras_outputs(model, arrays):
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


def _compare(path, arrays, reference, batch_size, runtime):
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


# ------------------------------------------------------------------ export


def export_tflite(
    model,
    path: str | os.PathLike,
    quantization: str | None = None,
    representative_data: Any = None,
    batch_size: int | None = None,
    io_dtype: str = "float32",
    validation_data: Any = None,
    tolerance: float = FLOAT32_TOLERANCE,
    verbose: bool = True,
) -> ExportReport:
    """Export a Keras model to a ``.tflite`` file that needs builtin ops only.

    The model is traced with an explicit input signature, converted with
    ``tf.lite.TFLiteConverter`` restricted to the builtin op sets (never
    ``SELECT_TF_OPS``), written under a temporary name beside ``path``,
    verified, and moved to ``path`` only if verification passes. The user's
    model is not modified.

    Verification loads the file in the LiteRT interpreter
    (``ai_edge_litert``) with its default XNNPACK delegate and with the
    reference kernels alone, checks that every op is a builtin, runs it at
    batch 1 and, for a resizable batch, after resizing to a larger batch, and
    compares with the Keras model's outputs. A float32 export must match
    within ``tolerance`` (relative error, Frobenius norm of the difference
    over that of the Keras outputs); for quantised exports the error (and,
    with labels, the accuracy change) is reported.

    Args:
        model: a Keras model with known inputs (Functional or Sequential),
            which may hold `keras_tt.TTDense` and ordinary layers.
        path: where to write the ``.tflite`` file.
        quantization: ``None`` or ``"float32"`` (no quantisation),
            ``"float16"`` (weights stored as float16), ``"dynamic"``
            (dynamic-range: int8 weights for tensors of at least 1024
            elements, float activations) or ``"int8"`` (full integer,
            calibrated on ``representative_data``; every op quantised, TT
            cores included).
        representative_data: calibration inputs for ``"int8"``: a NumPy
            array of samples (each used as a batch of one), an iterable of
            batches (arrays, or lists of arrays for several inputs), or a
            callable returning such an iterable. A few hundred samples
            suffice. With the other modes it only supplies the verification
            samples.
        batch_size: ``None`` for a resizable batch axis (the default), or a
            fixed batch size.
        io_dtype: for ``"int8"``, ``"float32"`` inputs and outputs (the
            model quantises on entry and dequantises on exit) or
            ``"int8"`` (the caller quantises with the input tensor's scale
            and zero point).
        validation_data: inputs ``x`` or a tuple ``(x, labels)`` to compare
            on; defaults to the representative data, else to random normal
            inputs.
        tolerance: largest relative error accepted for a float32 export.
        verbose: print the report.

    Returns:
        An `ExportReport`: file size, op types and versions, minimum runtime
        version, the comparisons with Keras and, with labels, the accuracy
        of both models.

    Raises:
        ValueError: for invalid arguments.
        UnsupportedOpError: (a `ValueError`) when a layer needs an op that is
            not a LiteRT builtin; it names the op and the layer, and no file
            is written.
        VerificationError: when the converted model does not load or run in
            the interpreter, or a float32 export does not match Keras; no
            file is written.

    Example:

    >>> import os, tempfile
    >>> import numpy as np, keras, keras_tt
    >>> from keras_tt.export import export_tflite
    >>> model = keras.Sequential([
    ...     keras.Input((256,)),
    ...     keras_tt.TTDense(64, tt_rank=4, activation="relu"),
    ...     keras.layers.Dense(10),
    ... ])
    >>> folder = tempfile.mkdtemp()
    >>> report = export_tflite(model, os.path.join(folder, "m.tflite"),
    ...                        verbose=False)
    >>> report.info.builtin_only, report.relative_error < 1e-5
    (True, True)
    >>> sorted(report.op_versions)
    ['FULLY_CONNECTED', 'RESHAPE', 'TRANSPOSE']
    >>> x = np.random.default_rng(0).normal(size=(32, 256)).astype("float32")
    >>> report = export_tflite(model, os.path.join(folder, "m_int8.tflite"),
    ...                        quantization="int8", representative_data=x,
    ...                        verbose=False)
    >>> report.quantization, report.info.builtin_only
    ('int8', True)
    """

    _check_arguments(quantization, representative_data, batch_size, io_dtype)
    if quantization == "float32":
        quantization = None
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(
            "Received an invalid value for `path`, expected a file in an "
            f"existing folder. Received: path={path!r}"
        )
    specs = _input_specs(model, batch_size)
    batches = None
    if representative_data is not None:
        batches = _batches(representative_data, batch_size)

    # 1. Convert with builtin ops only; name the ops and layers that block it.
    converter = _make_converter(model, specs, quantization, batches, io_dtype)
    try:
        with warnings.catch_warnings():
            # Emitted by the frozen-graph path for every int8 model; the
            # calibration supplies the statistics it asks for.
            warnings.filterwarnings(
                "ignore",
                message="Statistics for quantized inputs were expected",
            )
            content = converter.convert()
    except Exception as error:  # tf.lite's ConverterError is not public.
        if type(error).__name__ != "ConverterError":
            raise
        _raise_unsupported(error, model, quantization)

    # 2. Write beside the destination under a temporary name.
    handle, temp_path = tempfile.mkstemp(suffix=".tflite.tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(content)

        # 3. Check the op list.
        info = inspect_tflite(temp_path)
        if not info.builtin_only:
            raise VerificationError(
                "The converted model holds custom ops "
                f"{info.custom_ops}, which the stock LiteRT runtime cannot run."
            )

        # 4. Run it in the interpreter and compare with Keras.
        arrays, labels, source = _samples(specs, validation_data, batches)
        reference = _keras_outputs(model, arrays)
        comparisons, tflite_outputs = [], None
        for runtime in RUNTIMES:
            try:
                checks, outputs = _compare(
                    temp_path, arrays, reference, batch_size, runtime
                )
            except (RuntimeError, ValueError) as error:
                if isinstance(error, VerificationError):
                    raise
                raise VerificationError(
                    f"The exported model fails in the LiteRT interpreter "
                    f"(runtime={runtime}): {error}"
                ) from error
            comparisons.extend(checks)
            if tflite_outputs is None:
                tflite_outputs = outputs
        checked_tolerance = tolerance if quantization is None else None
        if checked_tolerance is not None:
            worst = max(comparisons, key=lambda c: c.relative_error)
            if not worst.relative_error <= checked_tolerance:
                raise VerificationError(
                    "The float32 export does not match the Keras model: "
                    f"relative error {worst.relative_error:.3g} > {checked_tolerance:g} "
                    f"(runtime={worst.runtime}, batch {worst.batch_size})."
                )
        keras_accuracy = tflite_accuracy = None
        if labels is not None:
            labels = labels.reshape(-1)
            keras_accuracy = float(
                np.mean(np.argmax(reference[0], -1) == labels)
            )
            tflite_accuracy = float(
                np.mean(np.argmax(tflite_outputs[0], -1) == labels)
            )

        # 5. Move into place, with the permissions of a newly created file.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp_path, 0o666 & ~umask)
        os.replace(temp_path, path)
    except BaseException:
        if os.path.exists(temp_path):
            os.remove(temp_path)
        raise

    report = ExportReport(
        path=path,
        quantization=quantization,
        info=dataclasses.replace(info, path=path),
        comparisons=tuple(comparisons),
        tolerance=checked_tolerance,
        num_samples=len(arrays[0]),
        sample_source=source,
        keras_accuracy=keras_accuracy,
        tflite_accuracy=tflite_accuracy,
    )
    if verbose:
        print(report.summary())
    return report


def export_keras_file(
    model_path: str | os.PathLike,
    output_path: str | os.PathLike,
    quantization: str | None = None,
    representative_path: str | os.PathLike | None = None,
    batch_size: int | None = None,
    io_dtype: str = "float32",
    verbose: bool = True,
) -> ExportReport:
    """`export_tflite` for a saved ``.keras`` model and a ``.npy`` of samples.

    This is what ``keras-tt export IN.keras OUT.tflite`` runs.

    Args:
        model_path: a model saved with ``model.save("m.keras")``; keras_tt
            layers are registered, so no ``custom_objects`` are needed.
        output_path: the ``.tflite`` file to write.
        quantization: as for `export_tflite`.
        representative_path: a ``.npy`` file of sample inputs (first axis:
            samples), used to calibrate ``"int8"`` and to verify.
        batch_size: as for `export_tflite`.
        io_dtype: as for `export_tflite`.
        verbose: print the report.

    Returns:
        The `ExportReport`.
    """
    import keras

    import keras_tt  # noqa: F401  (registers TTDense for deserialisation)

    model = keras.models.load_model(os.fspath(model_path), compile=False)
    representative = None
    if representative_path is not None:
        representative = np.load(os.fspath(representative_path))
    return export_tflite(
        model,
        output_path,
        quantization=quantization,
        representative_data=representative,
        batch_size=batch_size,
        io_dtype=io_dtype,
        verbose=verbose,
    )
