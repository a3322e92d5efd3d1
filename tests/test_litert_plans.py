"""LiteRT export with the plans chosen for LiteRT: chain, merged cores or
the kernel rebuilt inside the file, which must stay as small as the cores.

Every exported file is checked by the export itself (builtin ops only,
integer ops for int8, LiteRT against Keras); the tests add an independent
reference, ``x @ full_kernel + bias`` in NumPy, and the file sizes.
"""

import math
import os

import keras
import numpy as np
import pytest

import keras_tt
from keras_tt import contraction as C
from keras_tt import contraction_plans as P

pytest.importorskip("ai_edge_litert.interpreter")
pytest.importorskip("tensorflow")

from keras_tt.export import TFLiteRunner  # noqa: E402
from keras_tt.export import export_tflite  # noqa: E402

WIDTH = 512
MODES = dict(in_modes=(8, 8, 8), out_modes=(8, 8, 8))


def _model(contraction, seed=0):
    keras.utils.set_random_seed(seed)
    layer = keras_tt.TTDense(
        WIDTH,
        tt_rank=8,
        contraction=contraction,
        bias_initializer="random_normal",
        name="tt",
        **MODES,
    )
    return keras.Sequential([keras.Input((WIDTH,)), layer])


def _data(rows=32, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(rows, WIDTH)).astype(np.float32)


def _reference(model, x):
    layer = model.get_layer("tt")
    bias = keras.ops.convert_to_numpy(layer.bias)
    return x.astype(np.float64) @ layer.full_kernel() + bias


def _export(model, path, quantization=None, x=None):
    x = _data() if x is None else x
    return export_tflite(
        model,
        path,
        quantization=quantization,
        representative_data=x,
        validation_data=x,
        verbose=0,
    )


@pytest.mark.parametrize("quantization", [None, "int8"])
def test_rebuilt_kernel_is_computed_in_the_file_not_stored(
    tmp_path, quantization
):
    x = _data()
    sizes, ops = {}, {}
    for contraction in ("chain", "dense"):
        model = _model(contraction)
        path = tmp_path / f"{contraction}.tflite"
        report = _export(model, path, quantization, x)
        assert report.info.builtin_only
        sizes[contraction] = os.path.getsize(path)
        ops[contraction] = set(report.op_versions)
        got = TFLiteRunner(path, num_threads=1)(x)
        error = np.linalg.norm(got - _reference(model, x))
        error /= np.linalg.norm(_reference(model, x))
        assert error < (1e-5 if quantization is None else 0.1)
    # The rebuild runs in the file: a product of computed tensors and the
    # comparison that makes the cores depend on the input.
    assert "BATCH_MATMUL" in ops["dense"] and "GREATER" in ops["dense"]
    assert "BATCH_MATMUL" not in ops["chain"]
    assert sizes["dense"] <= 1.2 * sizes["chain"]
    kernel_bytes = WIDTH * WIDTH * (4 if quantization is None else 1)
    assert sizes["dense"] < kernel_bytes / 4


def test_export_picks_the_litert_plan_and_matches_keras(tmp_path):
    model = _model("auto")
    layer = model.get_layer("tt")
    shapes = (layer.in_modes, layer.out_modes, layer.tt_ranks)
    with P.contraction_scope(P.LITERT):
        # A resizable batch is planned for one row.
        planned = layer.contraction_plan(None)
        assert planned == P.choose_plan(*shapes, batch=1)
        big = layer.contraction_plan(4096)
    assert big.is_dense  # the rebuild wins at large batches
    for batch in (None, 256):
        path = tmp_path / f"auto_{batch}.tflite"
        x = _data(rows=batch or 8)
        report = export_tflite(
            model, path, batch_size=batch, validation_data=x, verbose=0
        )
        assert report.relative_error < 1e-5
        got = TFLiteRunner(path, num_threads=1)(x)
        np.testing.assert_allclose(got, _reference(model, x), atol=1e-4)


def test_litert_scope_minimises_the_litert_cost_and_keeps_explicit_plans():
    cases = [
        ((8, 6, 4, 4), (8, 6, 4, 4), (1, 16, 16, 16, 1)),
        ((4, 8, 8, 4), (4, 8, 8, 4), (1, 8, 8, 8, 1)),
        ((2, 7, 8, 8, 7, 4), (4,) * 6, (1,) + (4,) * 5 + (1,)),
    ]
    for in_modes, out_modes, ranks in cases:
        for batch in (1, 128):
            costs = {}
            for groups in P._groupings(len(in_modes)):
                for direction in (P.LEFT_TO_RIGHT, P.RIGHT_TO_LEFT):
                    plan = P.TTPlan(groups, direction)
                    size = P.merged_core_elements(
                        in_modes, out_modes, ranks, plan
                    )
                    if size > P.DEFAULT_MEMORY_BUDGET // 4:
                        continue
                    costs[plan] = P.plan_cost(
                        in_modes, out_modes, ranks, plan, batch, P.LITERT_COSTS
                    )
            with P.contraction_scope(P.LITERT):
                chosen = P.choose_plan(in_modes, out_modes, ranks, batch)
                chain = P.choose_plan(
                    in_modes, out_modes, ranks, batch, contraction="chain"
                )
            assert costs[chosen] == pytest.approx(min(costs.values()))
            assert chain.is_chain
    with P.contraction_scope(P.LITERT):
        assert _model("dense").get_layer("tt").contraction_plan(1).is_dense


def test_anchor_is_an_exact_zero_for_any_input():
    core = np.random.default_rng(0).normal(size=(1, 3, 2, 4)).astype("float32")
    for first in (np.nan, np.inf, -np.inf, 0.0, -3.5):
        x = np.array([[first, 1.0], [2.0, 3.0]], np.float32)
        got = keras.ops.convert_to_numpy(C.anchor_to_input(core, x))
        np.testing.assert_array_equal(got, core)


def test_tt_matmul_without_a_plan_plans_for_litert_in_the_scope():
    rng = np.random.default_rng(0)
    in_modes, out_modes, ranks = (4, 8, 8, 4), (4, 8, 8, 4), (1, 8, 8, 8, 1)
    cores = [
        rng.normal(
            size=(ranks[k], in_modes[k], out_modes[k], ranks[k + 1])
        ).astype("float32")
        for k in range(4)
    ]
    from keras_tt.tt_matrix import full_matrix

    x = rng.normal(size=(100, math.prod(in_modes))).astype("float32")
    with P.contraction_scope(P.LITERT):
        plan = P.choose_plan(in_modes, out_modes, ranks, batch=100)
        y = C.tt_matmul(x, cores, in_modes, out_modes)
    assert not plan.is_chain
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(y),
        x.astype(np.float64) @ full_matrix(cores),
        rtol=1e-4,
        atol=1e-3,
    )


def _plans(d):
    for groups in P._groupings(d):
        directions = (P.LEFT_TO_RIGHT,)
        if 1 < len(groups) < d:
            directions += (P.RIGHT_TO_LEFT,)
        for direction in directions:
            yield P.TTPlan(groups, direction)


@pytest.mark.parametrize("bias", ["zeros", "random_normal"])
def test_every_plan_keeps_the_activation_after_the_layer(tmp_path, bias):
    # A product with a computed core is a BATCH_MATMUL; a ReLU after it once
    # vanished from the file (a TT layer reading a concatenation, its bias
    # zero, exported with a resizable batch).
    keras.utils.set_random_seed(3)
    a = keras.Input((WIDTH // 2,), name="a")
    b = keras.Input((WIDTH // 2,), name="b")
    joined = keras.layers.Concatenate()([a, b])
    tt = keras_tt.TTDense(
        WIDTH,
        tt_rank=8,
        activation="relu",
        bias_initializer=bias,
        name="tt",
        **MODES,
    )
    model = keras.Model([a, b], keras.layers.Dense(3, name="head")(tt(joined)))
    head = model.get_layer("head")
    rng = np.random.default_rng(4)
    x = [rng.normal(size=(6, WIDTH // 2)).astype(np.float32) for _ in "ab"]
    joined_x = np.concatenate(x, axis=1).astype(np.float64)
    hidden = np.maximum(
        joined_x @ tt.full_kernel() + keras.ops.convert_to_numpy(tt.bias), 0
    )
    expected = hidden @ keras.ops.convert_to_numpy(head.kernel)
    expected += keras.ops.convert_to_numpy(head.bias)
    for number, plan in enumerate(_plans(len(MODES["in_modes"]))):
        tt.contraction_plan = lambda batch, plan=plan: plan
        path = tmp_path / f"plan_{number}.tflite"
        report = export_tflite(model, path, validation_data=x, verbose=0)
        assert report.info.builtin_only, plan
        got = TFLiteRunner(path, num_threads=1)(x)
        np.testing.assert_allclose(got, expected, atol=1e-4, err_msg=str(plan))


def _plan_ops(plan, rows=1):
    """The ops of a LiteRT file of ``_model``'s layer run by ``plan``."""
    import collections

    import tensorflow as tf

    from keras_tt.export.inspect import inspect_tflite

    layer = _model("chain").get_layer("tt")

    @tf.function(input_signature=[tf.TensorSpec((rows, WIDTH), tf.float32)])
    def serve(x):
        with P.contraction_scope(P.LITERT):
            return C.tt_matmul(
                x, layer.cores, layer.in_modes, layer.out_modes, plan=plan
            )

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [serve.get_concrete_function()]
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    content = converter.convert()
    return collections.Counter(
        op for op, _ in inspect_tflite(content).operators
    )


def test_litert_terms_count_the_transpose_of_the_left_to_right_chain():
    shapes = (MODES["in_modes"], MODES["out_modes"], (1, 8, 8, 1))
    chains = {
        d: P.TTPlan(((0, 1), (1, 2), (2, 3)), d)
        for d in (P.LEFT_TO_RIGHT, P.RIGHT_TO_LEFT)
    }
    ops = {d: _plan_ops(plan)["TRANSPOSE"] for d, plan in chains.items()}
    terms = {
        d: P.plan_terms(*shapes, plan, 1, tree=True)[0]
        for d, plan in chains.items()
    }
    # The converter writes more TRANSPOSEs left to right at one row, and
    # LiteRT's terms say so; TensorFlow's terms (einsums only) do not.
    assert ops[P.LEFT_TO_RIGHT] > ops[P.RIGHT_TO_LEFT]
    assert terms[P.LEFT_TO_RIGHT] == terms[P.RIGHT_TO_LEFT] + 1
    tf_terms = {
        d: P.plan_terms(*shapes, plan, 1)[0] for d, plan in chains.items()
    }
    assert tf_terms[P.LEFT_TO_RIGHT] == tf_terms[P.RIGHT_TO_LEFT]


def test_litert_terms_count_the_anchors_of_merged_cores():
    shapes = (MODES["in_modes"], MODES["out_modes"], (1, 8, 8, 1))
    chain = P.TTPlan(((0, 1), (1, 2), (2, 3)), P.RIGHT_TO_LEFT)
    merged = P.TTPlan(((0, 1), (1, 3)), P.RIGHT_TO_LEFT)
    counts = {plan: _plan_ops(plan) for plan in (chain, merged)}
    # The merged run's two cores each get an ADD of the exact zero, which
    # the compare and cast make; the chain has none of these.
    assert counts[merged]["GREATER"] == 1 and counts[merged]["CAST"] == 1
    assert counts[merged]["ADD"] >= 2
    assert counts[chain]["GREATER"] == 0 and counts[chain]["ADD"] == 0
    litert = [
        P.plan_terms(*shapes, p, 1, tree=True)[0] for p in (chain, merged)
    ]
    plain = [P.plan_terms(*shapes, p, 1)[0] for p in (chain, merged)]
    # Same einsum count (3 steps vs 2 steps + 1 merge); LiteRT adds the
    # two ADDs, the final ADD and the four ops computing the zero.
    assert plain[0] == plain[1] == 3
    assert litert == [3, 3 + 2 + 5]


def test_plan_cost_uses_the_terms_its_constants_were_fitted_to():
    shapes = ((8, 8, 8), (8, 8, 8), (1, 8, 8, 1))
    plan = P.TTPlan(((0, 1), (1, 2), (2, 3)), P.LEFT_TO_RIGHT)
    per_op = dict(mac=0.0, element=0.0)
    litert = P.plan_cost(
        *shapes, plan, 1, P.PlanCosts(1.0, litert=True, **per_op)
    )
    plain = P.plan_cost(*shapes, plan, 1, P.PlanCosts(1.0, **per_op))
    assert litert == P.plan_terms(*shapes, plan, 1, tree=True)[0] == 4
    assert plain == P.plan_terms(*shapes, plan, 1)[0] == 3
    assert P.LITERT_COSTS.litert and not P.TENSORFLOW_COSTS.litert


@pytest.mark.parametrize("kind", ["dense", "einsum"])
def test_rebuilt_kernel_on_sequences_stays_a_batch_matmul(tmp_path, kind):
    # Between the reshape of (batch, tokens, width) to rows and back, the
    # converter made the rebuilt-kernel product a FULLY_CONNECTED with
    # computed weights and a transpose of the kernel (XNNPACK does not
    # take it); it must stay the BATCH_MATMUL of the 2-D case.
    tokens = 16
    keras.utils.set_random_seed(0)
    if kind == "dense":
        layer = keras_tt.TTDense(
            WIDTH, tt_rank=8, contraction="dense", name="tt", **MODES
        )
    else:
        layer = keras_tt.TTEinsumDense(
            "btd,dh->bth",
            output_shape=(None, WIDTH),
            bias_axes="h",
            tt_rank=8,
            contraction="dense",
            name="tt",
            **MODES,
        )
    inputs = keras.Input((tokens, WIDTH), batch_size=1)
    model = keras.Model(inputs, layer(inputs))
    x = np.random.default_rng(1).normal(size=(1, tokens, WIDTH))
    x = x.astype(np.float32)
    path = tmp_path / f"{kind}.tflite"
    report = export_tflite(
        model, path, batch_size=1, validation_data=x, verbose=0
    )
    ops = set(report.op_versions)
    assert "BATCH_MATMUL" in ops and "FULLY_CONNECTED" not in ops
    kernel = layer.full_kernel().reshape(WIDTH, WIDTH)
    bias = 0.0
    if layer.bias is not None:
        bias = keras.ops.convert_to_numpy(layer.bias)
    expected = x.astype(np.float64) @ kernel + bias
    got = TFLiteRunner(path, num_threads=1)(x)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("tokens", [None, 16])
def test_fast_modes_export_two_products_with_constant_cores(tmp_path, tokens):
    # `fast_modes` puts the large modes outside: the chain runs as two
    # products with the cores as constant weights (no rebuilt kernel, no
    # merged core), on rows and on sequences alike.
    width, units = 384, 192
    keras.utils.set_random_seed(0)
    layer = keras_tt.TTDense(
        units, tt_rank=6, in_modes="fast", bias_initializer="random_normal"
    )
    shape = (width,) if tokens is None else (tokens, width)
    model = keras.Sequential([keras.Input(shape, batch_size=1), layer])
    fast = keras_tt.fast_modes(width, units)
    assert (layer.in_modes, layer.out_modes) == fast
    rows = 1 if tokens is None else tokens
    with P.contraction_scope(P.LITERT):
        plan = layer.contraction_plan(rows)
    assert plan.is_chain
    x = np.random.default_rng(1).normal(size=(1,) + shape)
    x = x.astype(np.float32)
    path = tmp_path / "fast.tflite"
    report = export_tflite(
        model, path, batch_size=1, validation_data=x, verbose=0
    )
    assert report.info.builtin_only
    products = [
        op
        for op in report.info.operators
        if op[0] in ("FULLY_CONNECTED", "BATCH_MATMUL")
    ]
    assert len(products) == 2
    assert "GREATER" not in set(report.op_versions)  # nothing anchored
    core_bytes = 4 * sum(int(np.prod(c.shape)) for c in layer.cores)
    assert os.path.getsize(path) < 1.2 * core_bytes + 8192
    bias = keras.ops.convert_to_numpy(layer.bias)
    expected = x.astype(np.float64) @ layer.full_kernel() + bias
    got = TFLiteRunner(path, num_threads=1)(x)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
