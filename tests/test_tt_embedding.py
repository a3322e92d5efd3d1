"""TTEmbedding: lookups against the reconstructed table, the Embedding
contract, initialisation, conversion, errors."""

import itertools
import math

import keras
import numpy as np
import pytest
from tt_reference import naive_full_matrix
from tt_reference import naive_rows

from keras_tt.layers._lookup import LookupPlan
from keras_tt.layers.tt_embedding import TTEmbedding

pytestmark = pytest.mark.multibackend


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def _reference_table(layer):
    """The table rebuilt entry by entry from the cores, cut to size."""
    cores = [_numpy(c).astype(np.float64) for c in layer.cores]
    table = naive_full_matrix(cores)
    return table[: layer.input_dim, : layer.output_dim]


CASES = [
    # (input_dim, output_dim, vocab_modes, embed_modes, tt_rank)
    (6, 5, (6,), (5,), 1),
    (12, 10, (4, 3), (2, 5), 3),
    (24, 12, (2, 3, 4), (3, 2, 2), (2, 4)),
    (48, 8, (2, 2, 3, 4), (1, 2, 2, 2), 3),
    (37, 9, None, None, 3),  # padded on both sides
]


@pytest.mark.parametrize("ids_shape", [(7,), (2, 5), (2, 3, 4)])
@pytest.mark.parametrize(
    "input_dim, output_dim, vocab_modes, embed_modes, tt_rank", CASES
)
def test_lookup_equals_rows_of_reconstructed_table(
    rng, input_dim, output_dim, vocab_modes, embed_modes, tt_rank, ids_shape
):
    layer = TTEmbedding(
        input_dim,
        output_dim,
        tt_rank,
        vocab_modes=vocab_modes,
        embed_modes=embed_modes,
        embeddings_initializer="random_normal",
    )
    ids = rng.integers(0, input_dim, size=ids_shape)
    y = _numpy(layer(ids))
    assert y.shape == ids_shape + (output_dim,)
    table = _reference_table(layer)
    np.testing.assert_allclose(y, np.take(table, ids, axis=0), atol=1e-5)
    np.testing.assert_allclose(layer.full_table(), table, atol=1e-5)


def test_every_id_reaches_its_own_row(rng):
    layer = TTEmbedding(31, 6, 2, embeddings_initializer="random_normal")
    assert layer.padded_input_dim > 31  # 31 -> 32 rows: padding in play
    ids = np.arange(31)
    np.testing.assert_allclose(
        _numpy(layer(ids)), _reference_table(layer), rtol=1e-6, atol=1e-6
    )


def test_negative_ids_count_from_the_end_like_embedding():
    layer = TTEmbedding(20, 4, 2, embeddings_initializer="random_normal")
    table = layer.full_table()
    y = _numpy(layer(np.array([-1, -20, -7])))
    np.testing.assert_allclose(y, table[[19, 0, 13]], atol=1e-6)
    dense = keras.layers.Embedding(20, 4)
    dense.build()
    dense.embeddings.assign(table)
    np.testing.assert_allclose(
        _numpy(dense(np.array([-1, -20, -7]))), y, atol=1e-6
    )


@pytest.mark.skipif(
    keras.backend.backend() == "jax",
    reason="JAX fills out-of-range gathers instead of raising",
)
@pytest.mark.parametrize("bad_id", [22, 23, 24, 1000, -23])
def test_out_of_range_ids_fail_as_embedding_does(bad_id):
    # 22 rows are padded to 24: ids 22 and 23 would reach padded rows if
    # they were not refused.
    layer = TTEmbedding(22, 4, 2)
    assert layer.padded_input_dim == 24
    dense = keras.layers.Embedding(22, 4)
    with pytest.raises(Exception) as dense_error:  # noqa: B017
        dense(np.array([0, bad_id]))
    with pytest.raises(type(dense_error.value)):
        layer(np.array([0, bad_id]))


@pytest.mark.skipif(
    keras.backend.backend() == "jax",
    reason="JAX fills out-of-range gathers instead of raising",
)
def test_ids_of_padded_rows_are_refused():
    layer = TTEmbedding(22, 4, 2)
    assert layer.padded_input_dim == 24
    dense = keras.layers.Embedding(22, 4)
    with pytest.raises(Exception) as dense_error:  # noqa: B017
        dense(np.array([22]))
    for bad_id in (22, 23):
        with pytest.raises(type(dense_error.value)):
            layer(np.array([bad_id]))


@pytest.mark.parametrize("dtype", ["int32", "int64", "float32", "uint8"])
def test_input_dtypes_cast_like_embedding(rng, dtype):
    layer = TTEmbedding(16, 4, 2)
    ids = rng.integers(0, 16, size=(3, 2))
    y = _numpy(layer(ids.astype(dtype)))
    np.testing.assert_allclose(y, layer.full_table()[ids], atol=1e-6)


def test_mask_zero_and_compute_mask():
    layer = TTEmbedding(10, 4, 2, mask_zero=True)
    ids = np.array([[1, 0, 3], [0, 0, 2]])
    mask = _numpy(layer.compute_mask(ids))
    np.testing.assert_array_equal(mask, ids != 0)
    assert TTEmbedding(10, 4, 2).compute_mask(ids) is None
    inputs = keras.Input((3,), dtype="int32")
    outputs = keras.layers.GlobalAveragePooling1D()(
        TTEmbedding(10, 4, 2, mask_zero=True)(inputs)
    )
    model = keras.Model(inputs, outputs)
    table = model.layers[1].full_table()
    expected = np.stack([table[[1, 3]].mean(0), table[[2]].mean(0)])
    np.testing.assert_allclose(_numpy(model(ids)), expected, atol=1e-6)


def test_symbolic_output_shape():
    inputs = keras.Input((None, 5), dtype="int32")
    outputs = TTEmbedding(30, 7, 2)(inputs)
    assert tuple(outputs.shape) == (None, None, 5, 7)


def test_reverse_is_product_with_transposed_table(rng):
    layer = TTEmbedding(21, 10, 3, embeddings_initializer="random_normal")
    x = rng.standard_normal((2, 3, 10)).astype("float32")
    np.testing.assert_allclose(
        _numpy(layer(x, reverse=True)),
        x @ _reference_table(layer).T,
        rtol=1e-5,
        atol=1e-5,
    )


@pytest.mark.parametrize(
    "initializer, variance",
    [
        ("glorot_uniform", 2 / (300 + 40)),
        ("he_normal", 2 / 300),
        ("uniform", 0.05**2 / 3),  # Embedding's default
        (keras.initializers.RandomNormal(stddev=0.2), 0.04),
    ],
)
def test_full_table_has_the_target_variance(initializer, variance):
    # Average the table variance over seeds: one table is a function of few
    # random numbers.
    observed = []
    for seed in range(30):
        init = keras.initializers.get(initializer)
        config = init.get_config()
        config["seed"] = seed
        init = init.__class__.from_config(config)
        layer = TTEmbedding(
            300,
            40,
            (4, 4),
            vocab_modes=(5, 6, 10),
            embed_modes=(2, 4, 5),
            embeddings_initializer=init,
        )
        observed.append(np.mean(layer.full_table() ** 2))
    assert np.mean(observed) == pytest.approx(variance, rel=0.15)


def test_cores_and_parameter_count():
    layer = TTEmbedding(
        1000, 64, (8, 4), vocab_modes=(10, 10, 10), embed_modes=(4, 4, 4)
    )
    layer.build()
    shapes = [tuple(c.shape) for c in layer.cores]
    assert shapes == [(1, 10, 4, 8), (8, 10, 4, 4), (4, 10, 4, 1)]
    assert layer.num_core_params == sum(math.prod(s) for s in shapes)
    assert layer.compression_ratio == 64000 / layer.num_core_params
    assert layer.count_params() == layer.num_core_params


def test_config_round_trip_keeps_outputs(rng):
    layer = TTEmbedding(
        50, 12, 3, embed_modes=(2, 2, 3), mask_zero=True, name="tok"
    )
    ids = rng.integers(0, 50, size=(4, 3))
    y = _numpy(layer(ids))
    clone = TTEmbedding.from_config(layer.get_config())
    clone.build()
    clone.set_weights(layer.get_weights())
    assert clone.vocab_modes == layer.vocab_modes
    assert clone.tt_ranks == layer.tt_ranks
    assert clone.mask_zero and clone.name == "tok"
    np.testing.assert_allclose(_numpy(clone(ids)), y)


def test_keras_file_round_trip(tmp_path, rng):
    inputs = keras.Input((5,), dtype="int32")
    x = TTEmbedding(100, 8, 4, mask_zero=True)(inputs)
    outputs = keras.layers.GlobalAveragePooling1D()(x)
    model = keras.Model(inputs, outputs)
    ids = rng.integers(0, 100, size=(3, 5))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.layers[1], TTEmbedding)
    np.testing.assert_allclose(_numpy(loaded(ids)), _numpy(model(ids)))


def test_loading_weights_of_other_shapes_is_refused(tmp_path):
    inputs = keras.Input((2,), dtype="int32")
    model = keras.Model(inputs, TTEmbedding(16, 4, 2, name="e")(inputs))
    path = tmp_path / "model.keras"
    model.save(path)
    config = model.get_config()
    config["layers"][1]["config"]["tt_rank"] = 3
    other = keras.Model.from_config(config)
    with pytest.raises(ValueError, match="Cannot load the weights"):
        other.load_weights(path)


def test_training_moves_the_cores(rng):
    inputs = keras.Input((3,), dtype="int32")
    x = TTEmbedding(40, 6, 3)(inputs)
    outputs = keras.layers.Dense(1)(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    model.compile("adam", "mse")
    before = [w.copy() for w in model.layers[1].get_weights()]
    ids = rng.integers(0, 40, size=(32, 3))
    model.fit(ids, rng.standard_normal((32, 1)), epochs=2, verbose=0)
    after = model.layers[1].get_weights()
    assert all(not np.allclose(a, b) for a, b in zip(before, after))


# ------------------------------------------------------------- conversion


@pytest.mark.parametrize("vocab, width", [(60, 8), (61, 10)])
def test_from_embedding_at_full_rank_is_exact(rng, vocab, width):
    dense = keras.layers.Embedding(vocab, width, mask_zero=True, name="emb")
    dense.build()
    tt = TTEmbedding.from_embedding(dense, tt_rank=10_000)
    ids = rng.integers(0, vocab, size=(4, 6))
    np.testing.assert_allclose(_numpy(tt(ids)), _numpy(dense(ids)), atol=1e-5)
    assert tt.mask_zero and tt.name == "emb"
    np.testing.assert_allclose(
        tt.full_table(), _numpy(dense.embeddings), atol=1e-5
    )


def test_from_embedding_meets_the_error_budget(rng):
    # A table of TT-rank 2 (modes 4x4x4 by 2x2x4) plus 1% noise.
    cores = [
        rng.standard_normal(shape)
        for shape in [(1, 4, 2, 2), (2, 4, 2, 2), (2, 4, 4, 1)]
    ]
    table = naive_full_matrix(cores)
    table += 0.01 * table.std() * rng.standard_normal(table.shape)
    dense = keras.layers.Embedding(64, 16)
    dense.build()
    dense.embeddings.assign(table)
    table = _numpy(dense.embeddings)
    tt = TTEmbedding.from_embedding(
        dense,
        rel_error=0.05,
        vocab_modes=(4, 4, 4),
        embed_modes=(2, 2, 4),
    )
    assert tt.tt_ranks == (1, 2, 2, 1)
    error = np.linalg.norm(tt.full_table() - table) / np.linalg.norm(table)
    assert error <= 0.05


def test_from_embedding_leaves_the_original_alone():
    dense = keras.layers.Embedding(30, 4)
    dense.build()
    before = _numpy(dense.embeddings).copy()
    TTEmbedding.from_embedding(dense, tt_rank=2)
    np.testing.assert_array_equal(_numpy(dense.embeddings), before)


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"input_dim": 0},
            "Received an invalid value for `input_dim`, expected a positive "
            "integer. Received: input_dim=0",
        ),
        (
            {"output_dim": 2.5},
            "Received an invalid value for `output_dim`, expected a "
            "positive integer. Received: output_dim=2.5",
        ),
        ({"vocab_modes": (3, 3)}, "`vocab_modes`, expected modes whose"),
        ({"embed_modes": (2, 3)}, "`embed_modes`, expected modes whose"),
        (
            {"vocab_modes": (2, 5), "embed_modes": (8,)},
            "Received invalid values for `vocab_modes` and `embed_modes`",
        ),
        ({"tt_rank": 0}, "Received an invalid value for `tt_rank`"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    args = {"input_dim": 10, "output_dim": 8, "tt_rank": 2, **kwargs}
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        TTEmbedding(**args)


def test_from_embedding_needs_rank_or_error_and_an_embedding():
    dense = keras.layers.Embedding(30, 4)
    dense.build()
    with pytest.raises(ValueError, match="Expected `tt_rank` or `rel_error`"):
        TTEmbedding.from_embedding(dense)
    with pytest.raises(ValueError, match="expected a `keras.layers.Embed"):
        TTEmbedding.from_embedding(keras.layers.Dense(3), tt_rank=2)
    with pytest.raises(ValueError, match="is not built"):
        TTEmbedding.from_embedding(keras.layers.Embedding(3, 2), tt_rank=2)


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="LiteRT export runs on the TensorFlow backend only",
)
def test_resizable_batch_export_of_3d_ids_matches_keras(tmp_path):
    pytest.importorskip("ai_edge_litert")
    import keras_tt

    keras.utils.set_random_seed(0)
    # 3-D ids and a weight-tied head: both reshapes of the lookup run with
    # an unknown batch.
    ids = keras.Input((4, 3), dtype="int32")
    embedding = TTEmbedding(60, 12, tt_rank=3)
    logits = embedding(embedding(ids), reverse=True)
    model = keras.Model(ids, logits)
    path = str(tmp_path / "m.tflite")
    report = keras_tt.export_tflite(model, path, verbose=0)
    assert {c.runtime for c in report.comparisons} >= {"compiled_model"}
    assert len({c.batch_size for c in report.comparisons}) >= 2
    assert report.relative_error < 1e-5
    x = np.random.default_rng(1).integers(0, 60, size=(3, 4, 3))
    x = x.astype("int32")
    expected = np.einsum(
        "btsd,vd->btsv", embedding.full_table()[x], embedding.full_table()
    )
    got = keras_tt.export.TFLiteRunner(path).predict(x)
    assert got.shape == (3, 4, 3, 60)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------- lookup plans


def _trees(first, last):
    """Every binary product order over runs ``first .. last``."""
    if first == last:
        return [first]
    return [
        (left, right)
        for split in range(first, last)
        for left in _trees(first, split)
        for right in _trees(split + 1, last)
    ]


def _every_plan(d):
    for cuts in itertools.product((False, True), repeat=d - 1):
        bounds = [0] + [k + 1 for k, cut in enumerate(cuts) if cut] + [d]
        groups = tuple(zip(bounds[:-1], bounds[1:]))
        for tree in _trees(0, len(groups) - 1):
            yield LookupPlan(groups, tree)


def _with_plan(layer, plan):
    layer.lookup_plan = lambda ids=None: plan
    return layer


@pytest.mark.parametrize(
    "input_dim, output_dim, vocab_modes, embed_modes, tt_rank, count",
    [
        (48, 8, (2, 2, 3, 4), (1, 2, 2, 2), (2, 3, 4), 15),
        (37, 9, None, None, 3, 5),  # 3 cores, padded on both sides
    ],
)
def test_every_lookup_plan_gives_the_rows_of_the_table(
    rng, input_dim, output_dim, vocab_modes, embed_modes, tt_rank, count
):
    # Every way of cutting the cores into tables (prefix, middle, suffix,
    # the whole table) and every order of the per-id products.
    layer = TTEmbedding(
        input_dim,
        output_dim,
        tt_rank,
        vocab_modes=vocab_modes,
        embed_modes=embed_modes,
        embeddings_initializer="random_normal",
    )
    layer.build()
    # Every id, and negative ones; 2-D ids of an even count.
    ids = np.arange(-input_dim, input_dim).reshape(2, -1)
    cores = [_numpy(c).astype(np.float64) for c in layer.cores]
    expected = naive_rows(cores, ids % input_dim)[:, :output_dim]
    plans = list(_every_plan(len(layer.cores)))
    assert len(plans) == count
    for plan in plans:
        y = _numpy(_with_plan(layer, plan)(ids))
        np.testing.assert_allclose(
            y.reshape(-1, output_dim), expected, atol=1e-5, err_msg=plan.name
        )


def test_plans_follow_the_number_of_ids():
    # BERT-base's token table at rank 32: one id runs the per-id chain,
    # 256 ids share a table of row prefixes and one of row suffixes.
    layer = TTEmbedding(30522, 768, 32)
    single = tuple((k, k + 1) for k in range(len(layer.vocab_modes)))
    assert layer.lookup_plan(1).groups == single
    many = layer.lookup_plan(256).groups
    assert len(many) == 2 and many[0][0] == 0 and many[-1][1] == 8
    assert layer.lookup_plan(None) == layer.lookup_plan(32)


@pytest.mark.parametrize("count", [1, 7, 256])
def test_large_table_lookups_equal_slice_products(rng, count):
    # The plans the layer picks for a BERT-sized table, checked against
    # products of core slices in float64.
    layer = TTEmbedding(30522, 768, 32, embeddings_initializer="random_normal")
    ids = rng.integers(-30522, 30522, size=(count,))
    ids[:2] = [30521, -30522][: min(count, 2)]
    y = _numpy(layer(ids.reshape(count, 1)))
    assert y.shape == (count, 1, 768)
    cores = [_numpy(c).astype(np.float64) for c in layer.cores]
    expected = naive_rows(cores, ids % 30522)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(y[:, 0], expected, atol=1e-5 * scale)


@pytest.mark.skipif(
    keras.backend.backend() == "jax",
    reason="JAX fills out-of-range gathers instead of raising",
)
@pytest.mark.parametrize("bad_id", [22, 23, 1000, -23])
def test_out_of_range_ids_fail_with_tables(bad_id):
    # A table of prefixes and a table of suffixes: the prefix gather
    # refuses the id.
    layer = TTEmbedding(22, 4, 2)
    assert layer.padded_input_dim == 24
    dense = keras.layers.Embedding(22, 4)
    with pytest.raises(Exception) as dense_error:  # noqa: B017
        dense(np.array([0, bad_id]))
    d = len(layer.vocab_modes)
    assert d >= 2
    _with_plan(layer, LookupPlan(((0, 1), (1, d)), (0, 1)))
    with pytest.raises(type(dense_error.value)):
        layer(np.array([0, bad_id]))
