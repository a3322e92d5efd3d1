"""TTMultiHeadAttention and the tensorize converters for embeddings,
EinsumDense and attention: outputs against the original layers."""

import keras
import numpy as np
import pytest

import keras_tt
from keras_tt.layers.tt_attention import tt_attention_class
from keras_tt.layers.tt_einsum_dense import TTEinsumDense


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.multibackend
def test_tt_projections_replace_only_the_named_ones(rng):
    layer = keras_tt.TTMultiHeadAttention(
        num_heads=2,
        key_dim=4,
        tt_projections={"key": {"tt_rank": 2}, "output": {"tt_rank": 3}},
    )
    q = rng.standard_normal((2, 3, 8)).astype("float32")
    y = layer(q, q)
    assert tuple(y.shape) == (2, 3, 8)
    assert isinstance(layer._key_dense, TTEinsumDense)
    assert isinstance(layer._output_dense, TTEinsumDense)
    assert type(layer._query_dense) is keras.layers.EinsumDense
    # Only live weights are tracked: the replaced EinsumDense are gone.
    expected = sum(
        len(getattr(layer, a).weights)
        for a in ("_query_dense", "_key_dense", "_value_dense", "_output_dense")
    )
    assert len(layer.weights) == expected


@pytest.mark.multibackend
def test_output_equals_attention_computed_with_the_full_kernels(rng):
    tt = keras_tt.TTMultiHeadAttention(
        num_heads=2,
        key_dim=3,
        tt_projections={
            name: {"tt_rank": 2} for name in ("query", "key", "value", "output")
        },
    )
    q = rng.standard_normal((2, 4, 6)).astype("float32")
    v = rng.standard_normal((2, 5, 6)).astype("float32")
    y = _numpy(tt(q, v))
    dense = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3)
    dense(q, v)
    for attribute in (
        "_query_dense",
        "_key_dense",
        "_value_dense",
        "_output_dense",
    ):
        source, target = getattr(tt, attribute), getattr(dense, attribute)
        target.kernel.assign(source.full_kernel())
        target.bias.assign(_numpy(source.bias))
    np.testing.assert_allclose(y, _numpy(dense(q, v)), rtol=1e-4, atol=1e-5)


def test_keras_file_round_trip(tmp_path, rng):
    q = keras.Input((4, 8))
    layer = keras_tt.TTMultiHeadAttention(
        num_heads=2, key_dim=4, tt_projections={"query": {"tt_rank": 2}}
    )
    model = keras.Model(q, layer(q, q))
    x = rng.standard_normal((2, 4, 8)).astype("float32")
    path = tmp_path / "att.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.layers[1]._query_dense, TTEinsumDense)
    np.testing.assert_allclose(_numpy(loaded(x)), _numpy(model(x)), atol=1e-6)


def test_bad_projection_settings_are_named():
    with pytest.raises(ValueError, match="`tt_projections`.*'keys'"):
        keras_tt.TTMultiHeadAttention(
            num_heads=1, key_dim=2, tt_projections={"keys": {"tt_rank": 2}}
        )
    with pytest.raises(ValueError, match="must be a dict with `tt_rank`"):
        keras_tt.TTMultiHeadAttention(
            num_heads=1, key_dim=2, tt_projections={"key": {"rank": 2}}
        )
    with pytest.raises(ValueError, match="expected a subclass of"):
        tt_attention_class(keras.layers.Dense)


# ------------------------------------------------------------- tensorize


def _text_model(vocab=300, width=32, seq=6):
    ids = keras.Input((seq,), dtype="int32")
    x = keras.layers.Embedding(vocab, width, name="tokens")(ids)
    x = keras.layers.MultiHeadAttention(num_heads=4, key_dim=8, name="mha")(
        x, x
    )
    x = keras.layers.EinsumDense(
        "abc,cd->abd", (None, 48), bias_axes="d", name="proj"
    )(x)
    outputs = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(ids, outputs)


def test_tensorize_at_full_rank_keeps_outputs(rng):
    model = _text_model()
    ids = rng.integers(0, 300, size=(3, 6))
    tt_model = keras_tt.tensorize(
        model, tt_rank=10_000, min_params=0, verbose=0
    )
    kinds = {type(layer).__name__ for layer in tt_model.layers}
    assert {"TTEmbedding", "TTMultiHeadAttention", "TTEinsumDense"} <= kinds
    np.testing.assert_allclose(
        _numpy(tt_model(ids)), _numpy(model(ids)), rtol=1e-4, atol=1e-5
    )
    report = tt_model.tensorize_report
    rows = {(r.name, r.kind) for r in report.layers}
    assert rows == {
        ("tokens", "Embedding"),
        ("mha/query", "MultiHeadAttention"),
        ("mha/key", "MultiHeadAttention"),
        ("mha/value", "MultiHeadAttention"),
        ("mha/output", "MultiHeadAttention"),
        ("proj", "EinsumDense"),
    }
    assert all(r.rel_error < 1e-5 for r in report.layers)


def test_tensorize_low_rank_report_and_reload(tmp_path, rng):
    model = _text_model()
    ids = rng.integers(0, 300, size=(3, 6))
    before = [w.copy() for w in model.get_weights()]
    tt_model = keras_tt.tensorize(
        model,
        layers={"tokens": {"tt_rank": 4}, "mha": {"rel_error": 0.5}},
        verbose=0,
    )
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)  # the original is untouched
    records = {r.name: r for r in tt_model.tensorize_report.layers}
    assert records["tokens"].ranks[1:-1] and max(records["tokens"].ranks) <= 4
    assert all(
        records[f"mha/{p}"].rel_error <= 0.5
        for p in ("query", "key", "value", "output")
    )
    assert type(tt_model.get_layer("proj")) is keras.layers.EinsumDense
    path = tmp_path / "tt.keras"
    tt_model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        _numpy(loaded(ids)), _numpy(tt_model(ids)), atol=1e-6
    )
    report = keras_tt.model_report(loaded)
    assert {r.name for r in report.layers} >= {"tokens"}
    assert len(report.layers) == 5  # the table and four projections


def test_refused_equation_is_left_to_einsum_dense():
    x = keras.Input((4, 6))
    # A per-position kernel (axis b in the input, the kernel and the
    # output) is no matrix product.
    y = keras.layers.EinsumDense("abc,bcd->abd", (4, 5), name="odd")(x)
    model = keras.Model(x, keras.layers.Dense(3, name="fc")(y))
    tt_model = keras_tt.tensorize(model, tt_rank=2, min_params=0, verbose=0)
    assert type(tt_model.get_layer("odd")) is keras.layers.EinsumDense


def test_tensorize_target_ratio_on_attention(rng):
    x = keras.Input((4, 64))
    layer = keras.layers.MultiHeadAttention(num_heads=4, key_dim=16, name="mha")
    model = keras.Model(x, layer(x, x))
    tt_model = keras_tt.tensorize(
        model, target_ratio=8, min_params=0, verbose=0
    )
    for record in tt_model.tensorize_report.layers:
        assert record.compression >= 8
