"""TT-SVD and TT-rounding against independent references."""

import math

import numpy as np
import pytest

from keras_tt.decomposition import TTDecomposition
from keras_tt.decomposition import tt_error
from keras_tt.decomposition import tt_round
from keras_tt.decomposition import tt_svd
from keras_tt.modes import max_tt_ranks
from keras_tt.tt_matrix import full_matrix

SHAPES = [
    ((4, 6), (3, 5)),
    ((2, 3, 4), (4, 3, 2)),
    ((2, 2, 3, 2), (3, 2, 2, 2)),
]


def random_tt(rng, in_modes, out_modes, rank, dtype=np.float64):
    """Random cores with every inner rank ``rank`` (clamped to the maximum)."""
    limits = max_tt_ranks(in_modes, out_modes)
    ranks = [1] + [min(rank, lim) for lim in limits[1:-1]] + [1]
    cores = [
        rng.normal(size=(ranks[k], n, m, ranks[k + 1])).astype(dtype)
        for k, (n, m) in enumerate(zip(in_modes, out_modes))
    ]
    return cores, tuple(ranks)


def relative_error(matrix, cores):
    matrix = np.asarray(matrix, np.float64)
    return np.linalg.norm(matrix - full_matrix(cores)) / np.linalg.norm(matrix)


def structured_matrices(rng, rows, cols):
    i = np.arange(rows)[:, None]
    j = np.arange(cols)[None, :]
    return {
        "gaussian": rng.normal(size=(rows, cols)),
        "hilbert": 1.0 / (i + j + 1.0),
        "smooth": np.sin(0.05 * i * j) + np.cos(0.1 * (i - j)),
        "low_rank_plus_noise": rng.normal(size=(rows, 3))
        @ rng.normal(size=(3, cols))
        + 0.05 * rng.normal(size=(rows, cols)),
        "decaying_spectrum": (rng.normal(size=(rows, rows)) * 0.7**i.T)
        @ rng.normal(size=(rows, cols)),
    }


# ---------------------------------------------------------------- recovery


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("in_modes, out_modes", SHAPES)
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_known_rank_tt_matrix_is_recovered(
    seed, dtype, in_modes, out_modes, rank
):
    rng = np.random.default_rng(seed)
    cores, ranks = random_tt(rng, in_modes, out_modes, rank, dtype)
    matrix = full_matrix(cores).astype(dtype)
    tol = 1e-4 if dtype == np.float32 else 1e-10

    by_rank = tt_svd(matrix, in_modes, out_modes, tt_rank=rank)
    assert by_rank.ranks == ranks
    assert relative_error(matrix, by_rank) < tol
    assert all(c.dtype == dtype for c in by_rank)

    by_error = tt_svd(matrix, in_modes, out_modes, rel_error=tol)
    assert by_error.ranks == ranks
    assert relative_error(matrix, by_error) < tol


@pytest.mark.parametrize("method", ["svd", "gram"])
def test_methods_agree_and_recover_exactly(method, rng):
    cores, ranks = random_tt(rng, (8, 4, 4), (8, 4, 2), 3)
    matrix = full_matrix(cores)
    result = tt_svd(matrix, (8, 4, 4), (8, 4, 2), tt_rank=3, method=method)
    assert result.ranks == ranks
    assert relative_error(matrix, result) < 1e-10


def test_without_truncation_the_decomposition_is_exact(rng):
    matrix = rng.normal(size=(24, 30))
    result = tt_svd(matrix, (2, 3, 4), (5, 3, 2))
    assert result.ranks == max_tt_ranks((2, 3, 4), (5, 3, 2))
    np.testing.assert_allclose(full_matrix(result), matrix, atol=1e-12)
    assert result.rel_error < 1e-12


def test_single_core_is_the_matrix(rng):
    matrix = rng.normal(size=(6, 7))
    result = tt_svd(matrix, (6,), (7,), tt_rank=1, rel_error=0.1)
    assert [c.shape for c in result] == [(1, 6, 7, 1)]
    np.testing.assert_array_equal(result[0][0, :, :, 0], matrix)
    assert result.rel_error == 0.0


def test_zero_matrix_gives_rank_one_zero_cores():
    result = tt_svd(np.zeros((8, 8)), (2, 4), (4, 2), rel_error=0.1)
    assert result.ranks == (1, 1, 1)
    assert not np.any(full_matrix(result))
    assert result.rel_error == 0.0


def test_dtypes_are_kept_and_integers_become_float64(rng):
    matrix = rng.normal(size=(8, 8))
    assert tt_svd(matrix.astype(np.float32), (2, 4), (4, 2))[0].dtype == (
        np.float32
    )
    assert tt_svd(matrix, (2, 4), (4, 2))[0].dtype == np.float64
    ints = np.arange(64).reshape(8, 8)
    result = tt_svd(ints, (2, 4), (4, 2))
    assert result[0].dtype == np.float64
    np.testing.assert_allclose(full_matrix(result), ints, atol=1e-10)


# ------------------------------------------------------ the error guarantee


@pytest.mark.parametrize("eps", [0.01, 0.1, 0.3, 0.7])
@pytest.mark.parametrize(
    "in_modes, out_modes",
    [((4, 6, 3), (3, 4, 5)), ((2, 3, 2, 4), (2, 5, 3, 2))],
)
@pytest.mark.parametrize(
    "kind",
    [
        "gaussian",
        "hilbert",
        "smooth",
        "low_rank_plus_noise",
        "decaying_spectrum",
    ],
)
def test_rel_error_is_guaranteed(eps, in_modes, out_modes, kind, rng):
    rows, cols = math.prod(in_modes), math.prod(out_modes)
    matrix = structured_matrices(rng, rows, cols)[kind]
    for dtype in (np.float64, np.float32):
        result = tt_svd(
            matrix.astype(dtype), in_modes, out_modes, rel_error=eps
        )
        achieved = relative_error(matrix, result)
        assert achieved <= eps * (1 + 1e-5)
        # The reported error is the achieved one.
        assert result.rel_error == pytest.approx(achieved, rel=1e-3, abs=1e-6)
        assert result.rel_error == pytest.approx(
            tt_error(result, matrix), rel=1e-3, abs=1e-6
        )


@pytest.mark.parametrize("eps", [0.05, 0.2, 0.5])
def test_two_cores_use_the_smallest_rank_eckart_young(eps, rng):
    # With two cores TT-SVD is one SVD of the (n1 m1) x (n2 m2) unfolding;
    # the smallest rank meeting the budget follows from its singular values.
    matrix = structured_matrices(rng, 24, 20)["decaying_spectrum"]
    in_modes, out_modes = (4, 6), (5, 4)
    unfolding = matrix.reshape(4, 6, 5, 4).transpose(0, 2, 1, 3).reshape(20, 24)
    sv = np.linalg.svd(unfolding, compute_uv=False)
    tails = [np.sqrt(np.sum(sv[r:] ** 2)) for r in range(len(sv) + 1)]
    expected = next(
        r for r, t in enumerate(tails) if t <= eps * np.linalg.norm(matrix)
    )
    result = tt_svd(matrix, in_modes, out_modes, rel_error=eps)
    assert result.ranks == (1, expected, 1)
    assert result.rel_error == pytest.approx(
        tails[expected] / np.linalg.norm(matrix), rel=1e-8
    )


@pytest.mark.parametrize("max_rank", [1, 2, 5, (2, 7, 3)])
def test_rank_caps_are_respected(max_rank, rng):
    matrix = rng.normal(size=(48, 36))
    in_modes, out_modes = (2, 3, 2, 4), (3, 2, 3, 2)
    result = tt_svd(matrix, in_modes, out_modes, tt_rank=max_rank)
    caps = (max_rank,) * 3 if isinstance(max_rank, int) else max_rank
    limits = max_tt_ranks(in_modes, out_modes)
    assert result.ranks == (
        1,
        *(min(c, l) for c, l in zip(caps, limits[1:-1])),
        1,
    )
    assert result.rel_error == pytest.approx(
        relative_error(matrix, result), rel=1e-6
    )


def test_rank_cap_and_rel_error_together(rng):
    matrix = rng.normal(size=(48, 36))
    in_modes, out_modes = (2, 3, 2, 4), (3, 2, 3, 2)
    loose = tt_svd(matrix, in_modes, out_modes, rel_error=0.1)
    capped = tt_svd(matrix, in_modes, out_modes, tt_rank=3, rel_error=0.1)
    assert max(capped.ranks) <= 3
    assert all(c <= l for c, l in zip(capped.ranks, loose.ranks))
    # A random matrix cannot reach 10% error at rank 3; the error is reported.
    assert capped.rel_error > 0.1
    assert capped.rel_error == pytest.approx(
        relative_error(matrix, capped), rel=1e-6
    )
    # A cap above what the budget needs changes nothing.
    generous = tt_svd(matrix, in_modes, out_modes, tt_rank=1000, rel_error=0.1)
    assert generous.ranks == loose.ranks


def test_result_is_a_sequence_of_cores(rng):
    result = tt_svd(rng.normal(size=(8, 9)), (2, 4), (3, 3), tt_rank=2)
    assert isinstance(result, TTDecomposition)
    assert len(result) == 2 and len(list(result)) == 2
    assert result.num_params == 1 * 2 * 3 * 2 + 2 * 4 * 3 * 1
    assert result.compression_ratio == pytest.approx(72 / 36)
    assert "ranks=(1, 2, 1)" in repr(result)


# ------------------------------------------------------------- TT-rounding


def test_round_recovers_the_sum_of_two_tt_matrices(rng):
    in_modes, out_modes = (3, 4, 2), (2, 3, 4)
    a, _ = random_tt(rng, in_modes, out_modes, 2)
    b, _ = random_tt(rng, in_modes, out_modes, 1)
    # Block cores of a + b (rank 3), padded with zero blocks.
    total = [np.concatenate([a[0], b[0]], axis=3)]
    for k in (1,):
        core = np.zeros((3, in_modes[k], out_modes[k], 3))
        core[:2, :, :, :2] = a[k]
        core[2:, :, :, 2:] = b[k]
        total.append(core)
    total.append(np.concatenate([a[2], b[2]], axis=0))
    expected = full_matrix(a) + full_matrix(b)
    np.testing.assert_allclose(full_matrix(total), expected, atol=1e-12)

    doubled = [
        np.concatenate([total[0], total[0]], axis=3),
        _block_diag(total[1], total[1]),
        np.concatenate([total[2], total[2]], axis=0),
    ]
    # Doubling the representation: ranks 6, matrix 2 (a + b), TT-rank 3.
    rounded = tt_round(doubled, rel_error=1e-8)
    assert rounded.ranks == (1, 3, 3, 1)
    np.testing.assert_allclose(full_matrix(rounded), 2 * expected, atol=1e-9)


def _block_diag(c1, c2):
    r1, n, m, s1 = c1.shape
    r2, _, _, s2 = c2.shape
    out = np.zeros((r1 + r2, n, m, s1 + s2))
    out[:r1, :, :, :s1] = c1
    out[r1:, :, :, s1:] = c2
    return out


@pytest.mark.parametrize("eps", [0.05, 0.2, 0.6])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_guarantees_rel_error(eps, dtype, rng):
    in_modes, out_modes = (2, 3, 2, 4), (3, 2, 3, 2)
    matrix = structured_matrices(rng, 48, 36)["decaying_spectrum"]
    cores = [c.astype(dtype) for c in tt_svd(matrix, in_modes, out_modes)]
    reference = full_matrix(cores)
    rounded = tt_round(cores, rel_error=eps)
    achieved = relative_error(reference, rounded)
    assert achieved <= eps * (1 + 1e-5)
    assert rounded.rel_error == pytest.approx(achieved, rel=1e-3, abs=1e-6)
    assert all(c.dtype == dtype for c in rounded)


def test_round_respects_rank_caps_and_matches_tt_svd(rng):
    matrix = rng.normal(size=(48, 36))
    in_modes, out_modes = (2, 3, 2, 4), (3, 2, 3, 2)
    full = tt_svd(matrix, in_modes, out_modes)
    rounded = tt_round(full, tt_rank=4)
    direct = tt_svd(matrix, in_modes, out_modes, tt_rank=4)
    assert rounded.ranks == direct.ranks == (1, 4, 4, 4, 1)
    # Both are the same quasi-optimal truncation of the same matrix.
    np.testing.assert_allclose(
        full_matrix(rounded), full_matrix(direct), atol=1e-9
    )


def test_round_accepts_keras_variables(rng):
    import keras

    cores, _ = random_tt(rng, (2, 3), (3, 2), 2)
    variables = [keras.Variable(c.astype(np.float32)) for c in cores]
    rounded = tt_round(variables, tt_rank=2)
    np.testing.assert_allclose(
        full_matrix(rounded), full_matrix(cores), rtol=1e-4, atol=1e-4
    )


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_raise(bad, rng):
    matrix = rng.normal(size=(8, 8))
    matrix[3, 5] = bad
    with pytest.raises(ValueError, match="expected finite entries"):
        tt_svd(matrix, (2, 4), (4, 2))
    cores, _ = random_tt(rng, (2, 4), (4, 2), 2)
    cores[1][0, 0, 0, 0] = bad
    with pytest.raises(ValueError, match=r"`cores\[1\]`, expected finite"):
        tt_round(cores, tt_rank=1)


@pytest.mark.parametrize(
    "tt_rank, shown",
    [
        (0, "tt_rank=0"),
        (-2, "tt_rank=-2"),
        (1.5, "tt_rank=1.5"),
        ("4", "tt_rank='4'"),
        (True, "tt_rank=True"),
        ((2, 0), r"tt_rank=\(2, 0\)"),
    ],
)
def test_bad_tt_rank(tt_rank, shown, rng):
    with pytest.raises(
        ValueError, match=r"invalid value for `tt_rank`.*" + shown
    ):
        tt_svd(rng.normal(size=(8, 9)), (2, 2, 2), (3, 3, 1), tt_rank=tt_rank)


def test_max_rank_sequence_of_wrong_length(rng):
    with pytest.raises(
        ValueError,
        match=r"expected one integer or a sequence "
        r"of 2 inner ranks for 3 cores.*tt_rank=\(2,\)",
    ):
        tt_svd(rng.normal(size=(8, 9)), (2, 2, 2), (3, 3, 1), tt_rank=(2,))


@pytest.mark.parametrize(
    "rel_error", [0, 1, -0.1, 1.5, True, "0.1", float("nan")]
)
def test_bad_rel_error(rel_error, rng):
    with pytest.raises(
        ValueError,
        match=r"`rel_error`, expected a number "
        r"strictly between 0 and 1\. Received: rel_error=",
    ):
        tt_svd(rng.normal(size=(8, 9)), (2, 4), (3, 3), rel_error=rel_error)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        tt_round(
            tt_svd(rng.normal(size=(8, 9)), (2, 4), (3, 3)), rel_error=rel_error
        )


def test_bad_shapes_and_modes(rng):
    with pytest.raises(ValueError, match=r"expected a 2-D array.*\(2, 3, 4\)"):
        tt_svd(np.zeros((2, 3, 4)), (2,), (3,))
    with pytest.raises(
        ValueError,
        match=r"`in_modes`, expected modes whose "
        r"product equals 8, but their product is 6",
    ):
        tt_svd(np.zeros((8, 9)), (2, 3), (3, 3))
    with pytest.raises(ValueError, match=r"`out_modes`.*product equals 9"):
        tt_svd(np.zeros((8, 9)), (2, 4), (3, 2))
    with pytest.raises(ValueError, match="same length"):
        tt_svd(np.zeros((8, 9)), (2, 4), (9,))
    with pytest.raises(ValueError, match=r"`method`.*Received: method='qr'"):
        tt_svd(np.zeros((8, 9)), (2, 4), (3, 3), method="qr")
    with pytest.raises(ValueError, match="real numeric array"):
        tt_svd(np.array([["a", "b"]]), (1,), (2,))
    with pytest.raises(ValueError, match="expected at least one core"):
        tt_round([], tt_rank=1)


def test_max_rank_is_the_deprecated_name_of_tt_rank(rng):
    matrix = rng.normal(size=(16, 16))
    with pytest.warns(DeprecationWarning, match="now called `tt_rank`"):
        old = tt_svd(matrix, (4, 4), (4, 4), max_rank=2)
    new = tt_svd(matrix, (4, 4), (4, 4), tt_rank=2)
    assert old.ranks == new.ranks == (1, 2, 1)
    np.testing.assert_array_equal(full_matrix(old), full_matrix(new))
    with pytest.warns(DeprecationWarning):
        assert tt_round(new, max_rank=1).ranks == (1, 1, 1)
    with pytest.raises(ValueError, match="both `tt_rank` and `max_rank`"):
        tt_svd(matrix, (4, 4), (4, 4), tt_rank=2, max_rank=2)
    with pytest.raises(ValueError, match=r"`max_rank`.*max_rank=0"):
        with pytest.warns(DeprecationWarning):
            tt_svd(matrix, (4, 4), (4, 4), max_rank=0)


def _low_tt_rank(rng, rank, noise=0.0):
    """A 1024 x 1024 matrix of TT-rank ``rank`` over modes (32, 32)^2."""
    cores = [
        rng.normal(size=(1, 32, 32, rank)),
        rng.normal(size=(rank, 32, 32, 1)),
    ]
    matrix = full_matrix(cores)
    return matrix + noise * np.abs(matrix).mean() * rng.normal(
        size=matrix.shape
    )


def test_rank_capped_large_unfoldings_use_the_randomized_range_finder(rng):
    # One 1024 x 1024 unfolding (modes (32, 32) x (32, 32)), cap 6 <= 1024/8.
    matrix = _low_tt_rank(rng, 6)
    auto = tt_svd(matrix, (32, 32), (32, 32), tt_rank=6)
    randomized = tt_svd(
        matrix, (32, 32), (32, 32), tt_rank=6, method="randomized"
    )
    np.testing.assert_array_equal(full_matrix(auto), full_matrix(randomized))
    # A matrix of TT-rank 6 is recovered to rounding error.
    assert auto.ranks == (1, 6, 1)
    assert tt_error(auto, matrix) < 1e-9
    assert auto.rel_error < 1e-9


def test_randomized_error_is_exact_and_close_to_the_best(rng):
    # Decaying spectrum plus noise: the truncation really discards something.
    matrix = _low_tt_rank(rng, 12, noise=0.5)
    randomized = tt_svd(
        matrix, (32, 32), (32, 32), tt_rank=8, method="randomized"
    )
    best = tt_svd(matrix, (32, 32), (32, 32), tt_rank=8, method="svd")
    true_error = tt_error(randomized, matrix)
    assert randomized.rel_error == pytest.approx(true_error, rel=1e-6)
    assert 0.01 < best.rel_error <= true_error <= best.rel_error * 1.01
    assert randomized.ranks == best.ranks == (1, 8, 1)


@pytest.mark.parametrize(
    "kwargs", [{"rel_error": 0.1, "tt_rank": 4}, {}, {"rel_error": 0.1}]
)
def test_randomized_needs_a_rank_cap_and_no_error_budget(kwargs, rng):
    with pytest.raises(ValueError, match="method='randomized', which needs"):
        tt_svd(
            rng.normal(size=(16, 16)),
            (4, 4),
            (4, 4),
            method="randomized",
            **kwargs,
        )
