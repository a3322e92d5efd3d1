"""Every contraction plan of `TTDense` against ``x @ W + b``.

``W`` is rebuilt entry by entry from the cores (`tt_reference`), so the
reference shares no code with the plans. The multibackend tests import no
TensorFlow and also run on JAX and PyTorch; the TensorFlow ones cover
`tf.function`, XLA, the graph's op count and gradients.
"""

import math

import keras
import numpy as np
import pytest
from tt_reference import naive_full_matrix
from tt_reference import random_cores

import keras_tt
from keras_tt import contraction as C
from keras_tt import contraction_plans as P

TF = keras.backend.backend() == "tensorflow"
needs_tf = pytest.mark.skipif(not TF, reason="TensorFlow graphs and XLA")

# (in_modes, out_modes, ranks): small enough for the entry-wise reference.
SHAPES = [
    ((2, 3, 2), (3, 2, 2), (1, 2, 3, 1)),
    ((2, 2, 3, 2), (1, 3, 2, 2), (1, 2, 3, 2, 1)),
]


def _all_plans(d):
    return [
        P.TTPlan(groups, direction)
        for groups in P._groupings(d)
        for direction in (P.LEFT_TO_RIGHT, P.RIGHT_TO_LEFT)
    ]


def _tolerance(dtype):
    """float32 tolerances for float32 results (JAX computes float64 inputs
    in float32 unless x64 is enabled)."""
    dtype = keras.backend.standardize_dtype(dtype)
    return dict(rtol=1e-4, atol=1e-4) if dtype == "float32" else {}


@pytest.mark.multibackend
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("in_modes, out_modes, ranks", SHAPES)
def test_every_plan_equals_x_times_full_matrix(
    in_modes, out_modes, ranks, dtype
):
    rng = np.random.default_rng(1)
    cores = random_cores(rng, in_modes, out_modes, ranks, dtype)
    x = rng.standard_normal((5, math.prod(in_modes))).astype(dtype)
    expected = x.astype("float64") @ naive_full_matrix(cores)
    plans = _all_plans(len(in_modes))
    assert len(plans) == 2 ** len(in_modes)
    for plan in plans:
        got = C.tt_matmul(
            keras.ops.convert_to_tensor(x),
            [keras.ops.convert_to_tensor(c) for c in cores],
            in_modes,
            out_modes,
            plan=plan,
        )
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(got),
            expected,
            err_msg=plan.name,
            **_tolerance(got.dtype),
        )


def _layer(contraction, dtype="float32", input_dim=24, units=12, **kwargs):
    kwargs.setdefault("in_modes", (2, 3, 4) if input_dim == 24 else None)
    kwargs.setdefault("out_modes", (3, 2, 2) if input_dim == 24 else None)
    layer = keras_tt.TTDense(
        units,
        tt_rank=3,
        contraction=contraction,
        dtype=dtype,
        bias_initializer="random_normal",
        **kwargs,
    )
    layer.build((None, input_dim))
    return layer


def _reference(layer, x):
    cores = [keras.ops.convert_to_numpy(c) for c in layer.cores]
    full = naive_full_matrix(cores)[: layer.input_dim, : layer.units]
    bias = keras.ops.convert_to_numpy(layer.bias)
    return x.astype("float64") @ full + bias


@pytest.mark.multibackend
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("contraction", ["auto", "chain", "dense"])
@pytest.mark.parametrize("input_dim, units", [(24, 12), (23, 11)])
def test_layer_contractions_match_reference(
    contraction, dtype, input_dim, units
):
    """Padded widths too: 23 -> 11 pads to 24 -> 12."""
    layer = _layer(contraction, dtype, input_dim, units)
    assert (layer.padded_input_dim, layer.padded_units) == (24, 12)
    rng = np.random.default_rng(2)
    for shape in [(1, input_dim), (7, input_dim), (2, 3, input_dim)]:
        x = rng.standard_normal(shape).astype(dtype)
        y = layer(x)
        got = keras.ops.convert_to_numpy(y)
        assert got.shape == shape[:-1] + (units,)
        np.testing.assert_allclose(
            got, _reference(layer, x), **_tolerance(y.dtype)
        )


@pytest.mark.multibackend
def test_dense_plan_rebuilds_the_kernel_and_chain_does_not():
    layer = _layer("dense")
    assert layer.contraction_plan(5).is_dense
    assert _layer("chain").contraction_plan(10**6).is_chain


@pytest.mark.multibackend
def test_contraction_is_serialized():
    layer = _layer("dense")
    config = layer.get_config()
    assert config["contraction"] == "dense"
    clone = keras_tt.TTDense.from_config(config)
    assert clone.contraction == "dense"
    assert keras_tt.TTDense(4, tt_rank=2).get_config()["contraction"] == "auto"


@pytest.mark.multibackend
def test_invalid_contraction_is_rejected():
    with pytest.raises(
        ValueError,
        match=r"Received an invalid value for `contraction`.*"
        r"Received: contraction='fast'",
    ):
        keras_tt.TTDense(4, tt_rank=2, contraction="fast")


@pytest.mark.multibackend
def test_dense_over_the_memory_budget_is_refused_and_auto_avoids_it():
    vgg = ((2, 7, 8, 8, 7, 4), (4,) * 6, (1,) + (4,) * 5 + (1,))
    with pytest.raises(ValueError, match="memory budget"):
        P.choose_plan(*vgg, batch=1000, contraction="dense")
    limit = P.DEFAULT_MEMORY_BUDGET // 4
    for batch in (1, 100, 10**6, None):
        plan = P.choose_plan(*vgg, batch=batch)
        assert not plan.is_dense
        assert P.merged_core_elements(*vgg, plan) <= limit
    # A tighter budget rules out the merges that fit the default one.
    plan = P.choose_plan(*vgg, batch=100, memory_budget=4 * 64)
    assert P.merged_core_elements(*vgg, plan) <= 64


@pytest.mark.multibackend
def test_contraction_scope_forces_the_plan():
    modes, ranks = (4, 8, 8, 4), (1, 8, 8, 8, 1)
    assert not P.choose_plan(modes, modes, ranks, batch=100).is_chain
    with P.contraction_scope("chain"):
        assert P.choose_plan(modes, modes, ranks, batch=100).is_chain
        layer = _layer("dense")
        assert layer.contraction_plan(100).is_chain
    assert layer.contraction_plan(100).is_dense
    with pytest.raises(ValueError, match="contraction='up'"):
        with P.contraction_scope("up"):
            pass


@pytest.mark.multibackend
def test_auto_picks_the_cheapest_candidate_of_the_cost_model():
    """Brute force over every grouping and direction, written out here."""
    cases = [
        ((4, 8, 8, 4), (4, 8, 8, 4), (1, 8, 8, 8, 1)),
        ((2, 7, 8, 8, 7, 4), (4,) * 6, (1,) + (4,) * 5 + (1,)),
        ((32, 32), (32, 32), (1, 32, 1)),
    ]
    for in_modes, out_modes, ranks in cases:
        d = len(in_modes)
        for batch in (1, 7, 100, 5000):
            costs = {}
            for mask in range(2 ** (d - 1)):
                bounds = [0]
                bounds += [k + 1 for k in range(d - 1) if mask >> k & 1]
                bounds.append(d)
                groups = tuple(zip(bounds[:-1], bounds[1:]))
                for direction in (P.LEFT_TO_RIGHT, P.RIGHT_TO_LEFT):
                    plan = P.TTPlan(groups, direction)
                    fits = P.merged_core_elements(
                        in_modes, out_modes, ranks, plan
                    ) <= (P.DEFAULT_MEMORY_BUDGET // 4)
                    if fits:
                        costs[plan] = P.plan_cost(
                            in_modes, out_modes, ranks, plan, batch
                        )
            chosen = P.choose_plan(in_modes, out_modes, ranks, batch)
            assert costs[chosen] == pytest.approx(min(costs.values()))


@pytest.mark.multibackend
def test_cost_model_prefers_rebuilding_at_large_batches_only():
    """The kernel rebuild pays only when the chain needs more multiply-adds
    per row than the dense product (here 2 M vs 1 M) and the batch is
    large enough to amortise it (33.5 M multiply-adds)."""
    shape = ((32, 32), (32, 32), (1, 32, 1))
    assert C.contraction_flops(*shape) > 32 * 32 * 32 * 32
    assert P.choose_plan(*shape, batch=1).is_chain
    assert P.choose_plan(*shape, batch=10_000).is_dense
    dense = P.TTPlan(((0, 2),))
    chains = [
        P.TTPlan(((0, 1), (1, 2)), direction)
        for direction in (P.LEFT_TO_RIGHT, P.RIGHT_TO_LEFT)
    ]
    crossover = next(
        b
        for b in range(1, 10**5)
        if P.plan_cost(*shape, dense, b)
        < min(P.plan_cost(*shape, chain, b) for chain in chains)
    )
    assert P.choose_plan(*shape, batch=crossover - 1) != dense
    assert P.choose_plan(*shape, batch=crossover) == dense
    # Low ranks: the chain is cheaper per row, so never rebuild.
    low = ((32, 32), (32, 32), (1, 2, 1))
    assert not P.choose_plan(*low, batch=10**6).is_dense


@pytest.mark.multibackend
def test_merge_cost_counts_the_multiply_adds_of_the_merge_einsums():
    in_modes, out_modes, ranks = (2, 3, 4, 2), (3, 1, 2, 2), (1, 2, 3, 2, 1)
    rng = np.random.default_rng(3)
    cores = random_cores(rng, in_modes, out_modes, ranks)
    counted = P._merge_sizes(in_modes, out_modes, ranks, 0, 4)
    merged = cores[0]
    for k, core in enumerate(cores[1:]):
        r0, n_done, m_done, rank = merged.shape
        _, n, m, s = core.shape
        assert counted[k][0] == r0 * n_done * m_done * rank * n * m * s
        merged = np.einsum("anmr,rpqs->anpmqs", merged, core).reshape(
            r0, n_done * n, m_done * m, s
        )
        assert counted[k][1] == merged.size
    np.testing.assert_allclose(
        merged[0, :, :, 0], naive_full_matrix(cores), rtol=1e-12
    )


def _tf_layer_fn(layer, batch, jit_compile):
    import tensorflow as tf

    return tf.function(
        lambda v: layer(v),
        input_signature=[tf.TensorSpec((batch, layer.input_dim), layer.dtype)],
        jit_compile=jit_compile,
    )


@needs_tf
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("jit_compile", [False, True])
@pytest.mark.parametrize("contraction", ["auto", "chain", "dense"])
def test_plans_in_tf_function_and_xla(contraction, jit_compile, dtype):
    layer = _layer(contraction, dtype, 23, 11)
    rng = np.random.default_rng(4)
    for batch in (1, 9, None):
        fn = _tf_layer_fn(layer, batch, jit_compile)
        x = rng.standard_normal((batch or 6, 23)).astype(dtype)
        np.testing.assert_allclose(
            fn(x).numpy(), _reference(layer, x), **_tolerance(dtype)
        )


@needs_tf
@pytest.mark.parametrize("jit_compile", [False, True])
def test_every_merged_plan_in_tf_function_and_xla(jit_compile):
    import tensorflow as tf

    in_modes, out_modes, ranks = SHAPES[1]
    rng = np.random.default_rng(5)
    cores = [
        tf.constant(c) for c in random_cores(rng, in_modes, out_modes, ranks)
    ]
    x = rng.standard_normal((3, 24))
    expected = x @ naive_full_matrix([c.numpy() for c in cores])
    for plan in _all_plans(4):
        fn = tf.function(
            lambda v, p=plan: C.tt_matmul(
                v, cores, in_modes, out_modes, plan=p
            ),
            jit_compile=jit_compile,
        )
        np.testing.assert_allclose(
            fn(tf.constant(x)).numpy(), expected, rtol=1e-10, err_msg=plan.name
        )


@needs_tf
@pytest.mark.parametrize("contraction", ["chain", "dense", "auto"])
def test_gradients_match_finite_differences(contraction):
    """d sum(w * y) / d core, float64, against central differences."""
    import tensorflow as tf

    layer = _layer(contraction, "float64")
    rng = np.random.default_rng(6)
    x = tf.constant(rng.standard_normal((4, 24)))
    w = tf.constant(rng.standard_normal((4, 12)))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(w * layer(x))
    grads = tape.gradient(loss, layer.cores)
    for core, grad in zip(layer.cores, grads):
        values = core.numpy()
        numeric = np.zeros_like(values)
        for index in np.ndindex(values.shape):
            for sign in (1, -1):
                shifted = values.copy()
                shifted[index] += sign * 1e-6
                core.assign(shifted)
                numeric[index] += sign * float(
                    np.sum(w.numpy() * _reference(layer, x.numpy()))
                )
            core.assign(values)
        np.testing.assert_allclose(
            grad.numpy(), numeric / 2e-6, rtol=1e-5, atol=1e-6
        )


def _op_types(layer, batch):
    fn = _tf_layer_fn(layer, batch, False)
    ops = fn.get_concrete_function().graph.get_operations()
    counts = {}
    for op in ops:
        counts[op.type] = counts.get(op.type, 0) + 1
    return counts


@needs_tf
def test_graph_op_counts_are_pinned():
    """The paper's layer: 6 cores, batch 1, in a `tf.function`."""
    vgg = dict(tt_rank=4, in_modes=(2, 7, 8, 8, 7, 4), out_modes=(4,) * 6)
    chain = keras_tt.TTDense(4096, contraction="chain", **vgg)
    chain.build((None, 25088))
    counts = _op_types(chain, 1)
    # Per core: one einsum and one reshape of the state before it, plus the
    # final reshape to (batch, units); a 2-D input is not reshaped first;
    # squeezes drop the boundary ranks of the first and last cores.
    assert counts["Einsum"] == 6
    assert counts["Reshape"] == 7
    assert counts["Squeeze"] == 2
    assert counts["ReadVariableOp"] == 7
    assert counts["BiasAdd"] == 1
    assert sum(counts.values()) == 40

    auto = keras_tt.TTDense(4096, **vgg)
    auto.build((None, 25088))
    plan = auto.contraction_plan(1)
    assert plan.name == "merged 2+2+2, right_to_left"
    counts = _op_types(auto, 1)
    # 3 einsums in the chain and one per merge (3); no Squeeze: the merges'
    # last reshapes drop the boundary ranks. Each merge reshapes its two
    # operands and its result.
    assert counts["Einsum"] == 3 + 3
    assert "Squeeze" not in counts
    assert counts["Reshape"] == 4 + 3 * 3
    assert sum(counts.values()) == 50
