"""The einsum chain and the NumPy reconstruction, against naive references."""

import numpy as np
import pytest
import tensorflow as tf
from tt_reference import naive_full_matrix
from tt_reference import random_cores

from keras_tt import full_matrix
from keras_tt.contraction import contraction_flops
from keras_tt.contraction import contraction_plan
from keras_tt.contraction import tt_matmul
from keras_tt.contraction_plans import LEFT_TO_RIGHT
from keras_tt.contraction_plans import RIGHT_TO_LEFT

SHAPES = [
    # (in_modes, out_modes, ranks)
    ((5,), (3,), (1, 1)),
    ((4, 3), (2, 5), (1, 3, 1)),
    ((2, 3, 2), (3, 1, 2), (1, 2, 4, 1)),
    ((2, 2, 3, 2), (1, 3, 2, 2), (1, 2, 3, 2, 1)),
    ((2, 2, 2, 2, 2), (2, 1, 2, 1, 2), (1, 2, 3, 3, 2, 1)),
    ((2, 1, 2, 3, 2, 2), (2, 2, 1, 2, 1, 2), (1, 2, 2, 3, 2, 2, 1)),
]


@pytest.mark.parametrize("in_modes, out_modes, ranks", SHAPES)
def test_full_matrix_matches_entrywise_products(
    rng, in_modes, out_modes, ranks
):
    cores = random_cores(rng, in_modes, out_modes, ranks)
    np.testing.assert_allclose(
        full_matrix(cores), naive_full_matrix(cores), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("direction", [LEFT_TO_RIGHT, RIGHT_TO_LEFT, None])
@pytest.mark.parametrize("in_modes, out_modes, ranks", SHAPES)
def test_tt_matmul_equals_x_times_full_matrix(
    rng, in_modes, out_modes, ranks, direction
):
    cores = random_cores(rng, in_modes, out_modes, ranks)
    x = rng.standard_normal((3, int(np.prod(in_modes))))
    expected = x @ naive_full_matrix(cores)
    got = tt_matmul(
        tf.constant(x),
        [tf.constant(c) for c in cores],
        in_modes,
        out_modes,
        direction,
    )
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("direction", [LEFT_TO_RIGHT, RIGHT_TO_LEFT])
@pytest.mark.parametrize("in_modes, out_modes, ranks", SHAPES)
def test_chain_stays_within_tflite_limits(
    in_modes, out_modes, ranks, direction
):
    """At most 4-D tensors; every summed index is in both operands."""
    for step in contraction_plan(in_modes, out_modes, ranks, direction):
        lhs, out = step.equation.split("->")
        state, core = lhs.split(",")
        assert len(step.state_shape) == len(state) <= 4
        assert len(core) + len(step.squeeze_core_axes) == 4
        assert len(out) <= 4
        for letter in set(state + core) - set(out):
            assert letter in state and letter in core, step.equation
        for term in (state, core, out):
            assert len(set(term)) == len(term), step.equation


def test_generated_equations_are_pinned():
    plan = contraction_plan((2, 7, 8, 8, 7, 4), (4,) * 6, (1, 4, 4, 4, 4, 4, 1))
    assert [s.equation for s in plan] == [
        "an,rnm->mar",
        "eans,rnms->mear",
        "eans,rnms->mear",
        "eans,rnms->mear",
        "eans,rnms->mear",
        "eans,nms->ame",
    ]
    assert [s.core_index for s in plan] == [5, 4, 3, 2, 1, 0]
    assert plan[1].state_shape == (4, -1, 7, 4)
    assert plan[5].state_shape == (1024, -1, 2, 4)
    left = contraction_plan(
        (4, 8, 8, 4), (4, 8, 8, 4), (1, 8, 8, 8, 1), direction=LEFT_TO_RIGHT
    )
    assert [s.equation for s in left] == [
        "anc,nms->scam",
        "rnca,rnms->scam",
        "rnca,rnms->scam",
        "rna,rnm->am",
    ]
    assert left[1].state_shape == (8, 8, 32, -1)
    single = contraction_plan((6,), (5,), (1, 1))
    assert [s.equation for s in single] == ["an,nm->am"]
    assert single[0].squeeze_core_axes == (0, 3)


def test_plan_picks_the_cheaper_direction():
    in_modes, out_modes, ranks = (
        (2, 7, 8, 8, 7, 4),
        (4,) * 6,
        (1,) + (4,) * 5 + (1,),
    )
    l2r = contraction_flops(in_modes, out_modes, ranks, LEFT_TO_RIGHT)
    r2l = contraction_flops(in_modes, out_modes, ranks, RIGHT_TO_LEFT)
    assert r2l < l2r
    assert contraction_plan(in_modes, out_modes, ranks)[0].core_index == 5
    # Mirrored problem: the other direction wins.
    rev = tuple(reversed(in_modes)), tuple(reversed(out_modes)), ranks
    assert contraction_plan(*rev)[0].core_index == 0


def test_flop_count_matches_the_einsums(rng):
    """The cost model counts exactly the multiply-adds of the einsums run."""
    in_modes, out_modes, ranks = (2, 3, 4), (3, 2, 2), (1, 2, 3, 1)
    cores = random_cores(rng, in_modes, out_modes, ranks)
    for direction in (LEFT_TO_RIGHT, RIGHT_TO_LEFT):
        state, total = rng.standard_normal((1, 24)), 0
        for step in contraction_plan(in_modes, out_modes, ranks, direction):
            core = np.squeeze(
                cores[step.core_index], axis=step.squeeze_core_axes
            )
            state = state.reshape(step.state_shape)
            operands = step.equation.split("->")[0].split(",")
            sizes = dict(zip(operands[0], state.shape))
            sizes.update(zip(operands[1], core.shape))
            total += int(np.prod(list(sizes.values())))
            state = np.einsum(step.equation, state, core)
        assert total == contraction_flops(in_modes, out_modes, ranks, direction)


def test_invalid_direction_is_rejected():
    with pytest.raises(ValueError, match="Received: direction='up'"):
        contraction_plan((2, 2), (2, 2), (1, 2, 1), direction="up")


def test_tt_matmul_runs_under_xla(rng):
    in_modes, out_modes, ranks = (4, 8, 8, 4), (4, 8, 8, 4), (1, 8, 8, 8, 1)
    cores = [
        tf.constant(c)
        for c in random_cores(rng, in_modes, out_modes, ranks, np.float32)
    ]
    x = tf.constant(rng.standard_normal((5, 1024)).astype(np.float32))
    fn = tf.function(
        lambda v: tt_matmul(v, cores, in_modes, out_modes), jit_compile=True
    )
    expected = x.numpy() @ full_matrix([c.numpy() for c in cores])
    np.testing.assert_allclose(fn(x).numpy(), expected, rtol=1e-4, atol=1e-3)
