"""Multiplying a batch of vectors by a TT-matrix, one core at a time.

``tt_matmul(x, cores, in_modes, out_modes)`` computes ``x @ W`` for the
matrix ``W`` that the cores stand for (see `keras_tt.full_matrix`) without
ever forming ``W``. The work is a chain of einsum contractions, one per
core, whose equations are generated from the number of cores: ``tf.einsum``
on the TensorFlow backend, `keras.ops.einsum` on JAX and PyTorch.

The chain is written for deployment as much as for speed:

* every tensor in it is at most 4-D: the modes not involved in a step are
  grouped into one axis (TFLite's TRANSPOSE stops at 6-D and its XNNPACK
  backend rejects FULLY_CONNECTED inputs of 7-D);
* every summed index appears in both operands of its einsum: the size-1
  boundary ranks are squeezed out of the first and last cores, so the
  converter lowers each einsum to RESHAPE / TRANSPOSE / FULLY_CONNECTED
  builtins and never needs a Flex op;
* between two einsums there is only a reshape, and each einsum is a single
  matrix product followed by one transpose of its result: the state keeps
  the contracted axes together at one end, so the operand itself never
  needs rearranging.

Both directions are implemented: left to right (first core first) and right
to left. `contraction_plan` picks the one with fewer multiply-adds.

Plans (`keras_tt.contraction_plans`). A `TTPlan` may first merge runs of
neighbouring cores into larger cores (batch-independent work on the
weights only), then run the chain over the merged cores; merging
everything is the dense plan: rebuild the kernel, then one matrix product.
`tt_matmul` runs the plan it is given, or inside
``contraction_scope("litert")`` the one `choose_plan` picks for LiteRT.

LiteRT. Export traces models inside ``contraction_scope("litert")``: every
merge of cores is made to depend on the input (`anchor_to_input`), so that
the converter computes merged cores and rebuilt kernels in the file instead
of storing them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import keras

from keras_tt.contraction_plans import LEFT_TO_RIGHT
from keras_tt.contraction_plans import RIGHT_TO_LEFT
from keras_tt.contraction_plans import chain_macs
from keras_tt.contraction_plans import check_plan
from keras_tt.contraction_plans import choose_plan
from keras_tt.contraction_plans import in_litert_scope
from keras_tt.contraction_plans import rebuild_split


@dataclasses.dataclass(frozen=True)
class ContractionStep:
    """One einsum of the chain.

    Attributes:
        core_index: which core this step contracts.
        state_shape: shape the running tensor is reshaped to before the
            einsum; ``-1`` stands for the axis that carries the batch.
        equation: the ``tf.einsum`` equation, state first, core second.
        squeeze_core_axes: axes of size 1 removed from the core (the
            boundary ranks) before the einsum.
    """

    core_index: int
    state_shape: tuple[int, ...]
    equation: str
    squeeze_core_axes: tuple[int, ...]


def _left_to_right_steps(in_modes, out_modes, ranks):
    """Steps with state ``(r_k, n_k, C, A)``.

    ``C`` groups the input modes not yet contracted and ``A`` the batch with
    the outputs already produced (C order). The contracted axes lead the
    state, so each einsum is one matrix product plus one transpose of its
    output, which rotates the new output mode to the end.
    """
    d = len(in_modes)
    steps = []
    for k in range(d):
        first, last = k == 0, k == d - 1
        rest_in = math.prod(in_modes[k + 1 :])
        if first and last:
            shape, equation = (-1, in_modes[k]), "an,nm->am"
        elif first:
            shape, equation = (-1, in_modes[k], rest_in), "anc,nms->scam"
        elif last:
            shape, equation = (ranks[k], in_modes[k], -1), "rna,rnm->am"
        else:
            shape = (ranks[k], in_modes[k], rest_in, -1)
            equation = "rnca,rnms->scam"
        steps.append(
            ContractionStep(k, shape, equation, _squeezed(first, last))
        )
    return steps


def _right_to_left_steps(in_modes, out_modes, ranks):
    """Steps with state ``(E, A, n_k, r_{k+1})``.

    ``E`` groups the outputs already produced and ``A`` the batch with the
    input modes not yet contracted (C order). The contracted axes end the
    state, so each einsum is one matrix product plus one transpose of its
    output, which rotates the new output mode to the front.
    """
    d = len(in_modes)
    steps = []
    for k in reversed(range(d)):
        first, last = k == 0, k == d - 1
        done_out = math.prod(out_modes[k + 1 :])
        if first and last:
            shape, equation = (-1, in_modes[k]), "an,nm->am"
        elif last:
            shape, equation = (-1, in_modes[k]), "an,rnm->mar"
        elif first:
            shape = (done_out, -1, in_modes[k], ranks[k + 1])
            equation = "eans,nms->ame"
        else:
            shape = (done_out, -1, in_modes[k], ranks[k + 1])
            equation = "eans,rnms->mear"
        steps.append(
            ContractionStep(k, shape, equation, _squeezed(first, last))
        )
    return steps


def _squeezed(first: bool, last: bool) -> tuple[int, ...]:
    """Core axes of size 1 to drop: ``r_0`` on the first, ``r_d`` on the
    last."""
    return (0,) * first + (3,) * last


def contraction_plan(
    in_modes: Sequence[int],
    out_modes: Sequence[int],
    ranks: Sequence[int],
    direction: str | None = None,
) -> list[ContractionStep]:
    """The einsum chain for ``x @ W``, ``W`` a TT-matrix with these shapes.

    Args:
        in_modes: ``(n_1, ..., n_d)``, the factors of the input width.
        out_modes: ``(m_1, ..., m_d)``, the factors of the output width.
        ranks: ``(1, r_1, ..., r_{d-1}, 1)``.
        direction: ``"left_to_right"``, ``"right_to_left"`` or ``None`` to
            pick the direction with fewer multiply-adds.

    Returns:
        A list of `ContractionStep`, in the order they run.

    Example:

    >>> [s.equation for s in contraction_plan((4, 8), (2, 5), (1, 3, 1),
    ...                                       direction="left_to_right")]
    ['anc,nms->scam', 'rna,rnm->am']
    """
    if direction is None:
        direction = min(
            (LEFT_TO_RIGHT, RIGHT_TO_LEFT),
            key=lambda dr: chain_macs(in_modes, out_modes, ranks, dr),
        )
    if direction == LEFT_TO_RIGHT:
        return _left_to_right_steps(in_modes, out_modes, ranks)
    if direction == RIGHT_TO_LEFT:
        return _right_to_left_steps(in_modes, out_modes, ranks)
    raise ValueError(
        "Received an invalid value for `direction`, expected "
        f"'{LEFT_TO_RIGHT}', '{RIGHT_TO_LEFT}' or None. "
        f"Received: direction={direction!r}"
    )


def contraction_flops(in_modes, out_modes, ranks, direction=None) -> int:
    """Multiply-adds per input row of the chain `contraction_plan` returns."""
    if direction is None:
        return min(
            chain_macs(in_modes, out_modes, ranks, dr)
            for dr in (LEFT_TO_RIGHT, RIGHT_TO_LEFT)
        )
    return chain_macs(in_modes, out_modes, ranks, direction)


def einsum(equation: str, *operands):
    """``tf.einsum`` on the TensorFlow backend, `keras.ops.einsum` elsewhere.

    On TensorFlow the chain must be plain ``tf.einsum`` ops, which the
    TFLite converter lowers to builtin ops; `keras.ops.einsum` would route
    some equations through its own matmul rewrites.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.einsum(equation, *operands)
    return keras.ops.einsum(equation, *operands)


def tt_matmul(
    x,
    cores,
    in_modes,
    out_modes,
    direction=None,
    after_step=None,
    plan=None,
):
    """``x @ W`` for a 2-D ``x`` of shape ``(batch, prod(in_modes))``.

    Runs on every Keras backend: reshapes and squeezes through `keras.ops`,
    the contractions through `einsum` (``tf.einsum`` on TensorFlow).

    Args:
        x: tensor of shape ``(batch, n_1 * ... * n_d)``.
        cores: ``d`` tensors, core ``k`` of shape ``(r_{k-1}, n_k, m_k, r_k)``.
        in_modes: ``(n_1, ..., n_d)``.
        out_modes: ``(m_1, ..., m_d)``.
        direction: see `contraction_plan`; ignored when ``plan`` is given.
        after_step: optional callable ``(state, step) -> state`` applied to
            the result of every einsum of the chain, e.g. to fake-quantize
            the intermediate results for quantization-aware training.
        plan: optional `TTPlan` (see `choose_plan`): the runs of cores to
            merge first and the direction of the chain over the merged
            cores. ``None`` runs the chain over the cores as they are,
            except inside ``contraction_scope("litert")`` (LiteRT export),
            where ``None`` (without ``after_step``) takes the plan
            `choose_plan` picks for the static batch of ``x``.

    Returns:
        Tensor of shape ``(batch, m_1 * ... * m_d)``.

    Example:

    >>> import numpy as np
    >>> from keras_tt.tt_matrix import full_matrix
    >>> rng = np.random.default_rng(0)
    >>> cores = [rng.normal(size=(1, 4, 2, 3)), rng.normal(size=(3, 8, 5, 1))]
    >>> x = rng.normal(size=(6, 32))
    >>> y = tt_matmul(x, cores, (4, 8), (2, 5))
    >>> bool(np.allclose(keras.ops.convert_to_numpy(y), x @ full_matrix(cores)))
    True
    >>> from keras_tt.contraction_plans import TTPlan
    >>> y = tt_matmul(x, cores, (4, 8), (2, 5), plan=TTPlan(((0, 2),)))
    >>> bool(np.allclose(keras.ops.convert_to_numpy(y), x @ full_matrix(cores)))
    True
    """
    ops = keras.ops
    groups = tuple((k, k + 1) for k in range(len(cores)))
    ranks = (1,) + tuple(int(c.shape[-1]) for c in cores)
    litert = in_litert_scope()
    if plan is None and litert and after_step is None:
        rows = x.shape[0] if len(x.shape) == 2 else None
        plan = choose_plan(
            in_modes,
            out_modes,
            ranks,
            batch=rows,
            itemsize=_itemsize(cores[0]),
        )
    if plan is not None:
        plan = check_plan(plan, len(cores))
        direction, groups = plan.direction, plan.groups
        in_modes = plan.merged_modes(in_modes)
        out_modes = plan.merged_modes(out_modes)
        ranks = (1,) + tuple(ranks[b] for _, b in groups)
    if plan is not None and plan.is_dense:
        return rebuilt_matmul(x, cores)
    state = x
    computed_last = False
    for step in contraction_plan(in_modes, out_modes, ranks, direction):
        start, stop = groups[step.core_index]
        computed_last = litert and stop - start > 1
        if computed_last:
            run = [anchor_to_input(core, x) for core in cores[start:stop]]
            # The merge's last reshape also drops the boundary ranks.
            core = merge_cores(run, step.squeeze_core_axes)
        elif stop - start > 1:
            core = merge_cores(cores[start:stop], step.squeeze_core_axes)
        elif step.squeeze_core_axes:
            core = ops.squeeze(cores[start], axis=step.squeeze_core_axes)
        else:
            core = cores[start]
        if not _has_shape(state, step.state_shape):
            state = ops.reshape(state, step.state_shape)
        state = einsum(step.equation, state, core)
        if after_step is not None:
            state = after_step(state, step)
    if not _has_shape(state, (-1, math.prod(out_modes))):
        state = ops.reshape(state, (-1, math.prod(out_modes)))
    if computed_last:
        # A last product with a computed core is a BATCH_MATMUL, which has
        # no fused activation; the converter folds a following activation
        # into it and drops it (a ReLU after the layer vanished from the
        # file). An exact zero from the input keeps the product last.
        state = anchor_to_input(state, x)
    return state


def anchor_to_input(core, x):
    """``core`` plus an exact zero computed from ``x``.

    ``x > x`` is false for every value, NaN included, so the result equals
    ``core``; but it now depends on the model's input, so the TFLite
    converter cannot constant-fold what is computed from it (a merged core
    or the rebuilt kernel) into a large constant of the file. The cost is a
    one-element comparison, a cast and an add over the core.

    Example:

    >>> import numpy as np
    >>> core = np.ones((1, 2, 2, 1), "float32")
    >>> x = np.array([[np.nan, 1.0]], "float32")
    >>> keras.ops.convert_to_numpy(anchor_to_input(core, x)).ravel().tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    ops = keras.ops
    # A scalar: the result keeps the core's static shape whatever is known
    # of the batch.
    first = ops.reshape(x[:1, :1], ())
    zero = ops.cast(ops.greater(first, first), core.dtype)
    return ops.add(core, zero)


def _has_shape(tensor, shape):
    """Whether a ``(-1, width)`` reshape would leave ``tensor`` as it is."""
    return (
        len(shape) == 2
        and shape[0] == -1
        and len(tensor.shape) == 2
        and tensor.shape[1] == shape[1]
    )


def _itemsize(tensor) -> int:
    dtype = keras.backend.standardize_dtype(tensor.dtype)
    return {"float16": 2, "bfloat16": 2, "float64": 8}.get(dtype, 4)


def merge_cores(cores, drop_axes=()):
    """One core ``(r_0, n_1 ... n_k, m_1 ... m_k, r_k)`` for a run of cores.

    Merged left to right, one einsum per core with every tensor at most
    4-D; merging all the cores of a TT-matrix gives its full matrix as a
    ``(1, N, M, 1)`` tensor. ``drop_axes`` lists axes of size 1 (the
    boundary ranks) to leave out of the result.

    Example:

    >>> import numpy as np
    >>> from keras_tt.tt_matrix import full_matrix
    >>> rng = np.random.default_rng(0)
    >>> cores = [rng.normal(size=(1, 4, 2, 3)), rng.normal(size=(3, 8, 5, 1))]
    >>> merged = keras.ops.convert_to_numpy(merge_cores(cores))
    >>> merged.shape
    (1, 32, 10, 1)
    >>> bool(np.allclose(merged[0, :, :, 0], full_matrix(cores)))
    True
    """
    ops = keras.ops
    merged = cores[0]
    shape = tuple(int(v) for v in merged.shape)
    two_d = in_litert_scope()
    for core in cores[1:]:
        r_first, n_done, m_done, rank = shape
        _, n, m, s = (int(v) for v in core.shape)
        if two_d:
            # One 2-D product and one 4-D transpose: LiteRT runs a
            # broadcast 3-D BATCH_MATMUL far slower than FULLY_CONNECTED.
            merged = einsum(
                "pr,rq->pq",
                ops.reshape(merged, (r_first * n_done * m_done, rank)),
                ops.reshape(core, (rank, n * m * s)),
            )
            merged = ops.transpose(
                ops.reshape(merged, (r_first * n_done, m_done, n, m * s)),
                (0, 2, 1, 3),
            )
        else:
            merged = einsum(
                "apr,rnq->anpq",
                ops.reshape(merged, (r_first * n_done, m_done, rank)),
                ops.reshape(core, (rank, n, m * s)),
            )
        shape = (r_first, n_done * n, m_done * m, s)
    if any(shape[axis] != 1 for axis in drop_axes):
        raise ValueError(
            "Received an invalid value for `drop_axes`, expected axes of "
            f"size 1 of the merged shape {shape}. Received: "
            f"drop_axes={drop_axes}"
        )
    kept = tuple(v for axis, v in enumerate(shape) if axis not in drop_axes)
    return ops.reshape(merged, kept)


def tt_kernel(cores):
    """The ``(N, M)`` matrix the cores stand for, as a backend tensor."""
    return merge_cores(cores, drop_axes=(0, 3))


def rebuilt_matmul(x, cores, keep_product=True):
    """``x @ W`` by rebuilding ``W`` from the cores, then one product.

    Inside ``contraction_scope("litert")`` the cores are first made to
    depend on ``x`` (`anchor_to_input`), so that the converter computes
    the kernel in the file instead of storing it; the kernel is joined
    from two merged halves of the cores (`rebuild_split`), and the product
    runs as BATCH_MATMUL (see the comment below).

    Args:
        x: tensor of shape ``(rows, N)``.
        cores: the TT-cores of the ``(N, M)`` kernel.
        keep_product: in LiteRT export, add the exact zero after the
            product that keeps it a BATCH_MATMUL. A caller that reshapes
            the result back to more axes passes ``False`` and adds the
            zero after its reshape instead: between the two reshapes the
            converter would still make it a FULLY_CONNECTED.

    Example:

    >>> import numpy as np
    >>> from keras_tt.tt_matrix import full_matrix
    >>> rng = np.random.default_rng(0)
    >>> cores = [rng.normal(size=(1, 4, 2, 3)), rng.normal(size=(3, 8, 5, 1))]
    >>> x = rng.normal(size=(6, 32))
    >>> y = keras.ops.convert_to_numpy(rebuilt_matmul(x, cores))
    >>> bool(np.allclose(y, x @ full_matrix(cores)))
    True
    """
    if not in_litert_scope():
        return einsum("an,nm->am", x, tt_kernel(cores))
    ops = keras.ops
    cores = [anchor_to_input(core, x) for core in cores]
    split = rebuild_split(
        [int(c.shape[1]) for c in cores],
        [int(c.shape[2]) for c in cores],
        (1,) + tuple(int(c.shape[-1]) for c in cores),
    )
    halves = [merge_cores(cores[:split]), merge_cores(cores[split:])]
    kernel = tt_kernel(halves)
    # A product with a computed kernel runs as BATCH_MATMUL, which XNNPACK
    # takes. Followed by a constant bias, the converter would fuse both
    # into a FULLY_CONNECTED with computed weights, which XNNPACK does not
    # take (several times slower); an exact zero from the input between
    # them keeps the BATCH_MATMUL.
    product = ops.matmul(x, kernel)
    return anchor_to_input(product, x) if keep_product else product
