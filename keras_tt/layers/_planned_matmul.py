"""``x @ W`` for a TT layer holding a padded TT-matrix, by a chosen plan.

`TTDense` and `TTEinsumDense` share it: the plan comes from the static
number of rows (`rows_for_plan`), and `planned_matmul` runs it, padding
the input or slicing the rebuilt kernel when the layer's modes pad its
widths.
"""

from __future__ import annotations

import math

import keras

from keras_tt.contraction import anchor_to_input
from keras_tt.contraction import einsum
from keras_tt.contraction import rebuilt_matmul
from keras_tt.contraction import tt_kernel
from keras_tt.contraction import tt_matmul
from keras_tt.contraction_plans import choose_plan
from keras_tt.contraction_plans import in_litert_scope


def rows_for_plan(leading) -> int | None:
    """Rows of the flattened input for planning, from its leading axes.

    ``None`` when an axis is unknown, except inside LiteRT export, where a
    resizable batch of sequences is planned for one sequence.
    """
    leading = tuple(leading)
    if None not in leading:
        return math.prod(leading)
    if in_litert_scope() and len(leading) > 1:
        return math.prod(v for v in leading if v is not None)
    return None


def layer_plan(layer, batch):
    """The `TTPlan` ``layer`` runs for ``batch`` rows (``None``: unknown)."""
    return choose_plan(
        layer.in_modes,
        layer.out_modes,
        layer.tt_ranks,
        batch=batch,
        contraction=layer.contraction,
        itemsize=layer._compute_itemsize,
    )


def planned_matmul(layer, x, plan, out_shape=None):
    """``x @ W`` for ``x`` of shape ``(rows, layer.input_dim)``.

    ``out_shape``, when given, is the shape the result is reshaped to (the
    input's leading axes and the layer's output axes).

    In LiteRT export a product with a rebuilt kernel must stay a
    BATCH_MATMUL, which XNNPACK takes: an exact zero from ``x`` after it
    keeps the converter from fusing it with what follows into a
    FULLY_CONNECTED with computed weights, which XNNPACK does not take.
    With ``out_shape`` the zero comes after the reshape: between the
    reshapes to rows and back, a zero before it would not stop the fusion
    (a 768 x 768 layer at 128 tokens: 4.7 ms fused, 1.8 ms kept).
    """
    ops = keras.ops
    cores = layer.cores
    padded = (layer.padded_input_dim, layer.padded_units) != (
        layer.input_dim,
        layer.units,
    )
    if plan.is_dense and not padded:
        y = rebuilt_matmul(x, cores, keep_product=out_shape is None)
    elif plan.is_dense:
        if in_litert_scope():
            cores = [anchor_to_input(core, x) for core in cores]
        # Padding folded into the kernel: its extra rows and columns are
        # sliced off instead of padding the input.
        kernel = tt_kernel(cores)[: layer.input_dim, : layer.units]
        y = einsum("an,nm->am", x, kernel)
    else:
        if layer.padded_input_dim > layer.input_dim:
            pad = layer.padded_input_dim - layer.input_dim
            x = ops.pad(x, [[0, 0], [0, pad]])
        y = tt_matmul(x, cores, layer.in_modes, layer.out_modes, plan=plan)
        if layer.padded_units > layer.units:
            y = y[:, : layer.units]
    if out_shape is None:
        return y
    y = ops.reshape(y, out_shape)
    if plan.is_dense and in_litert_scope():
        y = anchor_to_input(y, x)
    return y
