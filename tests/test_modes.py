"""Automatic modes, padding and rank bookkeeping."""

import math

import pytest

from keras_tt import modes


@pytest.mark.parametrize(
    "width, expected",
    [
        (1024, 1024),
        (1021, 1024),
        (784, 784),
        (11, 12),
        (1, 1),
        (97, 98),
        (4096, 4096),
    ],
)
def test_padded_width_is_the_next_7_smooth_width(width, expected):
    assert modes.padded_width(width) == expected
    assert max(modes.prime_factors(expected), default=1) <= 7
    for smaller in range(width, expected):
        assert max(modes.prime_factors(smaller)) > 7


def test_auto_modes_follow_the_paper_for_vgg_fc6():
    # Six modes on each side, as the paper chose (2*7*8*8*7*4 and 4^6).
    assert modes.auto_modes(25088, 4096) == ((8, 7, 7, 4, 4, 4), (4,) * 6)


@pytest.mark.parametrize(
    "input_dim, units",
    [(784, 10), (1024, 1024), (3, 5000), (25088, 4096), (1, 1), (300, 7)],
)
def test_auto_modes_are_balanced_and_small(input_dim, units):
    in_modes, out_modes = modes.auto_modes(input_dim, units)
    assert len(in_modes) == len(out_modes)
    assert math.prod(in_modes) == modes.padded_width(input_dim)
    assert math.prod(out_modes) == modes.padded_width(units)
    assert max(in_modes + out_modes) <= modes.MAX_AUTO_MODE


def test_max_tt_ranks():
    assert modes.max_tt_ranks((2, 3), (3, 2)) == (1, 6, 1)
    assert modes.max_tt_ranks((4, 8, 8, 4), (4, 8, 8, 4)) == (
        1,
        16,
        1024,
        16,
        1,
    )


def test_resolve_tt_ranks_expands_and_clamps():
    assert modes.resolve_tt_ranks(3, (2, 2, 2), (2, 2, 2)) == (1, 3, 3, 1)
    with pytest.warns(UserWarning, match="using TT-ranks"):
        assert modes.resolve_tt_ranks([9, 2], (2, 2, 2), (2, 2, 2)) == (
            1,
            4,
            2,
            1,
        )
    assert modes.resolve_tt_ranks(5, (7,), (3,)) == (1, 1)


@pytest.mark.parametrize(
    "input_dim, units, inner",
    [
        (768, 768, 8),
        (768, 3072, 8),
        (3072, 768, 4),
        (1021, 10, 8),
        (7, 5, 8),
        (1_000_000, 50257, 16),
    ],
)
def test_fast_modes_put_the_small_modes_inside(input_dim, units, inner):
    in_modes, out_modes = modes.fast_modes(input_dim, units, inner=inner)
    n_pad, m_pad = modes.padded_width(input_dim), modes.padded_width(units)
    assert len(in_modes) == len(out_modes) == 2
    assert math.prod(in_modes) == n_pad and math.prod(out_modes) == m_pad
    a, b = in_modes[1], out_modes[0]
    # The inner modes are the divisors closest to `inner` (log scale).
    for width, chosen in ((n_pad, a), (m_pad, b)):
        best = min(
            abs(math.log(v / inner))
            for v in range(1, width + 1)
            if width % v == 0
        )
        assert abs(math.log(chosen / inner)) == pytest.approx(best)


@pytest.mark.parametrize(
    "input_dim, units, rank", [(768, 768, 16), (512, 96, 5)]
)
def test_fast_modes_cost_and_size_follow_the_docstring(input_dim, units, rank):
    from keras_tt.contraction import contraction_flops

    in_modes, out_modes = modes.fast_modes(input_dim, units)
    layout = modes.resolve_layout(input_dim, units, rank, in_modes, out_modes)
    n, m = layout.padded_input_dim, layout.padded_units
    a, b = in_modes[1], out_modes[0]
    r = layout.ranks[1]
    assert r == min(rank, n // a * b, a * m // b)
    assert layout.num_params == r * (n * b // a + a * m // b)
    assert contraction_flops(
        in_modes, out_modes, layout.ranks, "left_to_right"
    ) == r * (b * n + a * m)


def test_fast_modes_with_inner_one_is_a_low_rank_factorisation():
    in_modes, out_modes = modes.fast_modes(300, 200, inner=1)
    assert in_modes == (300, 1) and out_modes == (1, 200)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(input_dim=0, units=8), "input_dim"),
        (dict(input_dim=8, units=2.5), "units"),
        (dict(input_dim=8, units=8, inner=0), "inner"),
        (dict(input_dim=8, units=8, inner="8"), "inner"),
    ],
)
def test_fast_modes_reject_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`.*Received: {name}="):
        modes.fast_modes(**kwargs)
