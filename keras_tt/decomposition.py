"""TT-SVD and TT-rounding: turning matrices and cores into TT-matrices.

`tt_svd` decomposes a dense ``N x M`` matrix into the TT-cores that
`keras_tt.TTDense` uses, and `tt_round` re-truncates existing cores to lower
TT-ranks. Both follow Oseledets, *Tensor-Train Decomposition*, SIAM J. Sci.
Comput. 33(5), 2011 (Algorithm 1, TT-SVD, and Algorithm 2, TT-rounding).

The matrix is first viewed as a ``d``-way tensor whose ``k``-th index pairs
the ``k``-th row mode with the ``k``-th column mode, of size ``n_k m_k``.
Then, from left to right, each unfolding is split by a truncated SVD: the
left singular vectors become core ``k`` and the rest (singular values times
right singular vectors) carries on to the next step. The left factors are
orthonormal, so the errors of the ``d - 1`` truncations are orthogonal to
each other and add up in squares:

    ||W - W_tt||_F^2 = sum_k ||E_k||_F^2.

With ``rel_error=eps``, every truncation may discard at most
``eps / sqrt(d - 1) * ||W||_F``, which guarantees
``||W - W_tt||_F <= eps * ||W||_F``.

The route from a trained layer's weights to its TT layer's cores, built on
`tt_svd`, is `keras_tt.layer_decomposition`.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import warnings
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence

import numpy as np

from keras_tt import modes as modes_lib
from keras_tt.tt_matrix import check_cores
from keras_tt.tt_matrix import full_matrix
from keras_tt.tt_matrix import num_tt_params
from keras_tt.tt_matrix import tt_shape

# An unfolding at least this many times wider (or taller) than its small side
# is split through the eigen-decomposition of its Gram matrix, which costs one
# pass over the unfolding and no workspace of its size.
_GRAM_ASPECT_RATIO = 16
# ... and holds at least this many entries (smaller ones are cheap to SVD).
_GRAM_MIN_SIZE = 1 << 20
# The Gram matrix squares the singular values, so its eigenvalues resolve
# squared errors only down to about 1e-13 of the squared norm: an error budget
# below this fraction of the squared norm goes through the SVD instead.
_GRAM_MIN_BUDGET = 1e-10
# A rank cap (with no error budget) this many times below both sides of an
# unfolding of at least _RANGE_MIN_SIDE rows and columns is met through a
# randomized range finder (Halko, Martinsson and Tropp, SIAM Review 2011)
# instead of a full SVD: a 4096 x 4096 unfolding at rank 20 takes about a
# second instead of a minute.
_RANGE_RANK_FACTOR = 8
_RANGE_MIN_SIDE = 512
# Extra columns sampled beyond the rank, and power iterations.
_RANGE_OVERSAMPLING = 10
_RANGE_POWER_ITERATIONS = 2
# Columns of a wide unfolding handled at once when forming its Gram matrix in
# float64 (bounds the temporary copy).
_GRAM_BLOCK_COLUMNS = 1 << 20


@dataclasses.dataclass(frozen=True, eq=False)
class TTDecomposition(Sequence):
    """TT-cores together with what the decomposition achieved.

    Behaves as the sequence of its cores, so it can be passed wherever cores
    are expected (``keras_tt.full_matrix(result)``, ``list(result)``).

    Attributes:
        cores: tuple of ``d`` NumPy arrays, core ``k`` of shape
            ``(r_{k-1}, n_k, m_k, r_k)``.
        in_modes: ``(n_1, ..., n_d)``.
        out_modes: ``(m_1, ..., m_d)``.
        ranks: ``(1, r_1, ..., r_{d-1}, 1)``.
        rel_error: the relative Frobenius error
            ``||W - W_tt||_F / ||W||_F``, computed from the discarded
            singular values (exact up to rounding, since the truncation
            errors are orthogonal); 0 for a zero matrix.
        norm: ``||W||_F`` of the matrix (or of the cores' matrix) decomposed.
    """

    cores: tuple
    in_modes: tuple
    out_modes: tuple
    ranks: tuple
    rel_error: float
    norm: float

    @classmethod
    def from_truncation(cls, cores, discarded: float, norm: float):
        """The result of truncating a matrix of norm ``norm`` to ``cores``.

        ``discarded`` is the sum of the squared singular values dropped;
        modes and ranks are read off the cores.
        """
        in_modes, out_modes, ranks = tt_shape(cores)
        return cls(
            cores=tuple(cores),
            in_modes=in_modes,
            out_modes=out_modes,
            ranks=ranks,
            rel_error=math.sqrt(discarded) / norm if norm > 0 else 0.0,
            norm=norm,
        )

    def __len__(self) -> int:
        return len(self.cores)

    def __getitem__(self, index):
        return self.cores[index]

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(self.cores)

    @property
    def num_params(self) -> int:
        """Number of entries in the cores."""
        return num_tt_params(self.in_modes, self.out_modes, self.ranks)

    @property
    def compression_ratio(self) -> float:
        """Dense matrix size ``prod(n) * prod(m)`` over the core size."""
        return (
            math.prod(self.in_modes)
            * math.prod(self.out_modes)
            / (self.num_params)
        )

    def __repr__(self) -> str:
        return (
            f"TTDecomposition(in_modes={self.in_modes}, "
            f"out_modes={self.out_modes}, ranks={self.ranks}, "
            f"rel_error={self.rel_error:.3g})"
        )


# --------------------------------------------------------------- arguments


def _rank_cap(tt_rank, max_rank):
    """``(cap, argument name)``: ``tt_rank`` or its former ``max_rank``."""
    if max_rank is None:
        return tt_rank, "tt_rank"
    if tt_rank is not None:
        raise ValueError(
            "Received both `tt_rank` and `max_rank`, which is its former "
            f"name; pass `tt_rank` only. Received: tt_rank={tt_rank!r}, "
            f"max_rank={max_rank!r}"
        )
    warnings.warn(
        "`max_rank` is now called `tt_rank`, as in `TTDense` and "
        "`tensorize`; `max_rank` will be removed in a future release.",
        DeprecationWarning,
        stacklevel=4,
    )
    return max_rank, "max_rank"


def _check_max_rank(max_rank, name, num_cores):
    """``None``, or the ``d - 1`` inner rank caps as a tuple."""
    if max_rank is None:
        return None
    modes_lib.check_tt_rank_argument(max_rank, name)
    if modes_lib.is_positive_int(max_rank):
        return (int(max_rank),) * (num_cores - 1)
    caps = tuple(int(r) for r in max_rank)
    if len(caps) != num_cores - 1:
        raise ValueError(
            f"Received an invalid value for `{name}`, expected one integer "
            f"or a sequence of {num_cores - 1} inner ranks for {num_cores} "
            f"cores. Received: {name}={tuple(max_rank)!r}"
        )
    return caps


def check_rel_error(rel_error, name: str = "rel_error") -> float | None:
    """``None``, or ``rel_error`` as a float strictly between 0 and 1."""
    if rel_error is None:
        return None
    if (
        isinstance(rel_error, bool)
        or not isinstance(rel_error, numbers.Real)
        or not 0.0 < float(rel_error) < 1.0
    ):
        raise ValueError(
            f"Received an invalid value for `{name}`, expected a number "
            f"strictly between 0 and 1. Received: {name}={rel_error!r}"
        )
    return float(rel_error)


def _as_float_array(array, name):
    """A NumPy float32/float64 array without NaN or Inf."""
    if array is None or isinstance(array, (str, bytes)):
        raise ValueError(
            f"Received an invalid value for `{name}`, expected a 2-D "
            f"numeric array. Received: {name}={array!r}"
        )
    if hasattr(array, "numpy"):
        array = array.numpy()
    try:
        array = np.asarray(array)
    except ValueError:
        raise ValueError(
            f"Received an invalid value for `{name}`, expected a 2-D "
            "numeric array, but its rows have different lengths. "
            f"Received: {name}={_short_repr(array)}"
        ) from None
    if array.size == 0:
        raise ValueError(
            f"Received an invalid value for `{name}`, expected a non-empty "
            f"array. Received: {name} of shape {array.shape}"
        )
    if array.dtype not in (np.float32, np.float64):
        if array.dtype.kind not in "fiub":
            raise ValueError(
                f"Received an invalid value for `{name}`, expected a real "
                f"numeric array. Received: {name} of dtype {array.dtype}"
            )
        array = array.astype(
            np.float32 if array.dtype == np.float16 else np.float64
        )
    if not np.isfinite(array).all():
        raise ValueError(
            f"Received an invalid value for `{name}`, expected finite "
            f"entries, but it contains {int(np.isnan(array).sum())} NaN and "
            f"{int(np.isinf(array).sum())} infinite values. "
            f"Received: {name} of shape {array.shape}"
        )
    return array


def _short_repr(value, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ------------------------------------------------------------ truncated SVD


def _gram_split(unfolding):
    """Left singular vectors and squared singular values of a wide matrix.

    The Gram matrix ``A A^T`` is formed in float64 block by block, so the
    float32 unfolding is never copied whole.
    """
    rows, cols = unfolding.shape
    gram = np.zeros((rows, rows), dtype=np.float64)
    for start in range(0, cols, _GRAM_BLOCK_COLUMNS):
        block = np.ascontiguousarray(
            unfolding[:, start : start + _GRAM_BLOCK_COLUMNS], dtype=np.float64
        )
        gram += block @ block.T
    eigvals, eigvecs = np.linalg.eigh(gram)
    order = np.argsort(eigvals)[::-1]
    return eigvecs[:, order], np.clip(eigvals[order], 0.0, None)


def _range_split(unfolding, max_rank):
    """Orthonormal basis of the dominant column space and its singular values.

    A randomized range finder with power iterations, re-orthonormalised at
    each step; the sample is seeded, so results are reproducible. The
    singular values returned are those of the projection ``Q^T A``.
    """
    rows, cols = unfolding.shape
    dtype = unfolding.dtype
    width = min(max_rank + _RANGE_OVERSAMPLING, rows, cols)
    rng = np.random.default_rng(0)
    sample = rng.standard_normal((cols, width)).astype(dtype)
    basis, _ = np.linalg.qr(unfolding @ sample)
    for _ in range(_RANGE_POWER_ITERATIONS):
        basis, _ = np.linalg.qr(unfolding.T @ basis)
        basis, _ = np.linalg.qr(unfolding @ basis)
    u_small, sv, _ = np.linalg.svd(basis.T @ unfolding, full_matrices=False)
    return basis @ u_small, sv.astype(np.float64) ** 2


def _residual(unfolding, left, right) -> float:
    """``||unfolding - left @ right||_F^2``, a block of columns at a time."""
    rows, cols = unfolding.shape
    step = max(1, _GRAM_BLOCK_COLUMNS // max(1, rows))
    total = 0.0
    for start in range(0, cols, step):
        block = unfolding[:, start : start + step]
        total += _sum_of_squares(block - left @ right[:, start : start + step])
    return total


def _truncated_split(unfolding, max_rank, max_sq_error, method):
    """Split ``unfolding ~ left @ right`` with ``left`` orthonormal.

    Keeps the smallest rank whose discarded squared singular values sum to at
    most ``max_sq_error`` (``None``: no error budget), capped at
    ``max_rank``; at least rank 1.

    Returns:
        ``(left, right, discarded)``: ``left`` of shape ``(rows, r)`` with
        orthonormal columns, ``right = left^T @ unfolding`` of shape
        ``(r, cols)``, and the squared Frobenius norm of the discarded part.
    """
    rows, cols = unfolding.shape
    if method == "auto":
        method = "svd"
        if (
            cols >= _GRAM_ASPECT_RATIO * rows
            and unfolding.size >= _GRAM_MIN_SIZE
            and (
                max_sq_error is None
                or max_sq_error >= _GRAM_MIN_BUDGET * _sum_of_squares(unfolding)
            )
        ):
            method = "gram"
        if (
            max_sq_error is None
            and max_rank is not None
            and min(rows, cols) >= _RANGE_MIN_SIDE
            and max_rank * _RANGE_RANK_FACTOR <= min(rows, cols)
        ):
            method = "randomized"
    if method == "randomized":
        u, sq_sv = _range_split(unfolding, max_rank)
        rank = max(1, min(max_rank, len(sq_sv)))
        left = np.ascontiguousarray(u[:, :rank], dtype=unfolding.dtype)
        right = left.T @ unfolding
        return left, right, _residual(unfolding, left, right)
    if method == "gram":
        u, sq_sv = _gram_split(unfolding)
    else:
        u, sv, _ = np.linalg.svd(unfolding, full_matrices=False)
        sq_sv = sv.astype(np.float64) ** 2
    # tails[r] = sum of squared singular values beyond the first r.
    tails = np.concatenate([np.cumsum(sq_sv[::-1])[::-1], [0.0]])
    rank = len(sq_sv)
    if max_sq_error is not None:
        rank = int(np.argmax(tails <= max_sq_error))
    if max_rank is not None:
        rank = min(rank, max_rank)
    rank = max(1, min(rank, len(sq_sv)))
    left = np.ascontiguousarray(u[:, :rank], dtype=unfolding.dtype)
    right = left.T @ unfolding
    return left, right, float(tails[rank])


# ------------------------------------------------------------------ TT-SVD


def _check_matrix_modes(shape, in_modes, out_modes):
    in_modes = modes_lib.validate_modes(in_modes, "in_modes", shape[0])
    out_modes = modes_lib.validate_modes(out_modes, "out_modes", shape[1])
    if len(in_modes) != len(out_modes):
        raise ValueError(
            "Received invalid values for `in_modes` and `out_modes`, expected "
            "sequences of the same length. Received: "
            f"in_modes={in_modes} (length {len(in_modes)}), "
            f"out_modes={out_modes} (length {len(out_modes)})"
        )
    return in_modes, out_modes


def tt_svd(
    matrix,
    in_modes: Sequence[int],
    out_modes: Sequence[int],
    tt_rank: int | Sequence[int] | None = None,
    rel_error: float | None = None,
    method: str = "auto",
    callback: Callable[[int], None] | None = None,
    *,
    max_rank: int | Sequence[int] | None = None,
) -> TTDecomposition:
    """Decompose a dense matrix into TT-cores (Oseledets' TT-SVD).

    Finds cores ``G_k`` of shape ``(r_{k-1}, n_k, m_k, r_k)`` such that
    ``keras_tt.full_matrix(cores)`` approximates ``matrix``, the row index
    being the C-order flattening over ``in_modes`` and the column index that
    over ``out_modes`` (the layout of `keras_tt.TTDense`).

    Guarantees. With ``rel_error=eps``:
    ``||matrix - full_matrix(cores)||_F <= eps * ||matrix||_F``, with the
    smallest ranks the sequential algorithm can use for it (each of the
    ``d - 1`` truncations discards at most ``eps / sqrt(d - 1)`` of the
    norm). With ``tt_rank``: no inner rank exceeds it (a rank also never
    exceeds the largest useful one, `keras_tt.max_tt_ranks`). With both: the
    ranks obey the caps and meet the error budget where the caps allow; the
    error achieved is always in ``result.rel_error``. With neither, the
    decomposition is exact up to rounding. A matrix whose TT-ranks are at
    most the ranks kept is recovered to rounding error.

    Cost. The unfoldings are split from left to right; the first is
    ``n_1 m_1 x (N M / (n_1 m_1))``. A large wide unfolding (a million
    entries or more, 16 times wider than tall or more) is split through the
    eigen-decomposition of its Gram matrix, accumulated in float64, unless
    the error budget is below ``1e-5`` of its norm (the Gram matrix squares
    the singular values and cannot resolve smaller ones); others through
    ``numpy.linalg.svd(full_matrices=False)``. With a rank cap and no error
    budget, an unfolding whose sides are both at least 512 and at least 8
    times the cap goes through a seeded randomized range finder with two
    power iterations (Halko, Martinsson and Tropp, 2011): close to the best
    rank-``r`` approximation rather than exactly it, and ``rel_error`` is
    still the exact error of the cores returned. Peak memory is at most about
    three times the matrix (the matrix, its reordered copy, and the
    remainder of the first step; 2.5 times for 25088 x 4096 at rank 4, see
    ``benchmarks/tt_svd_memory.py``). Float32 input is kept in float32,
    float64 in float64; integer input is converted to float64.

    Args:
        matrix: 2-D array-like of shape ``(prod(in_modes), prod(out_modes))``.
        in_modes: ``(n_1, ..., n_d)``, the row modes.
        out_modes: ``(m_1, ..., m_d)``, the column modes, same length.
        tt_rank: optional positive integer capping every inner rank, or a
            sequence of ``d - 1`` caps (the meaning `tt_rank` has in
            `keras_tt.tensorize`). ``max_rank``, its former name, is still
            accepted as a keyword with a `DeprecationWarning`.
        rel_error: optional relative Frobenius error budget, strictly
            between 0 and 1.
        method: ``"auto"``, ``"svd"``, ``"gram"`` or ``"randomized"``
            (rank caps only, no ``rel_error``): how each unfolding is
            split (see Cost).
        callback: optional callable receiving the index ``k`` of each
            truncation as it completes (for progress bars).

    Returns:
        A `TTDecomposition`: the sequence of cores, with ``ranks`` and the
        achieved ``rel_error``.

    Raises:
        ValueError: for a matrix that is not 2-D, contains NaN or Inf, or
            does not match the modes, and for bad ``tt_rank`` or
            ``rel_error``.

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> w = rng.normal(size=(12, 20))
    >>> tt = tt_svd(w, in_modes=(3, 4), out_modes=(4, 5))
    >>> [c.shape for c in tt]
    [(1, 3, 4, 12), (12, 4, 5, 1)]
    >>> bool(np.allclose(full_matrix(tt), w))
    True
    >>> small = tt_svd(w, (3, 4), (4, 5), rel_error=0.5)
    >>> small.rel_error <= 0.5
    True
    >>> tt_svd(w, (3, 4), (4, 5), tt_rank=2).ranks
    (1, 2, 1)
    """
    matrix = _as_float_array(matrix, "matrix")
    if matrix.ndim != 2:
        raise ValueError(
            "Received an invalid value for `matrix`, expected a 2-D array. "
            f"Received: matrix of shape {matrix.shape}"
        )
    in_modes, out_modes = _check_matrix_modes(matrix.shape, in_modes, out_modes)
    num_cores = len(in_modes)
    caps = _check_max_rank(*_rank_cap(tt_rank, max_rank), num_cores)
    eps = check_rel_error(rel_error)
    if method not in ("auto", "svd", "gram", "randomized"):
        raise ValueError(
            "Received an invalid value for `method`, expected 'auto', 'svd', "
            f"'gram' or 'randomized'. Received: method={method!r}"
        )
    if method == "randomized" and (caps is None or eps is not None):
        raise ValueError(
            "Received method='randomized', which needs a rank cap "
            "(`tt_rank`) and no `rel_error`: it does not see the whole "
            "spectrum, so it cannot guarantee an error bound. Received: "
            f"tt_rank={tt_rank if max_rank is None else max_rank!r}, "
            f"rel_error={rel_error!r}"
        )

    norm = math.sqrt(_sum_of_squares(matrix))
    budget = None
    if eps is not None and num_cores > 1:
        budget = (eps * norm) ** 2 / (num_cores - 1)

    # (i_1..i_d, j_1..j_d) -> (i_1, j_1, ..., i_d, j_d): the k-th TT index.
    tensor = matrix.reshape(in_modes + out_modes)
    order = [axis for k in range(num_cores) for axis in (k, num_cores + k)]
    remainder = np.ascontiguousarray(tensor.transpose(order))
    del tensor

    cores, ranks, discarded = [], [1], 0.0
    for k in range(num_cores - 1):
        size = in_modes[k] * out_modes[k]
        unfolding = remainder.reshape(ranks[-1] * size, -1)
        cap = None if caps is None else caps[k]
        left, remainder, lost = _truncated_split(unfolding, cap, budget, method)
        del unfolding
        discarded += lost
        rank = left.shape[1]
        cores.append(left.reshape(ranks[-1], in_modes[k], out_modes[k], rank))
        ranks.append(rank)
        if callback is not None:
            callback(k)
    cores.append(remainder.reshape(ranks[-1], in_modes[-1], out_modes[-1], 1))
    return TTDecomposition.from_truncation(cores, discarded, norm)


def _sum_of_squares(array) -> float:
    """``sum(array ** 2)`` accumulated in float64, block by block."""
    flat = array.reshape(-1)
    total = 0.0
    for start in range(0, flat.size, 1 << 24):
        block = flat[start : start + (1 << 24)].astype(np.float64)
        total += float(block @ block)
    return total


# ------------------------------------------------------------- TT-rounding


def tt_round(
    cores: Sequence,
    tt_rank: int | Sequence[int] | None = None,
    rel_error: float | None = None,
    *,
    max_rank: int | Sequence[int] | None = None,
) -> TTDecomposition:
    """Re-truncate TT-cores to lower TT-ranks (Oseledets' TT-rounding).

    The cores are first made right-orthogonal by QR decompositions from right
    to left, then truncated by SVDs from left to right. The guarantees are
    those of `tt_svd`, relative to the matrix ``W`` the input cores stand
    for: with ``rel_error=eps``,
    ``||W - full_matrix(result)||_F <= eps * ||W||_F``; with ``tt_rank``,
    no inner rank exceeds it. ``W`` itself is never formed.

    Args:
        cores: sequence of ``d`` cores (NumPy arrays, tensors or Keras
            variables), core ``k`` of shape ``(r_{k-1}, n_k, m_k, r_k)``.
        tt_rank: optional positive integer capping every inner rank, or a
            sequence of ``d - 1`` caps (the meaning `tt_rank` has in
            `keras_tt.tensorize`). ``max_rank``, its former name, is still
            accepted as a keyword with a `DeprecationWarning`.
        rel_error: optional relative Frobenius error budget, strictly
            between 0 and 1.

    Returns:
        A `TTDecomposition` with the new cores, ranks and achieved
        ``rel_error`` (relative to ``W``).

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a = tt_svd(rng.normal(size=(16, 16)), (4, 4), (4, 4), tt_rank=3)
    >>> b = tt_svd(rng.normal(size=(16, 16)), (4, 4), (4, 4), tt_rank=3)
    >>> both = [np.concatenate([a[0], b[0]], axis=3),
    ...         np.concatenate([a[1], b[1]], axis=0)]   # the sum a + b, rank 6
    >>> rounded = tt_round(both, rel_error=1e-6)
    >>> rounded.ranks
    (1, 6, 1)
    >>> bool(np.allclose(full_matrix(rounded), full_matrix(a) + full_matrix(b)))
    True
    >>> tt_round(both, tt_rank=2).ranks
    (1, 2, 1)
    """
    arrays = [
        _as_float_array(c, f"cores[{k}]")
        for k, c in enumerate(check_cores(cores))
    ]
    dtype = np.result_type(*arrays)
    arrays = [a.astype(dtype, copy=False) for a in arrays]
    num_cores = len(arrays)
    caps = _check_max_rank(*_rank_cap(tt_rank, max_rank), num_cores)
    eps = check_rel_error(rel_error)

    # Right-orthogonalise: cores 1..d-1 get orthonormal rows when unfolded as
    # (r_{k-1}, n_k m_k r_k); the norm of W ends up in core 0.
    for k in range(num_cores - 1, 0, -1):
        r, n, m, s = arrays[k].shape
        q, rt = np.linalg.qr(arrays[k].reshape(r, n * m * s).T)
        arrays[k] = q.T.reshape(-1, n, m, s)
        arrays[k - 1] = np.einsum("anmr,sr->anms", arrays[k - 1], rt)
    norm = float(np.linalg.norm(arrays[0]))
    budget = None
    if eps is not None and num_cores > 1:
        budget = (eps * norm) ** 2 / (num_cores - 1)

    discarded = 0.0
    for k in range(num_cores - 1):
        r, n, m, s = arrays[k].shape
        cap = None if caps is None else caps[k]
        left, right, lost = _truncated_split(
            arrays[k].reshape(r * n * m, s), cap, budget, "svd"
        )
        discarded += lost
        rank = left.shape[1]
        arrays[k] = left.reshape(r, n, m, rank)
        arrays[k + 1] = np.einsum("ar,rnms->anms", right, arrays[k + 1])
    return TTDecomposition.from_truncation(arrays, discarded, norm)


def tt_error(cores: Sequence, matrix) -> float:
    """Relative Frobenius error ``||matrix - W_tt||_F / ||matrix||_F``.

    Forms the full matrix of the cores, so it is meant for checking
    decompositions of matrices that fit in memory a few times over.

    Args:
        cores: TT-cores, core ``k`` of shape ``(r_{k-1}, n_k, m_k, r_k)``.
        matrix: the reference matrix; its rows and columns beyond those of the
            cores' matrix must be absent, and the cores' matrix may be larger
            (zero padding): it is cropped to ``matrix.shape``.

    Returns:
        The relative error as a Python float (the absolute error when
        ``matrix`` is zero).

    Example:

    >>> import numpy as np
    >>> w = np.arange(24.0).reshape(4, 6)
    >>> round(tt_error(tt_svd(w, (2, 2), (2, 3)), w), 12)
    0.0
    """
    approx = full_matrix(cores)
    matrix = _as_float_array(matrix, "matrix").astype(np.float64)
    if matrix.ndim != 2 or any(
        size > limit for size, limit in zip(matrix.shape, approx.shape)
    ):
        raise ValueError(
            "Received an invalid value for `matrix`, expected a 2-D array no "
            f"larger than the cores' matrix {approx.shape} (which may be "
            "zero-padded beyond it). "
            f"Received: matrix of shape {matrix.shape}"
        )
    approx = approx[: matrix.shape[0], : matrix.shape[1]]
    diff = float(np.linalg.norm(matrix - approx))
    norm = float(np.linalg.norm(matrix))
    return diff / norm if norm > 0 else diff
