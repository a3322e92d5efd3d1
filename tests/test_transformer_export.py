"""TTEmbedding, TTEinsumDense and TT attention in LiteRT: builtin ops only,
every tensor at most 4-D, integer ids kept integer, outputs as in Keras."""

import os
import sys

import keras
import numpy as np
import pytest

import keras_tt
from keras_tt.contraction_plans import LITERT
from keras_tt.contraction_plans import LITERT_INT8
from keras_tt.contraction_plans import contraction_scope

pytest.importorskip("ai_edge_litert")
from ai_edge_litert.interpreter import Interpreter  # noqa: E402

# An id lookup needs only arithmetic, comparisons, gathers and products.
LOOKUP_OPS = {
    "ADD",
    "BATCH_MATMUL",
    "FLOOR_DIV",
    "FLOOR_MOD",
    "GATHER",
    "GREATER_EQUAL",
    "LESS",
    "LOGICAL_AND",
    "RESHAPE",
    "SELECT",
    "SELECT_V2",
}


def _max_rank(path):
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    return max(len(t["shape"]) for t in interpreter.get_tensor_details())


def _models():
    ids = keras.Input((6,), dtype="int32")
    embedding = keras.Model(ids, keras_tt.TTEmbedding(1000, 32, 6)(ids))
    x = keras.Input((6, 32))
    einsum = keras.Model(
        x,
        keras_tt.TTEinsumDense(
            "abc,cde->abde", (None, 4, 8), 4, bias_axes="de"
        )(x),
    )
    x = keras.Input((6, 32))
    layer = keras_tt.TTMultiHeadAttention(
        num_heads=2,
        key_dim=16,
        tt_projections={
            p: {"tt_rank": 4} for p in ("query", "key", "value", "output")
        },
    )
    attention = keras.Model(x, layer(x, x))
    return {"embedding": embedding, "einsum": einsum, "attention": attention}


@pytest.mark.parametrize("quantization", [None, "int8"])
@pytest.mark.parametrize("which", ["embedding", "einsum", "attention"])
def test_layers_export_builtin_only_and_match(tmp_path, which, quantization):
    keras.utils.set_random_seed(0)
    model = _models()[which]
    rng = np.random.default_rng(0)
    if which == "embedding":
        data = rng.integers(0, 1000, size=(32, 6)).astype("int32")
    else:
        data = rng.standard_normal((32, 6, 32)).astype("float32")
    report = keras_tt.export_tflite(
        model,
        tmp_path / "m.tflite",
        quantization=quantization,
        representative_data=data,
        batch_size=2,
        verbose=False,
    )
    assert report.info.builtin_only
    assert _max_rank(report.path) <= 4
    if which == "embedding":
        assert report.info.inputs[0].dtype == "int32"
        assert set(report.op_versions) - {"QUANTIZE", "DEQUANTIZE"} <= (
            LOOKUP_OPS
        )
    if quantization is None:
        assert report.relative_error < 1e-5
    else:
        assert report.relative_error < 0.1


# Tables of row prefixes and suffixes add products with constant cores,
# transposes, and the exact zero computed from the ids that keeps them out
# of the file's constants (`keras_tt.contraction.anchor_to_input`).
TABLE_OPS = LOOKUP_OPS | {
    "CAST",
    "FULLY_CONNECTED",
    "GREATER",
    "MUL",
    "STRIDED_SLICE",
    "TRANSPOSE",
}


@pytest.mark.parametrize("quantization", [None, "int8"])
def test_lookup_with_tables_exports_small_and_matches(tmp_path, quantization):
    keras.utils.set_random_seed(0)
    layer = keras_tt.TTEmbedding(4096, 64, 8)
    ids = keras.Input((64,), dtype="int32")
    model = keras.Model(ids, layer(ids))
    scope = LITERT_INT8 if quantization == "int8" else LITERT
    with contraction_scope(scope):
        groups = layer.lookup_plan(4 * 64).groups
    # A table of row prefixes and one of row suffixes.
    assert len(groups) == 2 and all(b - a > 1 for a, b in groups)
    rng = np.random.default_rng(0)
    data = rng.integers(0, 4096, size=(16, 64)).astype("int32")
    report = keras_tt.export_tflite(
        model,
        tmp_path / "m.tflite",
        quantization=quantization,
        representative_data=data,
        batch_size=4,
        verbose=False,
    )
    assert report.info.builtin_only
    assert _max_rank(report.path) <= 4
    ops = set(report.op_versions) - {"QUANTIZE", "DEQUANTIZE"}
    assert ops <= TABLE_OPS, ops - TABLE_OPS
    # The tables are computed in the file, not stored: the file stays
    # about the size of the cores.
    core_bytes = 4 * layer.num_core_params
    assert os.path.getsize(report.path) < 1.5 * core_bytes + 12_000
    x = rng.integers(0, 4096, size=(4, 64)).astype("int32")
    got = keras_tt.export.TFLiteRunner(report.path).predict(x)
    expected = layer.full_table()[x]
    scale = np.abs(expected).max()
    tolerance = 1e-5 if quantization is None else 0.1
    np.testing.assert_allclose(got, expected, atol=tolerance * scale)


@pytest.mark.zoo
def test_small_encoder_exports_and_matches(tmp_path):
    sys.path.insert(
        0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "examples")
    )
    import transformer

    model = transformer.small_encoder(rank=4)
    data = np.random.default_rng(1).integers(0, 500, (32, 8)).astype("int32")
    for quantization, tolerance in ((None, 1e-5), ("int8", 0.1)):
        report = keras_tt.export_tflite(
            model,
            tmp_path / f"encoder_{quantization}.tflite",
            quantization=quantization,
            representative_data=data,
            batch_size=1,
            verbose=False,
        )
        assert report.info.builtin_only
        assert report.relative_error < tolerance
        assert _max_rank(report.path) <= 4
