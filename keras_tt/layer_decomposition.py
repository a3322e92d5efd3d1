"""From a trained layer's weights to the TT-cores of its TT layer.

The layers' ``from_dense`` / ``from_embedding`` / ``from_einsum_dense`` /
``from_conv`` conversions and `keras_tt.tensorize` share one route: the
weights are read as a float matrix (`float_matrix`), the modes and rank caps
come from `keras_tt.modes.resolve_layout`, the matrix is zero-padded as the
TT layer pads it, and `keras_tt.tt_svd` truncates it (`decompose_for_layer`).
The algorithms themselves live in `keras_tt.decomposition`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_tt import modes as modes_lib
from keras_tt.decomposition import TTDecomposition
from keras_tt.decomposition import _as_float_array
from keras_tt.decomposition import check_rel_error
from keras_tt.decomposition import tt_svd


def float_matrix(weights) -> np.ndarray:
    """Trained weights as a NumPy float32 array (float64 if they are float64).

    TT-SVD runs in float32 or float64: float16 and bfloat16 weights (Keras
    variables, tensors or arrays) are decomposed in float32 and the cores
    cast back to the layer's dtype when assigned.
    """
    import keras

    dtype = keras.backend.standardize_dtype(weights.dtype)
    if dtype == "float64":
        return np.asarray(keras.ops.convert_to_numpy(weights))
    return np.asarray(
        keras.ops.convert_to_numpy(keras.ops.cast(weights, "float32"))
    )


@dataclasses.dataclass(frozen=True)
class LayerDecomposition:
    """What a TT layer built from trained weights needs.

    Attributes:
        layout: the `keras_tt.modes.TTLayout` (modes, padding, ranks).
        decomposition: the `TTDecomposition` of the zero-padded matrix;
            its ranks are the layer's ranks.
        tt_rank: the ``tt_rank`` argument that gives the layer those
            ranks: one integer when all inner ranks are equal, else a list.
    """

    layout: modes_lib.TTLayout
    decomposition: TTDecomposition
    tt_rank: int | list[int]


def decompose_for_layer(
    matrix,
    tt_rank=None,
    rel_error=None,
    in_modes=None,
    out_modes=None,
    callback=None,
    layer_name: str = "layer",
    names=("input_dim", "units", "in_modes", "out_modes"),
) -> LayerDecomposition:
    """TT-SVD of a trained layer's matrix, padded as the TT layer pads it.

    The one route from trained weights to TT-cores that the layers'
    ``from_dense`` / ``from_embedding`` / ``from_einsum_dense`` and
    `keras_tt.tensorize` share: the modes and rank caps come from
    `keras_tt.modes.resolve_layout`, the matrix is zero-padded to the padded
    widths, and `tt_svd` truncates it.

    Args:
        matrix: 2-D array, rows = the layer's input side.
        tt_rank: cap on the inner ranks (integer or ``d - 1`` integers).
        rel_error: relative Frobenius error budget, in (0, 1).
        in_modes: optional row modes; out_modes: optional column modes.
        callback: passed to `tt_svd`.
        layer_name: named in the error when neither rank argument is given.
        names: argument names for error messages (see `resolve_layout`).

    Returns:
        A `LayerDecomposition`.

    Example:

    >>> import numpy as np
    >>> from keras_tt import full_matrix
    >>> w = np.random.default_rng(0).normal(size=(11, 6))
    >>> result = decompose_for_layer(w, tt_rank=2)
    >>> result.layout.in_modes, result.layout.out_modes, result.tt_rank
    ((4, 3), (3, 2), 2)
    >>> full_matrix(result.decomposition).shape   # 11 rows padded to 12
    (12, 6)
    """
    if tt_rank is not None:
        modes_lib.check_tt_rank_argument(tt_rank)
    rel_error = check_rel_error(rel_error)
    if tt_rank is None and rel_error is None:
        raise ValueError(
            "Expected `tt_rank` or `rel_error` (or both) to choose the "
            f"TT-ranks of layer '{layer_name}'. Received: tt_rank=None, "
            "rel_error=None"
        )
    matrix = _as_float_array(matrix, "matrix")
    rows, cols = matrix.shape
    layout = modes_lib.resolve_layout(
        rows, cols, tt_rank, in_modes, out_modes, warn=False, names=names
    )
    padded = (layout.padded_input_dim, layout.padded_units)
    if padded != matrix.shape:
        matrix = np.pad(matrix, [(0, padded[0] - rows), (0, padded[1] - cols)])
    caps = None if tt_rank is None else (layout.ranks[1:-1] or None)
    decomposition = tt_svd(
        matrix,
        layout.in_modes,
        layout.out_modes,
        tt_rank=caps,
        rel_error=rel_error,
        callback=callback,
    )
    inner = decomposition.ranks[1:-1]
    layer_rank = inner[0] if inner and len(set(inner)) == 1 else list(inner)
    layout = dataclasses.replace(layout, ranks=decomposition.ranks)
    return LayerDecomposition(layout, decomposition, layer_rank or 1)
