"""Row lookups in a TT-matrix: gathered core slices and batched products.

Row ``i`` of the TT-matrix with cores ``G_k`` of shape
``(r_{k-1}, n_k, m_k, r_k)`` is the product of the slices
``G_k[:, i_k, :, :]``, where ``i_k`` are the digits of ``i`` in the mixed
radix of the row modes ``(n_1, ..., n_d)``. `lookup_rows` computes the rows
of a batch of ids following a `LookupPlan`:

* *Tables.* A run of neighbouring cores ``a .. b-1`` may first be merged
  into one core (`keras_tt.contraction.merge_cores`) of shape
  ``(r_{a-1}, n_a ... n_{b-1}, m_a ... m_{b-1}, r_{b-1})``: a table of the
  products of the run's slices for every value of its digits, computed
  once per call from the cores and shared by all the ids. A run at the
  start of the chain is a table of row prefixes, one at the end a table of
  row suffixes. The whole table is the run of all cores.
* *Per id.* The slice of every run (a single core or a merged one) is
  gathered by the run's digit, ``(batch, r, m, s)``, and the slices are
  multiplied together id by id, as batched matrix products (a batch of
  ids, never a broadcast), in the order of a binary tree: joining a part
  ``(batch, r, w, s)`` with a part ``(batch, s, v, t)`` is one product
  ``(batch, r w, s) @ (batch, s, v t)``, whose result is the part
  ``(batch, r, w v, t)`` in C order, with no transpose.

`choose_lookup_plan` picks the runs and the tree of least `lookup_cost`
for a number of ids: tables cost work once per call, the per-id products
cost work per id, so few ids favour the plain chain of slices contracted
in the order that keeps the parts smallest, and many ids favour tables.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math

import keras

from keras_tt.contraction import anchor_to_input
from keras_tt.contraction import einsum
from keras_tt.contraction import merge_cores
from keras_tt.contraction_plans import in_litert_scope

# Ids assumed when their number is not known while tracing.
UNKNOWN_IDS = 32

# No table holds more than this many elements (16 MiB in float32).
TABLE_BUDGET = 4 * 2**20


@dataclasses.dataclass(frozen=True)
class LookupCosts:
    """The constants of `lookup_cost`, in seconds.

    Attributes:
        op: fixed cost of one op (a gather, a product, a transpose).
        mac: cost of one multiply-add of a batched per-id product.
        table_mac: cost of one multiply-add while merging cores into a
            table (products with a constant core).
        element: cost of one element gathered or rearranged.
    """

    op: float
    mac: float
    table_mac: float
    element: float


# Set by hand from LiteRT timings (XNNPACK, one thread, shared two-core
# x86-64 CPU): an op about 2 us, a batched per-id product about 20 GMAC/s,
# a product with a constant core about 25 GMAC/s, a gathered or transposed
# element about 0.5 ns. They rank the candidate plans of
# `benchmarks/embedding_speed.py`'s tables as measured.
LITERT_LOOKUP_COSTS = LookupCosts(
    op=2e-6, mac=5e-11, table_mac=4e-11, element=5e-10
)
# The same for TensorFlow graph mode, whose ops cost more to launch.
TENSORFLOW_LOOKUP_COSTS = LookupCosts(
    op=1e-5, mac=5e-11, table_mac=4e-11, element=5e-10
)


@dataclasses.dataclass(frozen=True)
class LookupPlan:
    """How `lookup_rows` computes rows of a TT-matrix.

    Attributes:
        groups: runs ``(start, stop)`` of neighbouring cores covering all
            the cores in order; a run of more than one core is merged into
            a table first.
        tree: the order of the per-id products, a binary tree over the
            run indices: an int is a run, a pair ``(left, right)`` the
            product of two neighbouring parts.
    """

    groups: tuple[tuple[int, int], ...]
    tree: object

    @property
    def name(self) -> str:
        sizes = "+".join(str(b - a) for a, b in self.groups)

        def show(node):
            if isinstance(node, int):
                return str(node)
            return f"({show(node[0])} {show(node[1])})"

        return f"runs {sizes}, tree {show(self.tree)}"


def _run_shape(row_modes, col_modes, ranks, start, stop):
    return (
        ranks[start],
        math.prod(row_modes[start:stop]),
        math.prod(col_modes[start:stop]),
        ranks[stop],
    )


def _table_macs(row_modes, col_modes, ranks, start, stop):
    """Multiply-adds of `merge_cores` over cores ``start .. stop - 1``."""
    total = 0
    rows, cols = row_modes[start], col_modes[start]
    for k in range(start + 1, stop):
        total += (
            ranks[start]
            * rows
            * cols
            * ranks[k]
            * row_modes[k]
            * col_modes[k]
            * ranks[k + 1]
        )
        rows *= row_modes[k]
        cols *= col_modes[k]
    return total


def _suffix_macs(row_modes, col_modes, ranks, start):
    """Multiply-adds of `_suffix_table` over cores ``start .. d - 1``."""
    total = 0
    rows, cols = row_modes[-1], col_modes[-1]
    for k in range(len(row_modes) - 2, start - 1, -1):
        total += (
            rows * cols * ranks[k + 1] * row_modes[k] * col_modes[k] * ranks[k]
        )
        rows *= row_modes[k]
        cols *= col_modes[k]
    return total


def _is_suffix(groups, index):
    """Whether run ``index`` is a table of row suffixes, built from the
    last core backwards (a run of several cores ending the chain, not
    starting it)."""
    start, stop = groups[index]
    return start > 0 and stop - start > 1 and index == len(groups) - 1


def _best_tree(shapes):
    """The product order of least per-id multiply-adds over run slices
    ``(r, w, s)``: the classic matrix-chain recursion, with the column
    widths carried along. Returns ``(macs, elements written, tree)``."""
    g = len(shapes)
    best = {}
    for i in range(g):
        best[i, i] = (0, 0, i)
    for length in range(2, g + 1):
        for i in range(g - length + 1):
            j = i + length - 1
            candidates = []
            for split in range(i, j):
                left, right = best[i, split], best[split + 1, j]
                r = shapes[i][0]
                w1 = math.prod(s[1] for s in shapes[i : split + 1])
                w2 = math.prod(s[1] for s in shapes[split + 1 : j + 1])
                s, t = shapes[split][2], shapes[j][2]
                macs = r * w1 * s * w2 * t
                written = r * w1 * w2 * t
                candidates.append(
                    (
                        left[0] + right[0] + macs,
                        left[1] + right[1] + written,
                        (left[2], right[2]),
                    )
                )
            best[i, j] = min(candidates, key=lambda c: (c[0], c[1]))
    return best[0, g - 1]


def _groupings(d):
    for cuts in itertools.product((False, True), repeat=d - 1):
        bounds = [0] + [k + 1 for k, cut in enumerate(cuts) if cut] + [d]
        yield tuple(zip(bounds[:-1], bounds[1:]))


def lookup_cost(row_modes, col_modes, ranks, plan, ids, costs):
    """Modelled seconds of `lookup_rows` under ``plan`` for ``ids`` ids:
    per op a fixed cost, the tables' multiply-adds, the per-id products'
    multiply-adds, and the elements gathered and written."""
    shapes = []
    seconds = 0.0
    for start, stop in plan.groups:
        shape = _run_shape(row_modes, col_modes, ranks, start, stop)
        shapes.append((shape[0], shape[2], shape[3]))
        # The digit, the gather, and for a table its merges and transpose.
        seconds += 2 * costs.op + ids * costs.element * (
            shape[0] * shape[2] * shape[3]
        )
        if stop - start > 1:
            if _is_suffix(plan.groups, len(shapes) - 1):
                macs = _suffix_macs(row_modes, col_modes, ranks, start)
                # The digit of the run, from those of its cores.
                seconds += 4 * (stop - start) * costs.op
            else:
                macs = _table_macs(row_modes, col_modes, ranks, start, stop)
            seconds += 3 * (stop - start) * costs.op
            seconds += costs.table_mac * macs
            seconds += 2 * costs.element * math.prod(shape)
    macs, written, _ = _best_tree(shapes)
    seconds += (len(shapes) - 1) * costs.op
    seconds += ids * (costs.mac * macs + costs.element * written)
    return seconds


@functools.lru_cache(maxsize=256)
def _choose(row_modes, col_modes, ranks, ids, costs, budget):
    best, best_cost = None, math.inf
    for groups in _groupings(len(row_modes)):
        if any(
            stop - start > 1
            and math.prod(_run_shape(row_modes, col_modes, ranks, start, stop))
            > budget
            for start, stop in groups
        ):
            continue
        shapes = [
            _run_shape(row_modes, col_modes, ranks, a, b) for a, b in groups
        ]
        tree = _best_tree([(s[0], s[2], s[3]) for s in shapes])[2]
        plan = LookupPlan(groups, tree)
        cost = lookup_cost(row_modes, col_modes, ranks, plan, ids, costs)
        if cost < best_cost:
            best, best_cost = plan, cost
    return best


def choose_lookup_plan(
    row_modes, col_modes, ranks, ids=None, costs=None, budget=TABLE_BUDGET
) -> LookupPlan:
    """The `LookupPlan` of least `lookup_cost` for ``ids`` ids.

    Every way of cutting the cores into runs (tables) is tried, each with
    its best product order; tables above ``budget`` elements are never
    formed. ``costs`` defaults to `LITERT_LOOKUP_COSTS` while tracing for
    LiteRT export and `TENSORFLOW_LOOKUP_COSTS` otherwise; ``ids=None``
    stands for `UNKNOWN_IDS`.

    Example:

    >>> modes, ranks = (7, 6, 3, 3, 3, 3, 3, 3), (1,) + (32,) * 7 + (1,)
    >>> cols = (4, 3, 2, 2, 2, 2, 2, 2)
    >>> choose_lookup_plan(modes, cols, ranks, ids=1).groups == tuple(
    ...     (k, k + 1) for k in range(8))
    True
    """
    if costs is None:
        costs = (
            LITERT_LOOKUP_COSTS
            if in_litert_scope()
            else TENSORFLOW_LOOKUP_COSTS
        )
    return _choose(
        tuple(int(n) for n in row_modes),
        tuple(int(m) for m in col_modes),
        tuple(int(r) for r in ranks),
        UNKNOWN_IDS if ids is None else int(ids),
        costs,
        int(budget),
    )


def gather_rows(table, indices):
    """``table[indices]`` for non-negative indices: ``tf.gather`` on the
    TensorFlow backend, `keras.ops.take` elsewhere.

    `keras.ops.take` on TensorFlow first wraps negative indices (three more
    ops per gather in a LiteRT file); digits are never negative. An index
    past the end fails as `keras.ops.take`'s does.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.gather(table, indices)
    return keras.ops.take(table, indices, axis=0)


def _suffix_table(cores):
    """The products of the slices of ``cores`` (a run ending the chain)
    for every value of their digits, as ``(Q, V, r)``: ``Q`` the suffixes,
    ``V`` the columns of the run and ``r`` the run's first rank.

    Built from the last core backwards, each step one product of the table
    with a constant core and one transpose. Suffix ``q`` has the digits of
    the run in reversed mixed radix: the first core's digit varies fastest.
    """
    ops = keras.ops
    _, n, m, _ = (int(v) for v in cores[-1].shape)
    table = ops.transpose(ops.reshape(cores[-1], (-1, n, m)), (1, 2, 0))
    rows, cols = n, m
    for core in reversed(cores[:-1]):
        s, n, m, r = (int(v) for v in core.shape)
        weights = ops.reshape(ops.transpose(core, (3, 1, 2, 0)), (r, -1))
        table = einsum(
            "pr,rq->pq", ops.reshape(table, (rows * cols, r)), weights
        )
        table = ops.transpose(
            ops.reshape(table, (rows, cols, n * m, s)), (0, 2, 1, 3)
        )
        rows, cols = rows * n, cols * m
    return ops.reshape(table, (rows, cols, -1))


def lookup_rows(ids, digits, cores, plan):
    """Rows of the TT-matrix of ``cores`` for flat ids, ``(batch, M)``.

    Args:
        ids: 1-D integer tensor of the ids (only anchors the tables to the
            input while tracing for LiteRT).
        digits: callable ``(start, stop, reverse) -> tensor``, the digit
            of each id in the merged row mode of cores ``start .. stop - 1``
            (C order; with ``reverse``, the first core's digit varying
            fastest).
        cores: the cores, core ``k`` of shape ``(r_{k-1}, n_k, m_k, r_k)``.
        plan: a `LookupPlan`.

    Returns:
        Tensor of shape ``(batch, m_1 * ... * m_d)``.
    """
    ops = keras.ops
    litert = in_litert_scope()
    parts = []
    for index, (start, stop) in enumerate(plan.groups):
        run = list(cores[start:stop])
        if litert and len(run) > 1:
            # Computed from the input, the table is not folded into a
            # constant of the file; the later merges are products with
            # constant cores.
            end = -1 if _is_suffix(plan.groups, index) else 0
            run[end] = anchor_to_input(run[end], ops.reshape(ids, (-1, 1)))
        if _is_suffix(plan.groups, index):
            table = _suffix_table(run)
            rows, m, r = (int(v) for v in table.shape)
            table = ops.reshape(table, (rows, m * r))
            piece = gather_rows(table, digits(start, stop, True))
            parts.append((piece, (r, m, 1), True))
            continue
        core = merge_cores(run) if len(run) > 1 else run[0]
        r, n, m, s = (int(v) for v in core.shape)
        if r == 1:
            table = ops.reshape(core, (n, m * s))
        else:
            table = ops.reshape(
                ops.transpose(core, (1, 0, 2, 3)), (n, r * m * s)
            )
        piece = gather_rows(table, digits(start, stop, False))
        parts.append((piece, (r, m, s), False))

    def evaluate(node):
        if isinstance(node, int):
            return parts[node]
        (left, (r, w1, s), _), (right, (_, w2, t), flipped) = map(
            evaluate, node
        )
        left = ops.reshape(left, (-1, r * w1, s))
        if flipped:
            # A suffix slice is stored transposed, ``(w2, s)``.
            right = ops.reshape(right, (-1, w2, s))
            return einsum("bij,bkj->bik", left, right), (r, w1 * w2, t), False
        right = ops.reshape(right, (-1, s, w2 * t))
        return einsum("bij,bjk->bik", left, right), (r, w1 * w2, t), False

    rows, (r, width, t), flipped = evaluate(plan.tree)
    return ops.reshape(rows, (-1, r * width * t))
