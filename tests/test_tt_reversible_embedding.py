"""TTEmbedding as an output head: tied and untied reverse projections, the
logit soft cap, and the conversion of keras_hub's / Keras's
``ReversibleEmbedding``."""

import json
import warnings
import zipfile

import keras
import numpy as np
import pytest
from tt_reference import naive_full_matrix
from tt_reference import random_cores

import keras_tt
from keras_tt.layers.tt_embedding import TTEmbedding
from keras_tt.tensorize._converters import converter_for

pytestmark = pytest.mark.multibackend

_NEW_KEYS = (
    "tie_weights",
    "reverse_tt_rank",
    "logit_soft_cap",
    "reverse_dtype",
)


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def _keras_reversible():
    cls = getattr(keras.layers, "ReversibleEmbedding", None)
    if cls is None:
        pytest.skip("this Keras has no keras.layers.ReversibleEmbedding")
    return cls


def _hub_reversible():
    keras_hub = pytest.importorskip("keras_hub")
    return keras_hub.layers.ReversibleEmbedding


REVERSIBLE = {"keras": _keras_reversible, "keras_hub": _hub_reversible}


def _reference_matrix(cores, rows, cols):
    """A TT-matrix rebuilt entry by entry from its cores, cut to size."""
    cores = [_numpy(c).astype(np.float64) for c in cores]
    return naive_full_matrix(cores)[:rows, :cols]


def _reference_logits(layer, x):
    """``x @ R`` (R the reverse matrix, rebuilt independently), soft-capped."""
    cores = layer.cores if layer.tie_weights else layer.reverse_cores
    transposed = _reference_matrix(cores, layer.input_dim, layer.output_dim)
    logits = x.astype(np.float64) @ transposed.T
    if layer.logit_soft_cap is not None:
        cap = layer.logit_soft_cap
        logits = np.tanh(logits / cap) * cap
    return logits


def _trained_reversible(cls, vocab, width, tie_weights, cap, rng, **kwargs):
    """A built reversible embedding with standard-normal weights."""
    layer = cls(
        vocab,
        width,
        tie_weights=tie_weights,
        logit_soft_cap=cap,
        name="tokens",
        **kwargs,
    )
    layer.build()
    layer.embeddings.assign(rng.standard_normal((vocab, width)))
    if not tie_weights:
        layer.reverse_embeddings.assign(rng.standard_normal((width, vocab)))
    return layer


# ------------------------------------------------- conversion at full rank


@pytest.mark.parametrize("source", ["keras", "keras_hub"])
@pytest.mark.parametrize("cap", [None, 30.0])
@pytest.mark.parametrize("tie_weights", [True, False])
def test_converted_reversible_embedding_matches_at_full_rank(
    rng, source, tie_weights, cap
):
    cls = REVERSIBLE[source]()
    # 61 rows are padded to 64: the padded rows must never show.
    original = _trained_reversible(
        cls, 61, 10, tie_weights, cap, rng, mask_zero=True
    )
    tt = TTEmbedding.from_embedding(original, tt_rank=10_000)
    assert tt.tie_weights is tie_weights
    assert tt.logit_soft_cap == cap
    assert tt.mask_zero and tt.name == "tokens"
    assert tt.padded_input_dim > 61

    ids = rng.integers(0, 61, size=(3, 5))
    np.testing.assert_allclose(
        _numpy(tt(ids)), _numpy(original(ids)), atol=1e-5
    )
    # Hidden states large enough for the cap to bite.
    x = (4.0 * rng.standard_normal((3, 5, 10))).astype("float32")
    expected = _numpy(original(x, reverse=True))
    if cap is not None:
        assert np.abs(expected).max() > 0.9 * cap
    got = _numpy(tt(x, reverse=True))
    assert got.shape == (3, 5, 61)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)
    reverse = (
        _numpy(original.embeddings).T
        if tie_weights
        else _numpy(original.reverse_embeddings)
    )
    np.testing.assert_allclose(tt.full_reverse_embeddings(), reverse, atol=1e-5)


def test_untied_conversion_gives_each_matrix_its_own_ranks(rng):
    cls = _keras_reversible()
    vocab_modes, embed_modes = (4, 4, 4), (2, 2, 4)
    # The reverse matrix is the transpose of a TT-matrix of rank 2; the
    # table is full-rank noise.
    low_rank = naive_full_matrix(
        random_cores(rng, vocab_modes, embed_modes, (1, 2, 2, 1))
    )
    original = cls(64, 16, tie_weights=False)
    original.build()
    original.embeddings.assign(rng.standard_normal((64, 16)))
    original.reverse_embeddings.assign(low_rank.T)
    tt = TTEmbedding.from_embedding(
        original,
        rel_error=0.01,
        vocab_modes=vocab_modes,
        embed_modes=embed_modes,
    )
    assert tt.reverse_tt_ranks == (1, 2, 2, 1)
    assert tt.tt_ranks[1] > 2
    reverse = _numpy(original.reverse_embeddings)
    error = np.linalg.norm(tt.full_reverse_embeddings() - reverse)
    assert error <= 0.01 * np.linalg.norm(reverse)

    clone = TTEmbedding.from_config(tt.get_config())
    assert clone.reverse_tt_ranks == (1, 2, 2, 1)
    assert clone.tt_ranks == tt.tt_ranks


def test_reverse_dtype_is_kept_and_used(rng):
    cls = _keras_reversible()
    original = cls(
        40,
        8,
        tie_weights=False,
        reverse_dtype="float32",
        dtype="mixed_bfloat16",
    )
    original.build()
    original.embeddings.assign(rng.standard_normal((40, 8)))
    original.reverse_embeddings.assign(rng.standard_normal((8, 40)))
    tt = TTEmbedding.from_embedding(original, tt_rank=10_000)
    assert tt.reverse_dtype == "float32"
    assert tt.compute_dtype == "bfloat16"
    x = rng.standard_normal((2, 8)).astype("float32")
    got = tt(x, reverse=True)
    assert keras.backend.standardize_dtype(got.dtype) == "float32"
    # Both layers read their weights autocast to bfloat16 (Keras's mixed
    # precision) before the cast to float32: agreement to bfloat16 rounding.
    expected = x @ _numpy(original.reverse_embeddings)
    np.testing.assert_allclose(_numpy(got), expected, atol=0.1, rtol=0.02)
    np.testing.assert_allclose(
        _numpy(got), _numpy(original(x, reverse=True)), atol=0.1, rtol=0.02
    )
    spec = tt.compute_output_spec(keras.KerasTensor((None, 8)), reverse=True)
    assert spec.dtype == "float32"
    # Lookups stay in the compute dtype.
    ids = np.array([[1, 2]])
    assert keras.backend.standardize_dtype(tt(ids).dtype) == "bfloat16"


def test_tensorize_decomposes_both_matrices_of_an_untied_head(rng):
    cls = _keras_reversible()
    ids = keras.Input((6,), dtype="int32")
    embedding = cls(40, 12, tie_weights=False, logit_soft_cap=30.0, name="tok")
    hidden = keras.layers.Dense(12, name="mix")(embedding(ids))
    model = keras.Model(ids, embedding(hidden, reverse=True))
    embedding.embeddings.assign(rng.standard_normal((40, 12)))
    embedding.reverse_embeddings.assign(rng.standard_normal((12, 40)))
    x = rng.integers(0, 40, size=(4, 6))
    expected = _numpy(model(x))

    converter = converter_for(embedding)
    assert converter.kernels(embedding) == [("", 40, 12), ("reverse", 40, 12)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tt = keras_tt.tensorize(
            model, tt_rank=10_000, layers=["tok"], verbose=0
        )
    layer = tt.get_layer("tok")
    assert isinstance(layer, TTEmbedding) and not layer.tie_weights
    records = tt.tensorize_report.layers
    assert [(r.name, r.kind) for r in records] == [
        ("tok", "Embedding"),
        ("tok/reverse", "Embedding"),
    ]
    assert all(r.rel_error < 1e-5 for r in records)
    assert [r.name for r in keras_tt.model_report(tt).layers] == [
        "tok",
        "tok/reverse",
    ]
    np.testing.assert_allclose(_numpy(tt(x)), expected, atol=1e-4, rtol=1e-5)
    # Every weight but the two dense matrices is kept, and the layer holds
    # TT-cores only.
    dense = sum(r.dense_params for r in records)
    tt_params = sum(r.tt_params for r in records)
    assert tt.count_params() == model.count_params() - dense + tt_params
    assert layer.weights == layer.cores + layer.reverse_cores
    assert all(len(w.shape) == 4 for w in layer.weights)


def test_tensorize_target_ratio_reaches_both_matrices(rng):
    cls = _keras_reversible()
    ids = keras.Input((3,), dtype="int32")
    embedding = cls(256, 32, tie_weights=False, name="tok")
    model = keras.Model(ids, embedding(embedding(ids), reverse=True))
    tt = keras_tt.tensorize(model, target_ratio=4.0, min_params=0, verbose=0)
    records = tt.tensorize_report.layers
    assert [r.name for r in records] == ["tok", "tok/reverse"]
    assert all(r.compression_ratio >= 4.0 for r in records)


def test_untied_layer_without_its_reverse_matrix_is_refused():
    class HalfReversible(keras.layers.Embedding):
        tie_weights = False

    layer = HalfReversible(10, 4)
    layer.build()
    assert converter_for(layer) is None
    with pytest.raises(ValueError, match="untied reverse embeddings"):
        TTEmbedding.from_embedding(layer, tt_rank=2)


# ----------------------------------------------- the layer, from scratch


@pytest.mark.parametrize("cap", [None, 5.0])
@pytest.mark.parametrize("tie_weights", [True, False])
@pytest.mark.parametrize(
    "vocab, width, vocab_modes, embed_modes, tt_rank",
    [
        (24, 12, (2, 3, 4), (3, 2, 2), (2, 4)),
        (37, 9, None, None, 3),  # padded on both sides
    ],
)
def test_reverse_logits_equal_a_numpy_reference(
    rng, vocab, width, vocab_modes, embed_modes, tt_rank, tie_weights, cap
):
    layer = TTEmbedding(
        vocab,
        width,
        tt_rank,
        vocab_modes=vocab_modes,
        embed_modes=embed_modes,
        embeddings_initializer="random_normal",
        tie_weights=tie_weights,
        logit_soft_cap=cap,
    )
    layer.build()
    # Cores large enough for logits beyond the cap.
    for core in layer.cores + layer.reverse_cores:
        core.assign(rng.standard_normal(core.shape))
    x = rng.standard_normal((2, 3, width)).astype("float32")
    expected = _reference_logits(layer, x)
    if cap is not None:
        assert np.abs(expected).max() > 0.9 * cap
    got = _numpy(layer(x, reverse=True))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    if not tie_weights:
        table = _reference_matrix(layer.cores, vocab, width)
        assert not np.allclose(got, x @ table.T, atol=1e-2)
    # Lookups never see the cap or the reverse cores.
    ids = rng.integers(0, vocab, size=(5,))
    np.testing.assert_allclose(
        _numpy(layer(ids)),
        _reference_matrix(layer.cores, vocab, width)[ids],
        rtol=1e-5,
        atol=1e-5,
    )


def test_untied_cores_shapes_and_parameter_count():
    layer = TTEmbedding(
        1000,
        64,
        (8, 4),
        vocab_modes=(10, 10, 10),
        embed_modes=(4, 4, 4),
        tie_weights=False,
        reverse_tt_rank=2,
    )
    layer.build()
    assert [tuple(c.shape) for c in layer.cores] == [
        (1, 10, 4, 8),
        (8, 10, 4, 4),
        (4, 10, 4, 1),
    ]
    assert [tuple(c.shape) for c in layer.reverse_cores] == [
        (1, 10, 4, 2),
        (2, 10, 4, 2),
        (2, 10, 4, 1),
    ]
    assert [w.name for w in layer.weights] == [
        "core_0",
        "core_1",
        "core_2",
        "reverse_core_0",
        "reverse_core_1",
        "reverse_core_2",
    ]
    table = 320 + 1280 + 160
    reverse = 80 + 160 + 80
    assert layer.num_core_params == table + reverse == layer.count_params()
    assert layer.compression_ratio == 2 * 64000 / (table + reverse)
    tied = TTEmbedding(1000, 64, 8)
    tied.build()
    assert tied.reverse_cores == [] and tied.reverse_layout is None
    assert len(tied.weights) == len(tied.cores)


def test_untied_reverse_cores_have_the_target_variance():
    # glorot_uniform over a 40 x 300 reverse matrix: 2 / (40 + 300).
    observed = []
    for seed in range(30):
        layer = TTEmbedding(
            300,
            40,
            (4, 4),
            vocab_modes=(5, 6, 10),
            embed_modes=(2, 4, 5),
            embeddings_initializer=keras.initializers.GlorotUniform(seed),
            tie_weights=False,
        )
        observed.append(np.mean(layer.full_reverse_embeddings() ** 2))
    assert np.mean(observed) == pytest.approx(2 / 340, rel=0.15)


def test_reverse_output_shape_and_mask():
    layer = TTEmbedding(
        30, 8, 2, mask_zero=True, tie_weights=False, logit_soft_cap=5.0
    )
    ids = keras.Input((None,), dtype="int32")
    hidden = layer(ids)
    logits = layer(hidden, reverse=True)
    assert tuple(hidden.shape) == (None, None, 8)
    assert tuple(logits.shape) == (None, None, 30)
    assert layer.compute_output_shape((2, 7, 8), reverse=True) == (2, 7, 30)
    mask = _numpy(layer.compute_mask(np.array([[0, 3, 0]])))
    np.testing.assert_array_equal(mask, [[False, True, False]])


def test_config_round_trip_keeps_the_head(rng):
    layer = TTEmbedding(
        50,
        12,
        3,
        embed_modes=(2, 2, 3),
        tie_weights=False,
        reverse_tt_rank=(2, 2),
        logit_soft_cap=7.5,
        name="tok",
    )
    x = rng.standard_normal((4, 12)).astype("float32")
    layer.build()
    y = _numpy(layer(x, reverse=True))
    config = layer.get_config()
    assert config["tie_weights"] is False
    assert config["reverse_tt_rank"] == [2, 2]
    assert config["logit_soft_cap"] == 7.5
    clone = TTEmbedding.from_config(json.loads(json.dumps(config)))
    clone.build()
    clone.set_weights(layer.get_weights())
    assert clone.reverse_tt_ranks == layer.reverse_tt_ranks
    np.testing.assert_allclose(_numpy(clone(x, reverse=True)), y)


def test_old_config_without_the_new_keys_is_a_tied_head():
    layer = TTEmbedding(20, 4, 2)
    config = layer.get_config()
    for key in _NEW_KEYS:
        config.pop(key)
    clone = TTEmbedding.from_config(config)
    assert clone.tie_weights and clone.logit_soft_cap is None
    assert clone.reverse_dtype is None and clone.reverse_tt_rank is None


@pytest.mark.parametrize("tie_weights", [True, False])
def test_keras_file_round_trip(tmp_path, rng, tie_weights):
    ids = keras.Input((5,), dtype="int32")
    embedding = TTEmbedding(
        100, 8, 4, tie_weights=tie_weights, logit_soft_cap=3.0
    )
    model = keras.Model(ids, embedding(embedding(ids), reverse=True))
    x = rng.integers(0, 100, size=(3, 5))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    layer = loaded.layers[1]
    assert isinstance(layer, TTEmbedding)
    assert layer.tie_weights is tie_weights and layer.logit_soft_cap == 3.0
    np.testing.assert_allclose(_numpy(loaded(x)), _numpy(model(x)))


def test_keras_file_written_without_the_new_keys_still_loads(tmp_path, rng):
    ids = keras.Input((5,), dtype="int32")
    embedding = TTEmbedding(100, 8, 4)
    model = keras.Model(ids, embedding(embedding(ids), reverse=True))
    path = tmp_path / "model.keras"
    model.save(path)
    # Rewrite the file as an earlier keras_tt wrote it.
    old = tmp_path / "old.keras"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(old, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                layer = config["config"]["layers"][1]["config"]
                assert all(key in layer for key in _NEW_KEYS)
                for key in _NEW_KEYS:
                    del layer[key]
                data = json.dumps(config).encode()
            target.writestr(item, data)
    loaded = keras.saving.load_model(old)
    assert loaded.layers[1].tie_weights
    x = rng.integers(0, 100, size=(3, 5))
    np.testing.assert_allclose(_numpy(loaded(x)), _numpy(model(x)))


def test_training_through_an_untied_head_moves_only_the_reverse_cores(rng):
    hidden = keras.Input((8,))
    embedding = TTEmbedding(40, 8, 3, tie_weights=False)
    model = keras.Model(hidden, embedding(hidden, reverse=True))
    model.compile("adam", "mse")
    before = [w.copy() for w in embedding.get_weights()]
    with warnings.catch_warnings():
        # The table's cores get no gradient through an untied head.
        warnings.simplefilter("ignore")
        model.fit(
            rng.standard_normal((16, 8)),
            rng.standard_normal((16, 40)),
            epochs=2,
            verbose=0,
        )
    after = embedding.get_weights()
    d = len(embedding.cores)
    assert all(np.array_equal(a, b) for a, b in zip(before[:d], after[:d]))
    assert all(not np.allclose(a, b) for a, b in zip(before[d:], after[d:]))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"tie_weights": "no"},
            "Received an invalid value for `tie_weights`, expected a "
            "boolean. Received: tie_weights='no'",
        ),
        (
            {"reverse_tt_rank": 2},
            "Received an invalid value for `reverse_tt_rank`, expected None "
            "with tied weights",
        ),
        (
            {"logit_soft_cap": 0},
            "Received an invalid value for `logit_soft_cap`, expected None "
            "or a positive number. Received: logit_soft_cap=0",
        ),
        ({"logit_soft_cap": "30"}, "`logit_soft_cap`"),
        (
            {"reverse_dtype": "int32"},
            "Received an invalid value for `reverse_dtype`, expected None "
            "or a floating dtype. Received: reverse_dtype='int32'",
        ),
        (
            {"tie_weights": False, "reverse_tt_rank": 0},
            "Received an invalid value for `tt_rank`",
        ),
    ],
)
def test_bad_head_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        TTEmbedding(10, 8, 2, **kwargs)


# ------------------------------------------------------------ a backbone


@pytest.mark.zoo
def test_tensorized_gemma_backbone_matches_at_full_rank(rng):
    keras_hub = pytest.importorskip("keras_hub")
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.GemmaBackbone(
        vocabulary_size=256,
        num_layers=2,
        num_query_heads=2,
        num_key_value_heads=1,
        hidden_dim=32,
        intermediate_dim=64,
        head_dim=16,
        final_logit_soft_cap=30.0,
    )
    x = {
        "token_ids": rng.integers(0, 256, size=(2, 8)).astype("int32"),
        "padding_mask": np.ones((2, 8), "int32"),
    }
    reference = _numpy(backbone(x))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tt = keras_tt.tensorize(
            backbone, tt_rank=10_000, layers=["token_embedding"], verbose=0
        )
    embedding = tt.get_layer("token_embedding")
    assert isinstance(embedding, TTEmbedding)
    assert embedding.tie_weights and embedding.logit_soft_cap == 30.0
    assert [r.name for r in tt.tensorize_report.layers] == ["token_embedding"]
    np.testing.assert_allclose(_numpy(tt(x)), reference, atol=1e-5)
    # The weight-tied, soft-capped head that GemmaCausalLM calls.
    hidden = (4.0 * reference).astype("float32")
    np.testing.assert_allclose(
        _numpy(embedding(hidden, reverse=True)),
        _numpy(backbone.token_embedding(hidden, reverse=True)),
        atol=1e-5,
        rtol=1e-5,
    )


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="LiteRT export runs on the TensorFlow backend only",
)
def test_untied_soft_capped_head_exports_to_litert(tmp_path, rng):
    pytest.importorskip("ai_edge_litert")
    keras.utils.set_random_seed(0)
    ids = keras.Input((4,), dtype="int32")
    embedding = TTEmbedding(
        60, 12, tt_rank=3, tie_weights=False, logit_soft_cap=2.0
    )
    model = keras.Model(ids, embedding(embedding(ids), reverse=True))
    path = str(tmp_path / "m.tflite")
    report = keras_tt.export_tflite(model, path, verbose=0)
    assert report.relative_error < 1e-5
    x = rng.integers(0, 60, size=(3, 4)).astype("int32")
    hidden = _reference_matrix(embedding.cores, 60, 12)[x]
    expected = _reference_logits(embedding, hidden)
    got = keras_tt.export.TFLiteRunner(path).predict(x)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
