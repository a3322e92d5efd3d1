"""`tensorize` converter: `keras.layers.EinsumDense` -> `TTEinsumDense`."""

from __future__ import annotations

import dataclasses
import math

import keras

from keras_tt.layers.tt_einsum_dense import TTEinsumDense
from keras_tt.layers.tt_einsum_dense import check_einsum_dense_layer
from keras_tt.layers.tt_einsum_dense import einsum_dense_to_tt
from keras_tt.layers.tt_einsum_dense import parse_equation
from keras_tt.report import layer_record
from keras_tt.report import register_tt_layer
from keras_tt.tensorize._converters import LayerConverter
from keras_tt.tensorize._converters import register_converter


def expressible(layer) -> bool:
    """Whether the layer's equation and bias fit `TTEinsumDense`."""
    try:
        parts = parse_equation(layer.equation)
    except ValueError:
        return False
    return not layer.bias_axes or all(c in parts.free for c in layer.bias_axes)


def einsum_kernel_size(layer) -> tuple[int, int]:
    """``(rows, cols)`` of an `EinsumDense` kernel seen as a matrix."""
    parts = parse_equation(layer.equation)
    contracted, free = parts.kernel_sizes(layer.kernel.shape)
    return math.prod(contracted), math.prod(free)


class EinsumDenseConverter(LayerConverter):
    """`keras.layers.EinsumDense` -> `keras_tt.TTEinsumDense` for equations
    that are a matrix product, in any axis order (others, such as batched
    kernels, are left alone)."""

    kind = "EinsumDense"
    takes_fast_modes = True

    def handles(self, layer):
        return isinstance(layer, keras.layers.EinsumDense) and expressible(
            layer
        )

    def check(self, layer):
        check_einsum_dense_layer(layer, name="layer")

    def kernels(self, layer):
        if not layer.built:
            return []
        return [("", *einsum_kernel_size(layer))]

    def convert(self, layer, settings, callback):
        new_layer, decomposition = einsum_dense_to_tt(
            layer,
            tt_rank=settings.get("tt_rank"),
            rel_error=settings.get("rel_error"),
            in_modes=settings.get("in_modes"),
            out_modes=settings.get("out_modes"),
            callback=callback,
        )
        record = layer_record(
            new_layer, rel_error=decomposition.rel_error, kind=self.kind
        )
        return new_layer, [dataclasses.replace(record, name="")]


register_converter(EinsumDenseConverter())
register_tt_layer(
    TTEinsumDense,
    lambda layer, name: [layer_record(layer, name, kind="EinsumDense")],
)
