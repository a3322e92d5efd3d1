"""Factorising layer widths into TT modes and validating TT-ranks.

A TT-matrix of size ``N x M`` needs ``N = n_1 * ... * n_d`` and
``M = m_1 * ... * m_d`` with the same number ``d`` of factors ("modes") on
both sides. The functions here pick balanced modes automatically, pad widths
that factor badly, and check what a user passes in.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence

# Modes larger than this make the cores wide and the contraction slow; the
# paper's shapes use factors between 2 and 8.
MAX_AUTO_MODE = 8
# Automatic modes aim at this typical size: the paper splits 25088 into
# 2*7*8*8*7*4 and 4096 into 4^6, both about 5.5 on (geometric) average.
_TARGET_MODE = 5.5
# A width whose prime factors are all at most this "factors well".
_SMOOTH_PRIME_LIMIT = 7


def is_positive_int(value) -> bool:
    """True for a Python or NumPy integer >= 1 (booleans excluded)."""
    return (
        isinstance(value, numbers.Integral)
        and not isinstance(value, bool)
        and value >= 1
    )


def prime_factors(n: int) -> list[int]:
    """Prime factors of ``n`` in ascending order, with repetition."""
    factors, p = [], 2
    while p * p <= n:
        while n % p == 0:
            factors.append(p)
            n //= p
        p += 1
    if n > 1:
        factors.append(n)
    return factors


def padded_width(width: int) -> int:
    """The smallest width ``>= width`` whose prime factors are all <= 7.

    Such widths split into balanced modes between 2 and 8. A width that
    already qualifies is returned unchanged; a prime such as 1021 becomes
    1024.
    """
    candidate = width
    while max(prime_factors(candidate), default=1) > _SMOOTH_PRIME_LIMIT:
        candidate += 1
    return candidate


def _balanced_split(width: int, num_modes: int) -> tuple[int, ...]:
    """Split ``width`` into ``num_modes`` factors as equal as possible.

    Greedy: every prime factor, largest first, multiplies the currently
    smallest mode. Modes are returned largest first; missing factors are 1.
    """
    modes = [1] * num_modes
    for p in sorted(prime_factors(width), reverse=True):
        modes[modes.index(min(modes))] *= p
    return tuple(sorted(modes, reverse=True))


def _num_modes_needed(width: int) -> int:
    """Modes of about 5.5 each, and as many more as keep every mode <= 8."""
    num_modes = max(1, math.ceil(math.log(width, _TARGET_MODE) - 1e-9))
    while max(_balanced_split(width, num_modes)) > MAX_AUTO_MODE:
        num_modes += 1
    return num_modes


def auto_modes(
    input_dim: int, units: int
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Choose balanced input and output modes for an ``input_dim x units`` matrix.

    Each width is first padded to a nearby width whose prime factors are at
    most 7 (see `padded_width`), then split into the same number ``d`` of
    modes, each at most 8 where possible. The products of the returned modes
    are the padded widths.

    Example:

    >>> auto_modes(25088, 4096)
    ((8, 7, 7, 4, 4, 4), (4, 4, 4, 4, 4, 4))
    >>> auto_modes(1021, 10)
    ((4, 4, 4, 4, 4), (5, 2, 1, 1, 1))
    >>> auto_modes(784, 10)
    ((7, 7, 4, 4), (5, 2, 1, 1))
    """
    n_pad, m_pad = padded_width(input_dim), padded_width(units)
    num_modes = max(_num_modes_needed(n_pad), _num_modes_needed(m_pad))
    return _balanced_split(n_pad, num_modes), _balanced_split(m_pad, num_modes)


def validate_modes(
    modes, name: str, width: int | None = None
) -> tuple[int, ...]:
    """Check a user's modes: positive integers whose product is ``width``."""
    received = modes
    try:
        modes = tuple(modes) if not isinstance(modes, (str, bytes)) else ()
    except TypeError:
        modes = ()
    if not modes or not all(is_positive_int(m) for m in modes):
        raise ValueError(
            f"Received an invalid value for `{name}`, expected a non-empty "
            f"sequence of positive integers. Received: {name}={received!r}"
        )
    modes = tuple(int(m) for m in modes)
    if width is not None and math.prod(modes) != width:
        raise ValueError(
            f"Received an invalid value for `{name}`, expected modes whose "
            f"product equals {width}, but their product is {math.prod(modes)}. "
            f"Received: {name}={modes}"
        )
    return modes


def max_tt_ranks(
    in_modes: Sequence[int], out_modes: Sequence[int]
) -> tuple[int, ...]:
    """The largest useful TT-rank at each bond, boundary ranks included.

    At the bond after core ``k`` no rank beyond
    ``min(prod_{i<=k} n_i m_i, prod_{i>k} n_i m_i)`` can add expressive power.
    Returns ``d + 1`` numbers, the first and last being 1.
    """
    sizes = [n * m for n, m in zip(in_modes, out_modes)]
    return tuple(
        min(math.prod(sizes[:k]), math.prod(sizes[k:]))
        for k in range(len(sizes) + 1)
    )


def check_tt_rank_argument(tt_rank, name: str = "tt_rank") -> None:
    """Check the form of ``tt_rank`` before the number of cores is known."""
    if is_positive_int(tt_rank):
        return
    if isinstance(tt_rank, Sequence) and not isinstance(tt_rank, (str, bytes)):
        if all(is_positive_int(r) for r in tt_rank):
            return
    raise ValueError(
        f"Received an invalid value for `{name}`, expected a positive integer "
        "or a sequence of positive integers (one per inner bond). "
        f"Received: {name}={tt_rank!r}"
    )


def resolve_tt_ranks(
    tt_rank,
    in_modes: Sequence[int],
    out_modes: Sequence[int],
    name: str = "tt_rank",
    warn: bool = True,
) -> tuple[int, ...]:
    """Turn ``tt_rank`` into the full rank tuple ``(1, r_1, ..., r_{d-1}, 1)``.

    ``tt_rank`` is one integer for every inner bond or a sequence of the
    ``d - 1`` inner ranks. Ranks above `max_tt_ranks` are clamped, with a
    warning when ``warn`` is true.
    """
    check_tt_rank_argument(tt_rank, name)
    num_cores = len(in_modes)
    if is_positive_int(tt_rank):
        inner = [int(tt_rank)] * (num_cores - 1)
    else:
        inner = [int(r) for r in tt_rank]
        if len(inner) != num_cores - 1:
            raise ValueError(
                f"Received an invalid value for `{name}`, expected one integer "
                f"or a sequence of {num_cores - 1} inner ranks for {num_cores} "
                f"cores (modes {tuple(in_modes)} x {tuple(out_modes)}). "
                f"Received: {name}={tuple(tt_rank)!r}"
            )
    limits = max_tt_ranks(in_modes, out_modes)
    ranks = (1, *(min(r, lim) for r, lim in zip(inner, limits[1:-1])), 1)
    if warn and tuple(inner) != ranks[1:-1]:
        warnings.warn(
            f"`{name}`={tt_rank!r} exceeds the largest useful TT-ranks "
            f"{limits[1:-1]} for modes {tuple(in_modes)} x {tuple(out_modes)}; "
            f"using TT-ranks {ranks[1:-1]} instead.",
            UserWarning,
            stacklevel=3,
        )
    return ranks


def split_width(width: int, num_modes: int) -> tuple[int, ...]:
    """Split ``width`` (padded as by `padded_width`) into ``num_modes`` modes.

    Example:

    >>> split_width(1024, 4)
    (8, 8, 4, 4)
    """
    return _balanced_split(padded_width(width), num_modes)
