"""`tensorize` converter: `Conv1D` / `Conv2D` -> `TTConv1D` / `TTConv2D`.

A convolution is selected by the size of its kernel, ``kh * kw * c_in *
c_out`` entries, seen as the ``(c_in * kh * kw, c_out)`` matrix that the TT
convolutions decompose (`keras_tt.layers.tt_conv`). Depthwise and
separable convolutions (`DepthwiseConv2D`, `SeparableConv1D/2D`) and
grouped convolutions (``groups > 1``) hold one small filter per channel or
per group, with no channel-mixing matrix to factor: they are left alone,
and `unconverted_convolutions` gives the reason the pass warns with.

Modes and ``target_ratio``: the channel modes are chosen as for `TTDense`
(``c_in`` and ``filters``); a ``target_ratio`` is met here, on the TT
convolution's own layout, by the largest uniform TT-rank that reaches it.
"""

from __future__ import annotations

import keras

from keras_tt.layers._tt_base import check_trained_layer
from keras_tt.layers.tt_conv import PADDINGS
from keras_tt.layers.tt_conv import BaseTTConv
from keras_tt.layers.tt_conv import TTConv1D
from keras_tt.layers.tt_conv import TTConv2D
from keras_tt.layers.tt_conv import check_convertible_conv
from keras_tt.layers.tt_conv import conv_to_tt_conv
from keras_tt.layers.tt_conv import resolve_conv_layout
from keras_tt.report import LayerRecord
from keras_tt.report import register_tt_layer
from keras_tt.tensorize._converters import KernelModesError
from keras_tt.tensorize._converters import LayerConverter
from keras_tt.tensorize._converters import register_converter

_CONVS = (keras.layers.Conv1D, keras.layers.Conv2D)


def conv_record(layer: BaseTTConv, name=None, rel_error=None) -> LayerRecord:
    """The `LayerRecord` of a built TT convolution.

    ``input_dim`` is ``c_in * kh * kw`` (the rows of the kernel matrix),
    ``units`` is ``filters``; the modes are those of the whole chain, the
    spatial core included (see `keras_tt.layers.tt_conv.chain_modes`).
    """
    kind = "Conv1D" if layer.rank == 1 else "Conv2D"
    size = "x".join(str(k) for k in layer.kernel_size)
    return LayerRecord(
        name=layer.name if name is None else name,
        input_dim=int(layer.kernel_rows),
        units=int(layer.filters),
        in_modes=tuple(layer.chain_in_modes),
        out_modes=tuple(layer.chain_out),
        ranks=tuple(layer.tt_ranks),
        dense_params=int(layer.kernel_rows) * int(layer.filters),
        tt_params=int(layer.num_core_params),
        rel_error=rel_error,
        kind=f"{kind} {size}",
    )


def rank_for_conv_ratio(layer, in_modes, out_modes, target_ratio) -> int:
    """The largest uniform TT-rank compressing the kernel >= target_ratio."""
    kernel = layer.kernel
    c_in, c_out = (int(s) for s in kernel.shape[-2:])
    kernel_size = tuple(int(s) for s in kernel.shape[:-2])
    dense = c_in * c_out
    for size in kernel_size:
        dense *= size
    _, full = resolve_conv_layout(
        c_in, c_out, kernel_size, None, in_modes, out_modes
    )
    best = None
    for rank in range(1, max(full.ranks) + 1):
        _, layout = resolve_conv_layout(
            c_in, c_out, kernel_size, rank, in_modes, out_modes
        )
        if dense / layout.num_params < target_ratio:
            break
        best = rank
    if best is None:
        _, layout = resolve_conv_layout(
            c_in, c_out, kernel_size, 1, in_modes, out_modes
        )
        raise ValueError(
            f"Received an invalid value for `target_ratio`: layer "
            f"'{layer.name}' ({'x'.join(map(str, kernel_size))} kernel, "
            f"{c_in} -> {c_out} channels) is compressed at most "
            f"{dense / layout.num_params:.1f}x (at TT-rank 1). "
            f"Received: target_ratio={target_ratio!r}"
        )
    return best


def unconvertible_reason(layer) -> str | None:
    """Why `tensorize` leaves this convolution alone, or None."""
    if isinstance(layer, keras.layers.DepthwiseConv2D) or (
        hasattr(keras.layers, "DepthwiseConv1D")
        and isinstance(layer, keras.layers.DepthwiseConv1D)
    ):
        return (
            "a depthwise kernel holds one small filter per channel, with no "
            "channel-mixing matrix to factor"
        )
    if isinstance(
        layer, (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)
    ):
        return (
            "a separable convolution's depthwise part has no channel matrix "
            "to factor (replace it by DepthwiseConv2D + a 1x1 Conv2D to "
            "compress the pointwise part)"
        )
    if isinstance(layer, _CONVS) and getattr(layer, "groups", 1) != 1:
        return (
            f"a grouped convolution (groups={layer.groups}) holds one small "
            "kernel per group, with no channel matrix to factor"
        )
    return None


def unconverted_convolutions(nodes) -> list[tuple[str, list[str]]]:
    """``(reason, paths)`` for the convolutions the pass leaves alone."""
    found: dict[str, list[str]] = {}
    for node in nodes:
        if node.converter is not None:
            continue
        reason = unconvertible_reason(node.layer)
        if reason is not None:
            found.setdefault(reason, []).append(node.path)
    return list(found.items())


class ConvConverter(LayerConverter):
    """`keras.layers.Conv1D` / `Conv2D` (``groups=1``) -> `TTConv1D` /
    `TTConv2D` (TT-SVD of the kernel)."""

    kind = "Conv"

    def handles(self, layer):
        return (
            isinstance(layer, _CONVS)
            and getattr(layer, "groups", 1) == 1
            and getattr(layer, "padding", None) in PADDINGS[layer.rank]
        )

    def check(self, layer):
        kind = type(layer).__name__
        check_trained_layer(layer, type(layer), "layer")
        dtype = keras.backend.standardize_dtype(layer.kernel.dtype)
        if not keras.backend.is_float_dtype(dtype):
            raise ValueError(
                f"The {kind} layer '{layer.name}' has a {dtype} kernel; "
                "tensorize handles float16, bfloat16, float32 and float64 "
                "kernels."
            )
        check_convertible_conv(layer)

    def kernels(self, layer):
        if not layer.built:
            return []
        shape = [int(s) for s in layer.kernel.shape]
        rows = shape[-2]
        for size in shape[:-2]:
            rows *= size
        return [("", rows, shape[-1])]

    def kernel_layouts(self, layer, in_modes, out_modes):
        # The modes factor the channels; the spatial core sits between the
        # input- and output-channel cores.
        kernel = layer.kernel
        c_in, c_out = (int(s) for s in kernel.shape[-2:])
        kernel_size = tuple(int(s) for s in kernel.shape[:-2])
        try:
            _, layout = resolve_conv_layout(
                c_in, c_out, kernel_size, None, in_modes, out_modes
            )
        except ValueError as error:
            size = "x".join(map(str, kernel_size))
            raise KernelModesError(
                str(error), "", f"{size} kernel, {c_in} -> {c_out} channels"
            ) from None
        return [("", layout)]

    def convert(self, layer, settings, callback):
        tt_rank = settings.get("tt_rank")
        in_modes = settings.get("in_modes")
        out_modes = settings.get("out_modes")
        if settings.get("target_ratio") is not None:
            tt_rank = rank_for_conv_ratio(
                layer, in_modes, out_modes, settings["target_ratio"]
            )
        new_layer, decomposition = conv_to_tt_conv(
            layer,
            tt_rank=tt_rank,
            rel_error=settings.get("rel_error"),
            in_modes=in_modes,
            out_modes=out_modes,
            callback=callback,
        )
        record = conv_record(
            new_layer, name="", rel_error=decomposition.rel_error
        )
        return new_layer, [record]


register_converter(ConvConverter())
for _cls in (TTConv1D, TTConv2D):
    register_tt_layer(_cls, lambda layer, name: [conv_record(layer, name)])
