"""Which ops block a builtin-only conversion, traced back to Keras layers.

The converter reports each op it cannot lower to a LiteRT builtin with the
name scope it was created under; the scope holds the Keras layer's name,
which is matched against every layer of the model (nested ones included).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from keras_tt.export.report import UnsupportedOpError
from keras_tt.export.report import VerificationError


def _layer_names(model) -> list[str]:
    from keras_tt.report import iter_layers

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


def raise_unsupported(error, model, quantization):
    """Turn a converter error into `UnsupportedOpError` naming op and layer.

    Errors that do not name an op become a `VerificationError`.
    """
    ops = _unsupported_ops(error, _layer_names(model))
    if not ops:
        raise VerificationError(
            "TFLite conversion with builtin ops only failed "
            f"(quantization={quantization!r}): {error}"
        ) from error
    described = "; ".join(
        f"{op} ("
        + ("needs the Flex delegate" if kind == "flex" else "no LiteRT kernel")
        + (f", from layer {layer!r}" if layer else "")
        + ")"
        for op, layer, kind in ops
    )
    raise UnsupportedOpError(
        "The model needs ops that are not LiteRT builtins, so it cannot run on "
        f"the stock runtime: {described}. Replace or rewrite those layers; "
        "no file was written.",
        ops,
    ) from None


# Ops whose weights a full-integer file must hold as integers.
_WEIGHTED_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")
_FLOATS = ("float32", "float16")


def check_builtin_only(info) -> None:
    if not info.builtin_only:
        raise VerificationError(
            f"The converted model holds custom ops {info.custom_ops}, which "
            "the stock LiteRT runtime cannot run; no file was written."
        )


def check_full_integer(info) -> None:
    """Raise `VerificationError` unless an "int8" file computes in int8.

    Every FULLY_CONNECTED (and convolution) node must take int8 input and
    weights, and some node must compute on int8 tensors. A degenerate
    calibration (NaN or constant data) can leave float ops behind.
    """
    float_nodes = [
        name
        for name, types in info.operators
        if name in _WEIGHTED_OPS and any(t in _FLOATS for t in types[:2])
    ]
    integer = any(
        "int8" in types or "uint8" in types for _, types in info.operators
    )
    if float_nodes or not integer:
        found = ", ".join(sorted(set(float_nodes))) or "no int8 tensors"
        raise VerificationError(
            "The quantization='int8' file is not fully integer: the "
            f"converter left float computation ({found}). Check that "
            "`representative_data` holds real, varied inputs; no file was "
            "written."
        )


# The converter's dynamic-range mode leaves smaller weight tensors float.
DYNAMIC_RANGE_MIN_ELEMENTS = 1024


def quantization_warnings(quantization, info) -> list[str]:
    """What a quantised export did not quantise, in words."""
    if quantization != "dynamic" or not info.weights:
        return []
    if info.quantized_weights:
        return []
    largest = max(w.size for w in info.weights)
    return [
        "the 'dynamic' export quantised nothing: every weight tensor has "
        f"fewer than {DYNAMIC_RANGE_MIN_ELEMENTS:,} elements (the "
        f"converter's cutoff; the largest has {largest:,}), so the file "
        "computes and stores weights in float32 like a float32 export. Use "
        "quantization='int8' (or 'float16') to shrink it."
    ]
