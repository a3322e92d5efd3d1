"""Factorising layer widths into TT modes and validating TT-ranks.

A TT-matrix of size ``N x M`` needs ``N = n_1 * ... * n_d`` and
``M = m_1 * ... * m_d`` with the same number ``d`` of factors ("modes") on
both sides. The functions here pick balanced modes automatically, pad widths
that factor badly, and check what a user passes in.
"""

from __future__ import annotations

import dataclasses
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
# The widest layer side keras_tt builds: TFLite and TensorFlow index tensor
# axes with 32-bit integers.
MAX_WIDTH = 2**31 - 1
# Automatic padding to a 7-smooth width adds at most 1/11 of the width (11
# becomes 12); above 100,000 it adds at most 1.3%.
MAX_PADDING_OVERHEAD = 1 / 11
# The value of ``in_modes`` / ``out_modes`` that asks for `fast_modes`.
FAST = "fast"


def is_positive_int(value) -> bool:
    """True for a Python or NumPy integer >= 1 (booleans excluded)."""
    return (
        isinstance(value, numbers.Integral)
        and not isinstance(value, bool)
        and value >= 1
    )


def prime_factors(n: int) -> list[int]:
    """Prime factors of ``n`` in ascending order, with repetition.

    Trial division: meant for layer widths (at most `MAX_WIDTH`), where it
    takes at most a few tens of thousands of steps.
    """
    factors, p = [], 2
    while p * p <= n:
        while n % p == 0:
            factors.append(p)
            n //= p
        p += 1
    if n > 1:
        factors.append(n)
    return factors


def check_width(width, name: str = "width") -> int:
    """Check that ``width`` is a positive integer of at most `MAX_WIDTH`."""
    if not is_positive_int(width):
        raise ValueError(
            f"Received an invalid value for `{name}`, expected a positive "
            f"integer. Received: {name}={width!r}"
        )
    if width > MAX_WIDTH:
        raise ValueError(
            f"Received an invalid value for `{name}`, expected at most "
            f"{MAX_WIDTH:,} (TFLite and TensorFlow index tensor axes with "
            f"32-bit integers). Received: {name}={width!r}"
        )
    return int(width)


def padded_width(width: int) -> int:
    """The smallest width ``>= width`` whose prime factors are all <= 7.

    Such widths split into balanced modes between 2 and 8. A width that
    already qualifies is returned unchanged; a prime such as 1021 becomes
    1024. The search walks the 7-smooth numbers, so it is immediate for any
    width up to `MAX_WIDTH`; padding never adds more than
    `MAX_PADDING_OVERHEAD` of the width.

    Example:

    >>> padded_width(1021), padded_width(784), padded_width(11)
    (1024, 784, 12)
    """
    width = check_width(width)
    best = None
    power_of_7 = 1
    while power_of_7 < 2 * width:
        power_of_5 = power_of_7
        while power_of_5 < 2 * width:
            power_of_3 = power_of_5
            while power_of_3 < 2 * width:
                # The smallest power of two that lifts this product to width.
                candidate = power_of_3
                while candidate < width:
                    candidate *= 2
                if best is None or candidate < best:
                    best = candidate
                power_of_3 *= 3
            power_of_5 *= 5
        power_of_7 *= 7
    return best


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
    """Balanced input and output modes for an ``input_dim x units`` matrix.

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


def _divisor_near(width: int, target: int) -> int:
    """The divisor of ``width`` closest to ``target`` on a log scale (the
    smaller on a tie), from the prime factors of ``width``."""
    divisors = {1}
    for p in prime_factors(width):
        divisors |= {d * p for d in divisors}
    return min(divisors, key=lambda v: (abs(math.log(v / target)), v))


def fast_modes(
    input_dim: int, units: int, inner: int = 8
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Two-core modes that make a TT layer fast at inference, on phones too.

    Returns ``((N / a, a), (b, M / b))`` for the padded widths ``N`` and
    ``M`` (see `padded_width`), ``a`` and ``b`` the divisors of ``N`` and
    ``M`` closest to ``inner``: the large modes on the outside of the
    chain, the small ones inside. At TT-rank ``r`` such a layer computes
    ``x @ W`` left to right in two matrix products with constant weights,
    ``r * (b * N + a * M)`` multiply-adds per row, against ``N * M`` for
    the dense layer, and holds ``r * (N * b / a + a * M / b)`` weights
    (``r * (N + M)`` when ``a == b``, as many as a rank-``r`` factorisation
    ``U @ V``). The matrix it stands for is a sum of ``r`` Kronecker
    products, of rank up to ``r * a * b`` (a rank-``r`` factorisation: at
    most ``r``): ``inner=1`` is that low-rank factorisation; larger
    ``inner`` is closer to a general TT-matrix and slower.

    The balanced modes of `auto_modes` (more cores, modes of about 5) hold
    fewer weights at the same TT-rank, but their chain runs more, smaller
    operations; in LiteRT the two-core layout ran several times faster
    (see the benchmarks guide). Pass the result as ``in_modes`` and
    ``out_modes`` of a TT layer, or as ``modes`` to `keras_tt.tensorize`.

    Args:
        input_dim: rows of the matrix (the layer's input width).
        units: columns of the matrix (the layer's output width).
        inner: the size aimed at for the two inner modes, at least 1.

    Returns:
        ``(in_modes, out_modes)``, two modes each.

    Example:

    >>> fast_modes(768, 768)
    ((96, 8), (8, 96))
    >>> fast_modes(768, 3072, inner=4)
    ((192, 4), (4, 768))
    >>> fast_modes(1021, 10)
    ((128, 8), (10, 1))
    """
    input_dim = check_width(input_dim, "input_dim")
    units = check_width(units, "units")
    if not is_positive_int(inner):
        raise ValueError(
            "Received an invalid value for `inner`, expected a positive "
            f"integer. Received: inner={inner!r}"
        )
    n_pad, m_pad = padded_width(input_dim), padded_width(units)
    a, b = _divisor_near(n_pad, inner), _divisor_near(m_pad, inner)
    return (n_pad // a, a), (b, m_pad // b)


def is_fast(modes) -> bool:
    """Whether ``modes`` is the string ``"fast"`` (see `fast_modes`)."""
    return isinstance(modes, str) and modes == FAST


def check_fast_pair(in_modes, out_modes, names=("in_modes", "out_modes")):
    """Refuse ``"fast"`` on one side with explicit modes on the other.

    ``"fast"`` picks both sides at once (`fast_modes`): the other side must
    be ``"fast"`` too or ``None``.
    """
    if not (is_fast(in_modes) or is_fast(out_modes)):
        return
    if all(is_fast(m) or m is None for m in (in_modes, out_modes)):
        return
    in_name, out_name = names
    raise ValueError(
        f"Received invalid values for `{in_name}` and `{out_name}`, "
        f"expected '{FAST}' on both sides (or on one side with None on the "
        "other): the fast layout picks the modes of both sides together. "
        f"Received: {in_name}={in_modes!r}, {out_name}={out_modes!r}"
    )


def validate_modes(
    modes, name: str, width: int | None = None, allow_fast: bool = False
):
    """Check a user's modes: positive integers whose product is ``width``.

    With ``allow_fast``, the string ``"fast"`` (see `fast_modes`) is
    accepted too and returned as it is.
    """
    if allow_fast and is_fast(modes):
        return FAST
    received = modes
    try:
        modes = tuple(modes) if not isinstance(modes, (str, bytes)) else ()
    except TypeError:
        modes = ()
    if not modes or not all(is_positive_int(m) for m in modes):
        alternative = f" or '{FAST}'" if allow_fast else ""
        raise ValueError(
            f"Received an invalid value for `{name}`, expected a non-empty "
            f"sequence of positive integers{alternative}. Received: "
            f"{name}={received!r}"
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
    in_modes = validate_modes(in_modes, "in_modes")
    out_modes = validate_modes(out_modes, "out_modes")
    if len(in_modes) != len(out_modes):
        raise ValueError(
            "Received invalid values for `in_modes` and `out_modes`, "
            f"expected sequences of the same length. Received: "
            f"in_modes={in_modes}, out_modes={out_modes}"
        )
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


@dataclasses.dataclass(frozen=True)
class TTLayout:
    """How a ``input_dim x units`` matrix is held as a TT-matrix.

    Attributes:
        input_dim: rows of the matrix (a layer's input width, an embedding
            table's vocabulary size).
        units: columns of the matrix.
        in_modes: ``(n_1, ..., n_d)``; their product is `padded_input_dim`.
        out_modes: ``(m_1, ..., m_d)``; their product is `padded_units`.
        ranks: ``(1, r_1, ..., r_{d-1}, 1)``.
    """

    input_dim: int
    units: int
    in_modes: tuple[int, ...]
    out_modes: tuple[int, ...]
    ranks: tuple[int, ...]

    @property
    def num_cores(self) -> int:
        return len(self.in_modes)

    @property
    def padded_input_dim(self) -> int:
        return math.prod(self.in_modes)

    @property
    def padded_units(self) -> int:
        return math.prod(self.out_modes)

    @property
    def core_shapes(self) -> tuple[tuple[int, int, int, int], ...]:
        """``(r_{k-1}, n_k, m_k, r_k)`` for every core."""
        return tuple(
            (self.ranks[k], n, m, self.ranks[k + 1])
            for k, (n, m) in enumerate(zip(self.in_modes, self.out_modes))
        )

    @property
    def num_params(self) -> int:
        """Entries in the cores: ``sum_k r_{k-1} n_k m_k r_k``."""
        return sum(math.prod(shape) for shape in self.core_shapes)

    @property
    def compression_ratio(self) -> float:
        """``input_dim * units`` over `num_params`."""
        return self.input_dim * self.units / self.num_params


def resolve_layout(
    input_dim,
    units,
    tt_rank=None,
    in_modes=None,
    out_modes=None,
    warn: bool = True,
    names: tuple[str, str, str, str] = (
        "input_dim",
        "units",
        "in_modes",
        "out_modes",
    ),
) -> TTLayout:
    """Modes and TT-ranks of a TT-matrix, as every part of keras_tt picks them.

    This is the one place where modes and ranks are decided: the layers
    call it in ``build``, `keras_tt.tensorize` when it plans, and the report
    when it describes a layer, so they always agree.

    Modes. With neither ``in_modes`` nor ``out_modes``, both widths are
    padded if needed (`padded_width`) and split into the same number of
    balanced modes (`auto_modes`). ``"fast"`` (on both sides, or on one
    with ``None`` on the other) takes the two-core modes of `fast_modes`.
    Modes given on one side fix the number of cores and the other side is
    split to match. Modes given explicitly must multiply to their width
    exactly.

    Ranks. ``tt_rank`` is one integer for every inner bond, a sequence of
    the ``d - 1`` inner ranks, or ``None`` for the largest useful ranks
    (`max_tt_ranks`). Ranks above the largest useful ones are clamped; with
    ``warn`` true, a warning says so when the modes or the per-bond ranks
    were given explicitly (a single rank over automatic modes is a cap, and
    the bonds near the ends of the chain always allow less).

    Args:
        input_dim: rows of the matrix.
        units: columns of the matrix.
        tt_rank: see above.
        in_modes: optional factors of ``input_dim``, or ``"fast"``.
        out_modes: optional factors of ``units``, or ``"fast"``.
        warn: warn when ranks are clamped.
        names: the argument names to use in error messages, for layers
            whose arguments are called otherwise (``TTEmbedding``'s
            ``vocab_modes``, say).

    Returns:
        A `TTLayout`.

    Example:

    >>> layout = resolve_layout(25088, 4096, tt_rank=4)
    >>> layout.in_modes, layout.out_modes
    ((8, 7, 7, 4, 4, 4), (4, 4, 4, 4, 4, 4))
    >>> layout.ranks, layout.num_params
    ((1, 4, 4, 4, 4, 4, 1), 1600)
    >>> resolve_layout(1021, 10, tt_rank=2).padded_input_dim
    1024
    >>> fast = resolve_layout(768, 768, tt_rank=16, in_modes="fast")
    >>> fast.in_modes, fast.out_modes, fast.num_params
    ((96, 8), (8, 96), 24576)
    """
    dim_name, units_name, in_name, out_name = names
    input_dim = check_width(input_dim, dim_name)
    units = check_width(units, units_name)
    if tt_rank is not None:
        check_tt_rank_argument(tt_rank)
    check_fast_pair(in_modes, out_modes, (in_name, out_name))
    given_in, given_out = in_modes, out_modes
    if is_fast(in_modes) or is_fast(out_modes):
        # Automatic modes (padded widths), like the balanced ones: their
        # ranks are clamped quietly.
        in_modes, out_modes = fast_modes(input_dim, units)
        given_in = given_out = None
    if given_in is not None:
        in_modes = validate_modes(in_modes, in_name, input_dim)
    if given_out is not None:
        out_modes = validate_modes(out_modes, out_name, units)
    if (
        in_modes is not None
        and out_modes is not None
        and len(in_modes) != len(out_modes)
    ):
        raise ValueError(
            f"Received invalid values for `{in_name}` and `{out_name}`, "
            "expected sequences of the same length. Received: "
            f"{in_name}={in_modes} (length {len(in_modes)}), "
            f"{out_name}={out_modes} (length {len(out_modes)})"
        )
    if in_modes is None and out_modes is None:
        in_modes, out_modes = auto_modes(input_dim, units)
    elif out_modes is None:
        out_modes = split_width(units, len(in_modes))
    elif in_modes is None:
        in_modes = split_width(input_dim, len(out_modes))
    # A uniform rank over automatic modes is a cap: the bonds near the ends
    # of the chain allow less, and clamping them says nothing worth a
    # warning. Modes or per-bond ranks given explicitly are the user's
    # design, so clamping those is reported.
    chosen_by_user = (
        given_in is not None
        or given_out is not None
        or not is_positive_int(tt_rank)
    )
    if tt_rank is None:
        ranks = max_tt_ranks(in_modes, out_modes)
    else:
        ranks = resolve_tt_ranks(
            tt_rank, in_modes, out_modes, warn=warn and chosen_by_user
        )
    return TTLayout(input_dim, units, in_modes, out_modes, ranks)
