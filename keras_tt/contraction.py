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
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import keras

LEFT_TO_RIGHT = "left_to_right"
RIGHT_TO_LEFT = "right_to_left"


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


def _flops(in_modes, out_modes, ranks, direction) -> int:
    """Multiply-adds per input row of one direction of the chain."""
    d = len(in_modes)
    total = 0
    for k in range(d):
        if direction == LEFT_TO_RIGHT:
            rows = math.prod(out_modes[:k]) * math.prod(in_modes[k:])
            cols = out_modes[k]
        else:
            rows = math.prod(in_modes[: k + 1]) * math.prod(out_modes[k:])
            cols = 1
        total += rows * cols * ranks[k] * ranks[k + 1]
    return total


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
            key=lambda dr: _flops(in_modes, out_modes, ranks, dr),
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
            _flops(in_modes, out_modes, ranks, dr)
            for dr in (LEFT_TO_RIGHT, RIGHT_TO_LEFT)
        )
    return _flops(in_modes, out_modes, ranks, direction)


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


def tt_matmul(x, cores, in_modes, out_modes, direction=None, after_step=None):
    """``x @ W`` for a 2-D ``x`` of shape ``(batch, prod(in_modes))``.

    Runs on every Keras backend: reshapes and squeezes through `keras.ops`,
    the contractions through `einsum` (``tf.einsum`` on TensorFlow).

    Args:
        x: tensor of shape ``(batch, n_1 * ... * n_d)``.
        cores: ``d`` tensors, core ``k`` of shape ``(r_{k-1}, n_k, m_k, r_k)``.
        in_modes: ``(n_1, ..., n_d)``.
        out_modes: ``(m_1, ..., m_d)``.
        direction: see `contraction_plan`.
        after_step: optional callable ``(state, step) -> state`` applied to
            the result of every einsum, e.g. to fake-quantize the
            intermediate results for quantization-aware training.

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
    """
    ops = keras.ops
    ranks = (1,) + tuple(int(c.shape[-1]) for c in cores)
    state = x
    for step in contraction_plan(in_modes, out_modes, ranks, direction):
        core = cores[step.core_index]
        if step.squeeze_core_axes:
            core = ops.squeeze(core, axis=step.squeeze_core_axes)
        state = ops.reshape(state, step.state_shape)
        state = einsum(step.equation, state, core)
        if after_step is not None:
            state = after_step(state, step)
    return ops.reshape(state, (-1, math.prod(out_modes)))
