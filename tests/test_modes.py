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
