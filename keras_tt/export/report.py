"""What `export_tflite` returns and raises: the report and the error types."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from keras_tt.export.inspect import TFLiteInfo


def _nan_max(values) -> float:
    values = [float(v) for v in values]
    return float("nan") if any(v != v for v in values) else max(values)


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

    @property
    def rel_error(self) -> float:
        """``relative_error`` under the name `tt_svd` and `tensorize` use."""
        return self.relative_error


@dataclasses.dataclass(frozen=True)
class ExportReport:
    """What `export_tflite` wrote and how it checked it.

    Attributes:
        path: the ``.tflite`` file written.
        quantization: the export mode (``None`` for float32).
        info: `TFLiteInfo` of the file: size, ops and versions, minimum
            runtime version, inputs and outputs.
        comparisons: one `Comparison` per runtime and batch size checked:
            ``"xnnpack"`` and ``"reference"`` (the ``Interpreter`` with and
            without its XNNPACK delegate) and ``"compiled_model"`` (the
            ``CompiledModel`` API, CPU accelerator).
        tolerance: the relative error a float32 export must stay within
            (``None`` for quantised exports, whose error is reported only).
        num_samples: number of inputs compared with Keras.
        sample_source: where those inputs came from.
        keras_accuracy: accuracy of the Keras model on the samples, when
            labels were given.
        tflite_accuracy: accuracy of the exported model (XNNPACK runtime)
            on the same samples.
        warnings: what the export did not do as asked, for instance a
            ``"dynamic"`` export that quantised no weight tensor.

    `quantized_tensors` and `float_tensors` say, per weight tensor, what
    the file actually stores as integers and what stays float.
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
    warnings: tuple[str, ...] = ()

    @property
    def quantized_tensors(self) -> tuple[str, ...]:
        """Weight tensors the file stores as integers (int8 and such)."""
        return tuple(w.name for w in self.info.quantized_weights)

    @property
    def float_tensors(self) -> tuple[str, ...]:
        """Weight tensors the file stores as float32 or float16."""
        return tuple(w.name for w in self.info.float_weights)

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
        return _nan_max(c.relative_error for c in self.comparisons)

    @property
    def rel_error(self) -> float:
        """``relative_error`` under the name `tt_svd` and `tensorize` use."""
        return self.relative_error

    @property
    def max_abs_error(self) -> float:
        """Largest absolute difference from Keras over every check."""
        return _nan_max(c.max_abs_error for c in self.comparisons)

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
        lines.extend(self._weight_lines())
        batches = sorted({c.batch_size for c in self.comparisons})
        lines.append(
            f"Checked against Keras on {self.num_samples} samples "
            f"({self.sample_source}), batch sizes {batches}:"
        )
        for c in self.comparisons:
            lines.append(
                f"  {c.runtime:14s} batch {c.batch_size:4d}: relative error "
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
        lines.extend(f"WARNING: {w}" for w in self.warnings)
        return "\n".join(lines)

    def _weight_lines(self, limit: int = 12) -> list[str]:
        weights = self.info.weights
        if not weights:
            return []
        quantized = self.info.quantized_weights
        lines = [
            f"Weights: {len(quantized)} of {len(weights)} tensors stored as "
            "integers:"
        ]
        for w in weights[:limit]:
            lines.append(f"  {w.dtype:8s} {w.size:10,d}  {w.name}")
        if len(weights) > limit:
            lines.append(f"  ... and {len(weights) - limit} more")
        return lines

    def __str__(self) -> str:
        return self.summary()
