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
