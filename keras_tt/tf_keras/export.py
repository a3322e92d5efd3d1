"""TFLite export of tf_keras models: float, post-training int8 and QAT int8.

`export_tflite` converts a `tf_keras` model (with tf_keras `TTDense`
layers, and tensorflow-model-optimization's QAT, pruning or clustering
wrappers) to a builtin-only ``.tflite`` file, runs it in the LiteRT
interpreter against the model, and reports the ops (with
`keras_tt.inspect_tflite`), the ops that still compute in float inside an
int8 graph, and the zip-compressed size tfmot's guides quote for pruned and
clustered models.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import zipfile

import numpy as np
import tensorflow as tf

from keras_tt.export import inspect_tflite
from keras_tt.export._litert import import_litert
from keras_tt.tf_keras import _tfmot

QUANTIZATIONS = (None, "float32", "int8")

# Ops that convert between float and int8 at the edges of an int8 graph.
_BOUNDARY_OPS = ("QUANTIZE", "DEQUANTIZE")


@dataclasses.dataclass(frozen=True)
class TFLiteExport:
    """What `export_tflite` wrote.

    Attributes:
        path: the ``.tflite`` file.
        quantization: ``None`` (float32) or ``"int8"``.
        qat: whether the ranges came from quantization-aware training.
        info: the `keras_tt.export.inspect.TFLiteInfo` of the file (ops, op
            versions, size, inputs, outputs).
        float_ops: ops other than QUANTIZE/DEQUANTIZE that read or write a
            float tensor (empty for a file that is int8 from QUANTIZE to
            DEQUANTIZE; every op for a float file).
        zipped_size: bytes of the file compressed with zip (deflate).
        relative_error: ``||y_tflite - y_keras||_F / ||y_keras||_F`` on the
            verification inputs.
    """

    path: str
    quantization: str | None
    qat: bool
    info: object
    float_ops: tuple[str, ...]
    zipped_size: int
    relative_error: float

    @property
    def file_size(self) -> int:
        return self.info.file_size

    @property
    def int8_only(self) -> bool:
        """Whether every op between QUANTIZE and DEQUANTIZE is integer."""
        return self.quantization == "int8" and not self.float_ops

    def summary(self) -> str:
        ops = ", ".join(
            f"{name} x{count}" for name, count in self.op_counts.items()
        )
        kind = self.quantization or "float32"
        if self.qat:
            kind += " (QAT ranges)"
        lines = [
            f"{self.path}: {kind}, {self.file_size:,} bytes, "
            f"{self.zipped_size:,} zipped",
            f"  ops: {ops}",
            "  relative error vs the tf_keras model: "
            f"{self.relative_error:.2e}",
        ]
        if self.quantization == "int8":
            lines.append(
                "  int8 from QUANTIZE to DEQUANTIZE"
                if not self.float_ops
                else f"  float ops inside the int8 graph: {self.float_ops}"
            )
        return "\n".join(lines)

    @property
    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for op in self.info.ops:
            counts[op.name] = counts.get(op.name, 0) + op.count
        return counts


def zipped_size(path) -> int:
    """Size in bytes of ``path`` compressed with zip (deflate, level 9)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(
        buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9
    ) as archive:
        archive.write(os.fspath(path), arcname=os.path.basename(path))
    return len(buffer.getvalue())


def float_ops(source) -> tuple[str, ...]:
    """Ops of the main graph that read or write a float tensor.

    QUANTIZE and DEQUANTIZE, which convert at the edges of an int8 graph,
    are left out; a file that is integer from QUANTIZE to DEQUANTIZE gives
    an empty tuple.
    """
    schema = import_litert("schema_py_generated", "Reading .tflite files")
    data = source if isinstance(source, bytes) else open(source, "rb").read()
    model = schema.Model.GetRootAsModel(data, 0)
    names = {
        v: k for k, v in vars(schema.BuiltinOperator).items() if k.isupper()
    }
    floats = {
        schema.TensorType.FLOAT32,
        schema.TensorType.FLOAT16,
        schema.TensorType.FLOAT64,
    }
    graph = model.Subgraphs(0)
    found = []
    for o in range(graph.OperatorsLength()):
        op = graph.Operators(o)
        code = model.OperatorCodes(op.OpcodeIndex())
        name = names.get(
            max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM"
        )
        if name in _BOUNDARY_OPS:
            continue
        tensors = [i for i in op.InputsAsNumpy() if i >= 0] + list(
            op.OutputsAsNumpy()
        )
        if any(graph.Tensors(int(i)).Type() in floats for i in tensors):
            found.append(name)
    return tuple(found)


def _is_wrapped(model, kind: str) -> bool:
    return any(type(layer).__name__ == kind for layer in model.layers)


def strip_pruning(model):
    """``tfmot.sparsity.keras.strip_pruning``: the model without its masks."""
    return _tfmot.import_tfmot().sparsity.keras.strip_pruning(model)


def strip_clustering(model):
    """``tfmot.clustering.keras.strip_clustering``: plain clustered weights."""
    return _tfmot.import_tfmot().clustering.keras.strip_clustering(model)


def _is_qat(model) -> bool:
    return any(
        type(layer).__name__ in ("QuantizeWrapperV2", "QuantizeWrapper")
        for layer in model.layers
    )


class _DropMessage(logging.Filter):
    def filter(self, record):
        return "trackable_obj" not in record.getMessage()


def _converter(model):
    specs = [
        tf.TensorSpec((None,) + tuple(t.shape[1:]), t.dtype)
        for t in model.inputs
    ]
    single = len(specs) == 1

    @tf.function(input_signature=specs, autograph=False)
    def serve(*inputs):
        return model(inputs[0] if single else list(inputs), training=False)

    # Without a trackable object the variables are frozen into constants,
    # so the converter sees the cores as weights.
    absl_logger = logging.getLogger("absl")
    notice = _DropMessage()
    absl_logger.addFilter(notice)
    try:
        return tf.lite.TFLiteConverter.from_concrete_functions(
            [serve.get_concrete_function()]
        )
    finally:
        absl_logger.removeFilter(notice)


def _run_litert(path, x):
    interpreter_lib = import_litert("interpreter", "Checking .tflite files")
    interpreter = interpreter_lib.Interpreter(model_path=os.fspath(path))
    detail = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(detail["index"], x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(detail["index"], x.astype(detail["dtype"]))
    interpreter.invoke()
    output = interpreter.get_output_details()[0]
    return interpreter.get_tensor(output["index"])


def export_tflite(
    model,
    path,
    quantization: str | None = None,
    representative_data=None,
    validation_data=None,
    verbose: bool = False,
) -> TFLiteExport:
    """Convert a `tf_keras` model to a builtin-only ``.tflite`` file.

    Pruning and clustering wrappers are stripped first (from a copy: the
    model passed in is not modified). The model is traced with a resizable
    batch axis and converted with the builtin op sets only; the file is then
    run in the LiteRT interpreter and compared with the model.

    Quantization:

    * ``None`` / ``"float32"``: a float file.
    * ``"int8"`` on a quantization-aware model (one returned by
      ``tfmot.quantization.keras.quantize_model``): integer ops with the
      ranges learnt in training, float inputs and outputs.
      ``representative_data`` is not needed.
    * ``"int8"`` on any other model: post-training full-integer
      quantization calibrated on ``representative_data`` (a NumPy array of
      samples; a few hundred suffice).

    For post-training int8 the converter is restricted to the int8 builtin
    op set, so it fails rather than leave an op in float; for QAT it keeps
    an op in float where training gave it no range, which
    `TFLiteExport.float_ops` lists (empty for the TT layers' config).

    Args:
        model: a built `tf_keras` model with one input.
        path: the ``.tflite`` file to write.
        quantization: ``None``, ``"float32"`` or ``"int8"``.
        representative_data: calibration samples for post-training int8.
        validation_data: inputs to compare the file with the model on;
            default: ``representative_data``, else 8 random normal samples.
        verbose: print `TFLiteExport.summary`.

    Returns:
        A `TFLiteExport`.
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(
            "Received an invalid value for `quantization`, expected one of "
            f"{QUANTIZATIONS}. Received: quantization={quantization!r}"
        )
    if quantization == "float32":
        quantization = None
    if len(getattr(model, "inputs", None) or ()) != 1:
        raise ValueError(
            "Received an invalid value for `model`, expected a built "
            "Sequential or Functional tf_keras model with one input. "
            f"Received: model={type(model).__name__}"
        )
    # 1. Strip the training-only wrappers of pruning and clustering.
    if _is_wrapped(model, "PruneLowMagnitude"):
        model = strip_pruning(model)
    if _is_wrapped(model, "ClusterWeights"):
        model = strip_clustering(model)
    qat = _is_qat(model)
    if quantization == "int8" and not qat and representative_data is None:
        raise ValueError(
            "Received an invalid value for `representative_data`, expected "
            "sample inputs to calibrate post-training int8 quantization of a "
            "model that was not trained with quantization-aware training. "
            "Received: representative_data=None"
        )

    # 2. Convert with builtin ops only.
    converter = _converter(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if not qat:
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.TFLITE_BUILTINS_INT8
            ]
            samples = np.asarray(representative_data, np.float32)

            def batches():
                for sample in samples[:500]:
                    yield [sample[None]]

            converter.representative_dataset = batches
    content = converter.convert()
    path = os.fspath(path)
    with open(path, "wb") as f:
        f.write(content)

    # 3. Compare with the model in the LiteRT interpreter.
    if validation_data is None:
        validation_data = representative_data
    if validation_data is None:
        shape = (8,) + tuple(model.inputs[0].shape[1:])
        validation_data = np.random.default_rng(0).normal(size=shape)
    x = np.asarray(validation_data, np.float32)[:256]
    expected = np.asarray(model(x, training=False))
    got = _run_litert(path, x)
    error = float(
        np.linalg.norm(got - expected) / max(np.linalg.norm(expected), 1e-30)
    )

    # 4. Report.
    result = TFLiteExport(
        path=path,
        quantization=quantization,
        qat=qat,
        info=inspect_tflite(path),
        float_ops=float_ops(content),
        zipped_size=zipped_size(path),
        relative_error=error,
    )
    if verbose:
        print(result.summary())
    return result
