"""TT-matrices held as NumPy cores: reconstruction and bookkeeping.

Core layout, everywhere in keras_tt: core ``k`` has shape
``(r_{k-1}, n_k, m_k, r_k)`` with ``r_0 = r_d = 1``. The matrix the cores
stand for is

    W[i, j] = G_1[:, i_1, j_1, :] @ ... @ G_d[:, i_d, j_d, :]

where the row index ``i`` is the C-order (row-major) flattening of
``(i_1, ..., i_d)`` over the input modes and the column index ``j`` that of
``(j_1, ..., j_d)`` over the output modes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def _as_numpy(core) -> np.ndarray:
    return np.asarray(core.numpy() if hasattr(core, "numpy") else core)


def check_cores(cores: Sequence) -> list[np.ndarray]:
    """Check that ``cores`` chain together; return them as NumPy arrays."""
    if (
        cores is None
        or isinstance(cores, (str, bytes))
        or not hasattr(cores, "__iter__")
    ):
        raise ValueError(
            "Received an invalid value for `cores`, expected a sequence of "
            f"4-D arrays. Received: cores={cores!r}"
        )
    arrays = [_as_numpy(c) for c in cores]
    if not arrays:
        raise ValueError(
            "Received an invalid value for `cores`, expected at "
            "least one core. Received: cores=[]"
        )
    for k, core in enumerate(arrays):
        if core.ndim != 4:
            raise ValueError(
                "Received an invalid value for `cores`, expected 4-D cores "
                "of shape (r_prev, n, m, r_next). "
                f"Received: cores[{k}] with shape {core.shape}"
            )
    shapes = [c.shape for c in arrays]
    if any(0 in shape for shape in shapes):
        raise ValueError(
            "Received an invalid value for `cores`, expected cores with no "
            f"axis of size 0. Received: core shapes {shapes}"
        )
    bonds_ok = all(a[3] == b[0] for a, b in zip(shapes, shapes[1:]))
    if not bonds_ok or shapes[0][0] != 1 or shapes[-1][3] != 1:
        raise ValueError(
            "Received an invalid value for `cores`, expected the last axis of "
            "each core to match the first axis of the next, and boundary ranks "
            f"of 1. Received: core shapes {shapes}"
        )
    return arrays


def full_matrix(cores: Sequence) -> np.ndarray:
    """Rebuild the dense ``N x M`` matrix that TT-cores stand for.

    Args:
        cores: sequence of ``d`` arrays (NumPy arrays, tensors or Keras
            variables), core ``k`` of shape ``(r_{k-1}, n_k, m_k, r_k)``.

    Returns:
        NumPy array of shape ``(n_1 * ... * n_d, m_1 * ... * m_d)``.

    Example:

    >>> import numpy as np
    >>> a = np.arange(6.0).reshape(1, 2, 3, 1)
    >>> full_matrix([a]).shape
    (2, 3)
    >>> cores = [np.ones((1, 2, 2, 3)), np.ones((3, 2, 2, 1))]
    >>> full_matrix(cores)[0, 0]   # sum over the rank-3 bond of 1 * 1
    np.float64(3.0)
    """
    arrays = check_cores(cores)
    # result[(i_1..i_k), (j_1..j_k), r_k], grown one core at a time.
    result = arrays[0].reshape(arrays[0].shape[1], arrays[0].shape[2], -1)
    for core in arrays[1:]:
        r, n, m, s = core.shape
        rows, cols = result.shape[:2]
        result = np.einsum("ijr,rnms->injms", result, core)
        result = result.reshape(rows * n, cols * m, s)
    return result[..., 0]


def tt_shape(cores: Sequence):
    """``(in_modes, out_modes, ranks)`` of a list of cores."""
    shapes = [tuple(int(s) for s in c.shape) for c in cores]
    in_modes = tuple(s[1] for s in shapes)
    out_modes = tuple(s[2] for s in shapes)
    ranks = (shapes[0][0],) + tuple(s[3] for s in shapes)
    return in_modes, out_modes, ranks


def num_tt_params(in_modes, out_modes, ranks) -> int:
    """Number of entries in the cores: ``sum_k r_{k-1} n_k m_k r_k``."""
    return sum(
        ranks[k] * n * m * ranks[k + 1]
        for k, (n, m) in enumerate(zip(in_modes, out_modes))
    )


def num_dense_params(in_modes, out_modes) -> int:
    """Number of entries of the dense matrix: ``prod(n) * prod(m)``."""
    return math.prod(in_modes) * math.prod(out_modes)
