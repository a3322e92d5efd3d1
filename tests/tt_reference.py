"""Slow, obviously-correct references the tests compare keras_tt against."""

import itertools

import numpy as np


def naive_full_matrix(cores):
    """W[i, j] as the product of core slices, one entry at a time.

    Uses nothing from keras_tt: the row index is the C-order flattening of
    ``(i_1..i_d)`` over the input modes, the column index that of
    ``(j_1..j_d)`` over the output modes.
    """
    in_modes = [c.shape[1] for c in cores]
    out_modes = [c.shape[2] for c in cores]
    matrix = np.zeros((int(np.prod(in_modes)), int(np.prod(out_modes))))
    for i_multi in itertools.product(*map(range, in_modes)):
        i = np.ravel_multi_index(i_multi, in_modes)
        for j_multi in itertools.product(*map(range, out_modes)):
            j = np.ravel_multi_index(j_multi, out_modes)
            product = np.eye(1)
            for core, ik, jk in zip(cores, i_multi, j_multi):
                product = product @ core[:, ik, jk, :]
            matrix[i, j] = product[0, 0]
    return matrix


def random_cores(rng, in_modes, out_modes, ranks, dtype=np.float64):
    """Random cores with the layout (r_{k-1}, n_k, m_k, r_k)."""
    return [
        rng.standard_normal((ranks[k], n, m, ranks[k + 1])).astype(dtype)
        for k, (n, m) in enumerate(zip(in_modes, out_modes))
    ]


def naive_rows(cores, ids):
    """Rows ``ids`` of the TT-matrix of ``cores``, one id at a time.

    Uses nothing from keras_tt: each id is split into its C-order digits
    over the row modes, and the core slices of those digits are contracted
    in order, left to right.
    """
    in_modes = [c.shape[1] for c in cores]
    rows = []
    for i in np.ravel(ids):
        digits = np.unravel_index(int(i), in_modes)
        state = np.ones((1,))
        for core, ik in zip(cores, digits):
            state = np.tensordot(state, core[:, ik], axes=(-1, 0))
        rows.append(state.reshape(-1))
    return np.stack(rows)
