"""Reading a ``.tflite`` file: its ops, their versions, and what it needs.

`inspect_tflite` parses the flatbuffer itself (through the schema module that
``ai_edge_litert`` ships), so it works on any ``.tflite`` file, whether or not
keras_tt wrote it, and without loading the model into an interpreter.
"""

from __future__ import annotations

import collections
import dataclasses
import os
from typing import Union

import numpy as np

from keras_tt.export._litert import import_litert

PathOrBytes = Union[str, "os.PathLike[str]", bytes]

# TFLite tensor types, by their schema number.
_TENSOR_TYPES = {
    0: "float32",
    1: "float16",
    2: "int32",
    3: "uint8",
    4: "int64",
    5: "string",
    6: "bool",
    7: "int16",
    8: "complex64",
    9: "int8",
    10: "float64",
    11: "complex128",
    12: "uint64",
    13: "resource",
    14: "variant",
    15: "uint32",
    16: "uint16",
    17: "int4",
}


def _schema():
    return import_litert("schema_py_generated", "Reading .tflite files")


@dataclasses.dataclass(frozen=True)
class OpInfo:
    """One operator type used by a model.

    Attributes:
        name: builtin operator name (``"FULLY_CONNECTED"``), or the custom
            code of a custom op (``"FlexEinsum"``).
        version: the operator version the model asks the runtime for.
        count: how many nodes of this type and version the model holds.
        custom: whether this is a custom op (a Flex op is one), which the
            stock LiteRT runtime cannot run on its own.
    """

    name: str
    version: int
    count: int
    custom: bool = False


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """A tensor: name, shape (``-1`` for a dynamic axis), type, quantisation."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: float = 0.0
    zero_point: int = 0
    quantized: bool = False

    @property
    def size(self) -> int:
        """Number of elements (``-1`` axes counted as 1)."""
        return int(np.prod([max(s, 1) for s in self.shape], dtype=np.int64))


@dataclasses.dataclass(frozen=True)
class TFLiteInfo:
    """What a ``.tflite`` file holds and what it needs to run.

    Attributes:
        file_size: size of the flatbuffer in bytes.
        ops: one `OpInfo` per (operator, version), sorted by name.
        min_runtime_version: the oldest LiteRT/TFLite runtime that has every
            operator version used, as written by the converter into the
            ``min_runtime_version`` metadata (``None`` if absent).
        converter_version: TensorFlow version of the converter, when recorded.
        inputs: the model inputs of the first subgraph.
        outputs: the model outputs of the first subgraph.
        num_subgraphs: number of subgraphs.
        path: the file read, or ``None`` for bytes.
        weights: the constant tensors of the first subgraph that hold
            weights: float ones, and integer ones with quantisation
            parameters (shape and index constants are left out).
        operators: every node of the first subgraph, in order, as
            ``(op name, dtypes of its inputs)`` (``"none"`` for an omitted
            optional input).
    """

    file_size: int
    ops: tuple[OpInfo, ...]
    min_runtime_version: str | None
    converter_version: str | None
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    num_subgraphs: int = 1
    path: str | None = None
    weights: tuple[TensorInfo, ...] = ()
    operators: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def quantized_weights(self) -> tuple[TensorInfo, ...]:
        """Weight tensors stored as integers with a scale (int8 and such)."""
        return tuple(w for w in self.weights if w.quantized)

    @property
    def float_weights(self) -> tuple[TensorInfo, ...]:
        """Weight tensors stored as floats (float32 or float16)."""
        return tuple(w for w in self.weights if not w.quantized)

    @property
    def custom_ops(self) -> tuple[str, ...]:
        """Custom ops (Flex ops included); empty for a builtin-only model."""
        return tuple(op.name for op in self.ops if op.custom)

    @property
    def builtin_only(self) -> bool:
        """Whether the stock runtime runs every op, without a Flex delegate."""
        return not self.custom_ops

    @property
    def op_versions(self) -> dict[str, int]:
        """Highest version of each operator, by name."""
        versions: dict[str, int] = {}
        for op in self.ops:
            versions[op.name] = max(versions.get(op.name, 0), op.version)
        return versions

    def summary(self) -> str:
        """A multi-line, human-readable report."""
        lines = []
        if self.path:
            lines.append(f"File: {self.path}")
        lines.append(
            f"Size: {format_bytes(self.file_size)} ({self.file_size:,} bytes)"
        )
        for kind, tensors in (("Input", self.inputs), ("Output", self.outputs)):
            for t in tensors:
                shape = "x".join("?" if s < 0 else str(s) for s in t.shape)
                quant = (
                    f", scale={t.scale:.6g} zero_point={t.zero_point}"
                    if t.scale
                    else ""
                )
                lines.append(f"{kind}: {t.name} [{shape}] {t.dtype}{quant}")
        runtime = self.min_runtime_version or "not recorded"
        lines.append(f"Minimum runtime version: {runtime}")
        if self.converter_version:
            lines.append(f"Converted by: TensorFlow {self.converter_version}")
        lines.append(
            "Ops: "
            + ", ".join(
                f"{op.name} v{op.version} x{op.count}" for op in self.ops
            )
        )
        if self.builtin_only:
            lines.append(
                "Builtin ops only: yes (runs on the stock LiteRT runtime, "
                "no TF-ops delegate)"
            )
        else:
            lines.append(
                "Builtin ops only: NO, needs custom ops "
                + ", ".join(self.custom_ops)
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def format_bytes(size: int) -> str:
    """``1536`` -> ``'1.5 KiB'``."""
    value = float(size)
    for unit in ("bytes", "KiB", "MiB"):
        if value < 1024 or unit == "MiB":
            return (
                f"{int(value)} bytes"
                if unit == "bytes"
                else f"{value:.1f} {unit}"
            )
        value /= 1024
    raise AssertionError("unreachable")


def _read(source: PathOrBytes) -> tuple[bytes, str | None]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), None
    if not isinstance(source, (str, os.PathLike)):
        raise ValueError(
            "Received an invalid value for `source`, expected a path to a "
            f".tflite file or its bytes. Received: source={source!r}"
        )
    path = os.fspath(source)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such .tflite file: {path!r}")
    with open(path, "rb") as f:
        return f.read(), path


def _metadata(schema, model, data: bytes) -> dict[str, bytes]:
    values = {}
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        buffer = model.Buffers(entry.Buffer())
        if buffer.DataLength():
            content = buffer.DataAsNumpy().tobytes()
        elif buffer.Size():
            content = data[buffer.Offset() : buffer.Offset() + buffer.Size()]
        else:
            content = b""
        values[entry.Name().decode()] = content
    return values


def _tensor_info(schema, subgraph, index: int) -> TensorInfo:
    tensor = subgraph.Tensors(index)
    signature = tensor.ShapeSignatureAsNumpy()
    if isinstance(signature, np.ndarray) and signature.size:
        shape = tuple(int(s) for s in signature)
    else:
        shape = tuple(int(s) for s in np.atleast_1d(tensor.ShapeAsNumpy()))
    scale, zero_point = 0.0, 0
    quant = tensor.Quantization()
    quantized = quant is not None and quant.ScaleLength() > 0
    if quant is not None and quant.ScaleLength() == 1:
        scale = float(quant.Scale(0))
        zero_point = int(quant.ZeroPoint(0)) if quant.ZeroPointLength() else 0
    dtype = _TENSOR_TYPES.get(tensor.Type(), f"type{tensor.Type()}")
    return TensorInfo(
        name=tensor.Name().decode(errors="replace"),
        shape=shape,
        dtype=dtype,
        scale=scale,
        zero_point=zero_point,
        quantized=bool(quantized) and dtype not in ("float32", "float16"),
    )


def _has_data(model, tensor) -> bool:
    index = tensor.Buffer()
    if index <= 0 or index >= model.BuffersLength():
        return False
    buffer = model.Buffers(index)
    return bool(buffer.DataLength() or buffer.Size())


def _weights(schema, model, subgraph) -> tuple[TensorInfo, ...]:
    weights = []
    for i in range(subgraph.TensorsLength()):
        if not _has_data(model, subgraph.Tensors(i)):
            continue
        info = _tensor_info(schema, subgraph, i)
        if info.dtype in ("float32", "float16", "float64") or info.quantized:
            weights.append(info)
    return tuple(weights)


def _operators(subgraph, codes) -> tuple[tuple[str, tuple[str, ...]], ...]:
    nodes = []
    for o in range(subgraph.OperatorsLength()):
        op = subgraph.Operators(o)
        types = []
        for i in range(op.InputsLength()):
            index = op.Inputs(i)
            if index < 0:
                types.append("none")
                continue
            code = subgraph.Tensors(index).Type()
            types.append(_TENSOR_TYPES.get(code, f"type{code}"))
        nodes.append((codes[op.OpcodeIndex()][0], tuple(types)))
    return tuple(nodes)


def _conversion_version(raw: bytes | None) -> str | None:
    # The CONVERSION_METADATA table ends with the converter's version string;
    # read the last printable run of the form "2.21.0" rather than the table.
    if not raw:
        return None
    text = "".join(chr(b) if 32 <= b < 127 else "\0" for b in raw)
    runs = [r for r in text.split("\0") if r.count(".") >= 1 and r[0].isdigit()]
    return runs[-1] if runs else None


def inspect_tflite(source: PathOrBytes) -> TFLiteInfo:
    """Read a ``.tflite`` file's ops, op versions, minimum runtime and size.

    Works on any TFLite/LiteRT flatbuffer. Op versions come from the model's
    operator table: a runtime older than the version that introduced an
    operator version refuses to load the model, which is what
    ``min_runtime_version`` summarises.

    Args:
        source: path to a ``.tflite`` file, or its bytes.

    Returns:
        A `TFLiteInfo`; ``str(info)`` is the printed report.

    Example:

    >>> import os, tempfile
    >>> import keras, keras_tt
    >>> from keras_tt.export import export_tflite, inspect_tflite
    >>> model = keras.Sequential([keras.Input((64,)),
    ...                           keras_tt.TTDense(16, tt_rank=2)])
    >>> path = os.path.join(tempfile.mkdtemp(), "m.tflite")
    >>> _ = export_tflite(model, path, verbose=False)
    >>> info = inspect_tflite(path)
    >>> info.builtin_only
    True
    >>> "FULLY_CONNECTED" in info.op_versions
    True
    >>> info.inputs[0].shape
    (-1, 64)
    """
    data, path = _read(source)
    schema = _schema()
    if len(data) < 8 or not schema.Model.ModelBufferHasIdentifier(data, 0):
        raise ValueError(
            "Received an invalid value for `source`, expected a TFLite "
            "flatbuffer (file identifier 'TFL3'): not a valid .tflite file. "
            f"Received: {path or 'bytes'} starting with {data[:8]!r}"
        )
    try:
        return _parse(schema, data, path)
    except Exception as error:  # struct.error, IndexError, ... on bad data
        raise ValueError(
            "Received an invalid value for `source`, expected a complete "
            "TFLite flatbuffer: not a valid .tflite file (truncated or "
            f"corrupt; {type(error).__name__}: {error}). Received: "
            f"{path or 'bytes'} of {len(data):,} bytes"
        ) from None


def _parse(schema, data: bytes, path: str | None) -> TFLiteInfo:
    model = schema.Model.GetRootAsModel(data, 0)
    if model.SubgraphsLength() < 1:
        raise ValueError("the model has no subgraph")
    names = {
        value: name
        for name, value in vars(schema.BuiltinOperator).items()
        if not name.startswith("_")
    }
    codes = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.CUSTOM:
            custom = code.CustomCode()
            codes.append(((custom or b"CUSTOM").decode(), code.Version(), True))
        else:
            codes.append(
                (
                    names.get(builtin, f"BUILTIN_{builtin}"),
                    code.Version(),
                    False,
                )
            )
    counts: collections.Counter = collections.Counter()
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        for o in range(subgraph.OperatorsLength()):
            counts[codes[subgraph.Operators(o).OpcodeIndex()]] += 1
    ops = tuple(
        OpInfo(name, version, count, custom)
        for (name, version, custom), count in sorted(counts.items())
    )
    metadata = _metadata(schema, model, data)
    runtime = metadata.get("min_runtime_version")
    runtime = runtime.split(b"\0")[0].decode() if runtime else None
    main = model.Subgraphs(0)
    return TFLiteInfo(
        file_size=len(data),
        ops=ops,
        min_runtime_version=runtime or None,
        converter_version=_conversion_version(
            metadata.get("CONVERSION_METADATA")
        ),
        inputs=tuple(
            _tensor_info(schema, main, main.Inputs(i))
            for i in range(main.InputsLength())
        ),
        outputs=tuple(
            _tensor_info(schema, main, main.Outputs(i))
            for i in range(main.OutputsLength())
        ),
        num_subgraphs=model.SubgraphsLength(),
        path=path,
        weights=_weights(schema, model, main),
        operators=_operators(main, codes),
    )
