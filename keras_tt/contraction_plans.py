"""Plans for multiplying by a TT-matrix, and the cost models that pick them.

A `TTPlan` says how `keras_tt.contraction.tt_matmul` computes ``x @ W``:
first merge runs of neighbouring cores into larger cores (work on the
weights only, independent of the batch), then run the chain over the
merged cores in one direction. Merging every core is the dense plan:
rebuild the kernel, then one matrix product.

`choose_plan` picks, for the static shapes and a batch size, the plan of
least `plan_cost`: an explicit model of the time of each einsum (a fixed
cost per op, multiply-adds, and elements read and written) whose constants
are fitted to timings (`TENSORFLOW_COSTS`, `LITERT_COSTS`), never
materialising a merged core above a memory budget.

`contraction_scope` forces a contraction on every plan chosen in a thread;
``contraction_scope("litert")`` is the scope LiteRT export traces models in.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import math
import threading

LEFT_TO_RIGHT = "left_to_right"
RIGHT_TO_LEFT = "right_to_left"


def chain_macs(in_modes, out_modes, ranks, direction, only=None) -> int:
    """Multiply-adds per input row of one direction of the chain (of its
    step for core ``only`` when given)."""
    d = len(in_modes)
    total = 0
    for k in range(d) if only is None else (only,):
        if direction == LEFT_TO_RIGHT:
            rows = math.prod(out_modes[:k]) * math.prod(in_modes[k:])
            cols = out_modes[k]
        else:
            rows = math.prod(in_modes[: k + 1]) * math.prod(out_modes[k:])
            cols = 1
        total += rows * cols * ranks[k] * ranks[k + 1]
    return total


AUTO = "auto"
CHAIN = "chain"
DENSE = "dense"
CONTRACTIONS = (AUTO, CHAIN, DENSE)

# No plan materialises a merged core (the full kernel included) larger than
# this many bytes: 16 MiB, a 2048 x 2048 float32 kernel. The 25088 x 4096
# kernel of VGG-16's fc6 (411 MB in float32) is never rebuilt.
DEFAULT_MEMORY_BUDGET = 16 * 2**20

# Batch size assumed when the batch is not known while tracing (Keras's
# `fit` traces its step with an unknown batch): Keras's default batch size.
UNKNOWN_BATCH = 32

# The same for a LiteRT export with a resizable batch: one row, the
# on-device case (one sample, one decoded token).
UNKNOWN_LITERT_BATCH = 1

# The cost model, in seconds: every einsum costs a fixed overhead plus its
# multiply-adds plus the elements it reads and writes (the state's
# rearrangement, not the arithmetic, dominates long chains). Non-negative
# least-squares fit (relative error) to TensorFlow graph-mode timings of
# the candidate plans of six layers (VGG-16's fc6 at rank 4, 1024 x 1024
# at rank 8, 768 x 768 at rank 16 in the balanced and the fast layout,
# 768 x 3072 at rank 16, 4096 x 4096 at rank 8), each at one row and at
# 32-128 rows, TensorFlow's default threads on a shared two-core x86-64
# CPU (`benchmarks/fit_plan_costs.py --save`, whose timings
# `tests/test_plan_costs.py` checks the choices against); rounded.
OP_SECONDS = 2.2e-4
MAC_SECONDS = 1.2e-11
ELEMENT_SECONDS = 7.7e-10


@dataclasses.dataclass(frozen=True)
class PlanCosts:
    """The constants of `plan_cost`, in seconds.

    Attributes:
        op: fixed cost of one einsum.
        mac: cost of one multiply-add.
        element: cost of one element of the state read or written.
        litert: whether the constants are LiteRT's: then the terms count
            the ops LiteRT runs (the kernel rebuilt from two halves, the
            left-to-right chain's input TRANSPOSE at every batch; see
            `plan_terms`).
    """

    op: float
    mac: float
    element: float
    litert: bool = False


TENSORFLOW_COSTS = PlanCosts(OP_SECONDS, MAC_SECONDS, ELEMENT_SECONDS)

# The same model for a LiteRT file run by the interpreter with XNNPACK on
# one thread, where each einsum is a FULLY_CONNECTED (or BATCH_MATMUL) and a
# TRANSPOSE: fitted to the timings of `benchmarks/litert_plans.py`. A
# refit with these terms (op=1.8e-6, mac=2.5e-11,
# element=2.2e-10) fits the times as well but ranks VGG's fc6 at one row
# 1.09x the best; these constants rank the measured best first at every
# shape and row count of that benchmark.
LITERT_COSTS = PlanCosts(op=1.2e-5, mac=3.2e-11, element=6.7e-10, litert=True)

# The contractions `contraction_scope` uses while exporting to LiteRT: the
# plans of `LITERT_COSTS`, or for a full-integer export the chain (its
# cores are constant weights, quantised per channel; merged cores would be
# activations, quantised per tensor), explicit plans kept in both.
LITERT = "litert"
LITERT_INT8 = "litert_int8"
_LITERT_SCOPES = (LITERT, LITERT_INT8)


@dataclasses.dataclass(frozen=True)
class TTPlan:
    """How to compute ``x @ W``: cores to merge, then a chain over them.

    Attributes:
        groups: the runs of neighbouring cores merged into one core each,
            as ``(start, stop)`` index pairs covering ``0 .. d`` in order.
            ``d`` runs of one core is the plain chain; one run of all the
            cores is the dense plan (rebuild the kernel, then one matmul).
        direction: ``"left_to_right"`` or ``"right_to_left"``, the order of
            the chain over the merged cores.

    Example:

    >>> TTPlan(((0, 2), (2, 3)), "right_to_left").name
    'merged 2+1, right_to_left'
    >>> TTPlan(((0, 3),)).name
    'dense'
    """

    groups: tuple[tuple[int, int], ...]
    direction: str = LEFT_TO_RIGHT

    @property
    def is_chain(self) -> bool:
        """Whether no cores are merged."""
        return all(b - a == 1 for a, b in self.groups)

    @property
    def is_dense(self) -> bool:
        """Whether the whole kernel is rebuilt (and more than one core)."""
        return len(self.groups) == 1 and self.groups[0][1] > 1

    @property
    def name(self) -> str:
        if self.is_dense:
            return DENSE
        if self.is_chain:
            return f"{CHAIN}, {self.direction}"
        sizes = "+".join(str(b - a) for a, b in self.groups)
        return f"merged {sizes}, {self.direction}"

    def merged_modes(self, modes):
        """Modes of the merged cores: products over each run."""
        return tuple(math.prod(modes[a:b]) for a, b in self.groups)


def check_plan(plan, d):
    """``plan`` if it is a `TTPlan` for ``d`` cores, else a ValueError."""
    stops = [0] + [b for _, b in getattr(plan, "groups", ())]
    starts = [a for a, _ in getattr(plan, "groups", ())] + [d]
    if (
        not isinstance(plan, TTPlan)
        or stops[-1] != d
        or starts != stops[:-1] + [d]
        or any(b <= a for a, b in plan.groups)
        or plan.direction not in (LEFT_TO_RIGHT, RIGHT_TO_LEFT)
    ):
        raise ValueError(
            "Received an invalid value for `plan`, expected a `TTPlan` whose "
            f"groups cover cores 0..{d} in order. Received: plan={plan!r}"
        )
    return plan


def rebuild_split(in_modes, out_modes, ranks) -> int:
    """Where LiteRT's kernel rebuild splits the cores: each half is merged
    on its own, then one product and one transpose join them. The bond of
    least rank, the most balanced halves among ties."""
    d = len(in_modes)
    if d == 1:
        return 1
    sizes = [n * m for n, m in zip(in_modes, out_modes)]

    def key(k):
        left, right = math.prod(sizes[:k]), math.prod(sizes[k:])
        return ranks[k], abs(math.log(left / right))

    return min(range(1, d), key=key)


def _step_sizes(in_modes, out_modes, ranks, direction):
    """Per einsum of the chain, in core order: (multiply-adds, elements of
    the state read and written) per input row."""
    sizes = []
    for k in range(len(in_modes)):
        if direction == LEFT_TO_RIGHT:
            before = (
                math.prod(out_modes[:k]) * math.prod(in_modes[k:]) * ranks[k]
            )
            after = (
                math.prod(out_modes[: k + 1])
                * math.prod(in_modes[k + 1 :])
                * ranks[k + 1]
            )
        else:
            before = (
                math.prod(in_modes[: k + 1])
                * math.prod(out_modes[k + 1 :])
                * ranks[k + 1]
            )
            after = (
                math.prod(in_modes[:k]) * math.prod(out_modes[k:]) * ranks[k]
            )
        macs = chain_macs(in_modes, out_modes, ranks, direction, only=k)
        sizes.append((macs, before + after))
    return sizes


def _merge_sizes(in_modes, out_modes, ranks, start, stop):
    """Per einsum merging cores ``start..stop``: (multiply-adds, elements
    of the result)."""
    sizes = []
    n_done, m_done = in_modes[start], out_modes[start]
    for k in range(start + 1, stop):
        left = ranks[start] * n_done * m_done
        n_done *= in_modes[k]
        m_done *= out_modes[k]
        macs = left * ranks[k] * in_modes[k] * out_modes[k] * ranks[k + 1]
        sizes.append((macs, ranks[start] * n_done * m_done * ranks[k + 1]))
    return sizes


def merged_core_elements(in_modes, out_modes, ranks, plan) -> int:
    """Elements of the largest tensor the plan's merges materialise."""
    largest = 0
    for a, b in plan.groups:
        for _, elements in _merge_sizes(in_modes, out_modes, ranks, a, b):
            largest = max(largest, elements)
    return largest


def plan_cost(
    in_modes, out_modes, ranks, plan, batch, costs=TENSORFLOW_COSTS
) -> float:
    """Estimated seconds for one ``x @ W`` with ``batch`` rows.

    Each einsum costs ``costs.op`` plus ``costs.mac`` per multiply-add plus
    ``costs.element`` per element of the state it reads and writes.
    Merging cores costs the same per einsum but does not grow with the
    batch; the chain over the merged cores does. ``costs`` is a
    `PlanCosts`: `TENSORFLOW_COSTS` (the default) or `LITERT_COSTS`.

    Example:

    >>> modes, ranks = (4, 8, 8, 4), (1, 8, 8, 8, 1)
    >>> chain = TTPlan(((0, 1), (1, 2), (2, 3), (3, 4)))
    >>> dense = TTPlan(((0, 4),))
    >>> plan_cost(modes, modes, ranks, chain, 1) < plan_cost(
    ...     modes, modes, ranks, dense, 1)
    True
    >>> plan_cost(modes, modes, ranks, chain, 1000) > plan_cost(
    ...     modes, modes, ranks, dense, 1000)
    True
    """
    ops, macs, elements = plan_terms(
        in_modes, out_modes, ranks, plan, batch, tree=costs.litert
    )
    return costs.op * ops + costs.mac * macs + costs.element * elements


def plan_terms(in_modes, out_modes, ranks, plan, batch, tree=False):
    """``(einsums, multiply-adds, elements)`` of one call: the terms that
    `plan_cost` weighs, returned to fit its constants to timings. With
    ``tree``, the dense plan rebuilds the kernel as LiteRT export does
    (see `keras_tt.contraction.rebuilt_matmul`)."""
    ops = macs = elements = 0
    runs = plan.groups
    if plan.is_dense and tree:
        k = rebuild_split(in_modes, out_modes, ranks)
        runs = ((0, k), (k, len(in_modes)))
        n, m = math.prod(in_modes), math.prod(out_modes)
        # Joining the halves: a product and a transpose of the kernel.
        ops, macs, elements = 1, n * m * ranks[k], 2 * n * m
    anchored = 0
    for a, b in runs:
        for m, e in _merge_sizes(in_modes, out_modes, ranks, a, b):
            ops, macs, elements = ops + 1, macs + m, elements + e
        anchored += b - a if b - a > 1 else 0
    if tree and anchored:
        # In the file, each merged core first gets the exact zero from the
        # input (one ADD each), computed once by four ops XNNPACK does not
        # take (slice, compare, reshape, cast), and the last product one
        # more ADD (see `keras_tt.contraction.anchor_to_input`).
        ops += anchored + 5
    merged_ranks = (1,) + tuple(ranks[b] for _, b in plan.groups)
    if plan.direction == LEFT_TO_RIGHT and len(plan.groups) > 1:
        # The first step of the left-to-right chain contracts the middle
        # axis of ``(batch, n_1, rest)``: the input is transposed first.
        # LiteRT runs that TRANSPOSE as an op of its own at every batch
        # (the 768 x 768 chain: 22 ops left to right, 16 right to left);
        # TensorFlow's einsum skips it at one row.
        if tree:
            ops += 1
        if tree or batch > 1:
            elements += batch * math.prod(in_modes)
    for m, e in _step_sizes(
        plan.merged_modes(in_modes),
        plan.merged_modes(out_modes),
        merged_ranks,
        plan.direction,
    ):
        ops, macs, elements = ops + 1, macs + batch * m, elements + batch * e
    return ops, macs, elements


def _groupings(d):
    """Every split of ``0..d`` into runs (all of them up to 12 cores)."""
    if d <= 12:
        for cuts in itertools.product((False, True), repeat=d - 1):
            bounds = [0] + [k + 1 for k, cut in enumerate(cuts) if cut] + [d]
            yield tuple(zip(bounds[:-1], bounds[1:]))
        return
    for size in range(1, d + 1):
        bounds = list(range(0, d, size)) + [d]
        yield tuple(zip(bounds[:-1], bounds[1:]))


def _chain_plan(in_modes, out_modes, ranks):
    d = len(in_modes)
    direction = min(
        (LEFT_TO_RIGHT, RIGHT_TO_LEFT),
        key=lambda dr: chain_macs(in_modes, out_modes, ranks, dr),
    )
    return TTPlan(tuple((k, k + 1) for k in range(d)), direction)


def check_contraction(contraction):
    """``contraction`` if it is one of `CONTRACTIONS`, else a ValueError."""
    if contraction not in CONTRACTIONS:
        raise ValueError(
            "Received an invalid value for `contraction`, expected one of "
            f"{CONTRACTIONS}. Received: contraction={contraction!r}"
        )
    return contraction


@functools.lru_cache(maxsize=1024)
def _choose_plan_cached(in_modes, out_modes, ranks, batch, contraction, limit):
    d = len(in_modes)
    if contraction == CHAIN or d == 1:
        return _chain_plan(in_modes, out_modes, ranks)
    if contraction == DENSE:
        plan = TTPlan(((0, d),))
        elements = merged_core_elements(in_modes, out_modes, ranks, plan)
        if elements > limit:
            raise ValueError(
                "Received an invalid value for `contraction`, expected a "
                "plan whose rebuilt kernel fits the memory budget "
                f"({limit:,} elements); this kernel needs {elements:,} "
                "elements. Received: contraction='dense'"
            )
        return plan
    costs = TENSORFLOW_COSTS
    if contraction == LITERT:
        costs = LITERT_COSTS
        batch = UNKNOWN_LITERT_BATCH if batch is None else batch
    batch = UNKNOWN_BATCH if batch is None else batch
    best, best_cost = None, math.inf
    for groups in _groupings(d):
        for direction in (LEFT_TO_RIGHT, RIGHT_TO_LEFT):
            plan = TTPlan(groups, direction)
            if plan.is_dense and direction == RIGHT_TO_LEFT:
                continue
            if merged_core_elements(in_modes, out_modes, ranks, plan) > limit:
                continue
            cost = plan_cost(in_modes, out_modes, ranks, plan, batch, costs)
            if cost < best_cost:
                best, best_cost = plan, cost
    return best


def choose_plan(
    in_modes,
    out_modes,
    ranks,
    batch=None,
    contraction=AUTO,
    itemsize=4,
    memory_budget=DEFAULT_MEMORY_BUDGET,
) -> TTPlan:
    """The plan `tt_matmul` should run for these shapes and batch size.

    Args:
        in_modes, out_modes, ranks: the TT-matrix's shapes.
        batch: number of rows of ``x``, or ``None`` when unknown (then
            `UNKNOWN_BATCH` is assumed).
        contraction: ``"auto"`` for the plan of least `plan_cost` among every
            way of merging neighbouring cores (both chain directions) that
            fits the memory budget; ``"chain"`` for the plain chain in the
            direction with fewer multiply-adds;
            ``"dense"`` to rebuild the kernel and do one matrix product.
        itemsize: bytes per element of the cores.
        memory_budget: largest merged tensor allowed, in bytes.

    Returns:
        A `TTPlan`.

    Example:

    >>> choose_plan((32, 32), (32, 32), (1, 32, 1), batch=1).name
    'chain, left_to_right'
    >>> choose_plan((32, 32), (32, 32), (1, 32, 1), batch=1000).name
    'dense'
    >>> modes, ranks = (4, 8, 8, 4), (1, 8, 8, 8, 1)
    >>> choose_plan(modes, modes, ranks, batch=100).name
    'merged 2+2, right_to_left'
    >>> choose_plan(modes, modes, ranks, contraction="chain").name
    'chain, left_to_right'
    >>> choose_plan((2, 7, 8, 8, 7, 4), (4,) * 6, (1,) + (4,) * 5 + (1,),
    ...             batch=100).is_dense  # 411 MB: over the budget
    False
    """
    contraction = check_contraction(contraction)
    scoped = getattr(_SCOPE, "contraction", None)
    if scoped in _LITERT_SCOPES:
        # An explicit plan is kept; the rebuilt kernel is computed in the
        # file from the cores (see `contraction.anchor_to_input`), not stored.
        auto = LITERT if scoped == LITERT else CHAIN
        contraction = auto if contraction == AUTO else contraction
    elif scoped is not None:
        contraction = scoped
    limit = int(memory_budget) // int(itemsize)
    return _choose_plan_cached(
        tuple(int(n) for n in in_modes),
        tuple(int(m) for m in out_modes),
        tuple(int(r) for r in ranks),
        None if batch is None else int(batch),
        contraction,
        limit,
    )


_SCOPE = threading.local()


@contextlib.contextmanager
def contraction_scope(contraction):
    """Force a contraction (``"auto"``, ``"chain"`` or ``"dense"``) on every
    `choose_plan` call in this thread, whatever the layers ask for.

    ``"litert"`` is the scope LiteRT export traces models in: layers left
    on ``"auto"`` get the plan of least `plan_cost` under `LITERT_COSTS`
    (for a batch of `UNKNOWN_LITERT_BATCH` rows when it is not fixed),
    and every merge of cores is made to depend on the input (see
    `keras_tt.contraction.anchor_to_input`), so that the converter
    computes merged cores in the file instead of storing them as
    constants. ``"litert_int8"``, for a
    full-integer export, is the same with the chain for ``"auto"``.

    Example:

    >>> modes, ranks = (4, 8, 8, 4), (1, 8, 8, 8, 1)
    >>> with contraction_scope("chain"):
    ...     choose_plan(modes, modes, ranks, batch=1000).is_chain
    True
    """
    if contraction not in _LITERT_SCOPES:
        check_contraction(contraction)
    previous = getattr(_SCOPE, "contraction", None)
    _SCOPE.contraction = contraction
    try:
        yield
    finally:
        _SCOPE.contraction = previous


def in_litert_scope() -> bool:
    """Whether this thread traces inside ``contraction_scope("litert")``."""
    return getattr(_SCOPE, "contraction", None) in _LITERT_SCOPES
