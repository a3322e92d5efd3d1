"""The fast layout: ``in_modes="fast"`` (`keras_tt.fast_modes`) in the
layers, their configs and ``.keras`` files, and `keras_tt.tensorize`.

References are independent of the layout: ``x @ full_kernel + bias``, the
original model's outputs at full rank.
"""

import keras
import numpy as np
import pytest

import keras_tt
from keras_tt import modes as modes_lib


@pytest.mark.multibackend
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(in_modes="fast"),
        dict(out_modes="fast"),
        dict(in_modes="fast", out_modes="fast"),
    ],
)
def test_tt_dense_fast_builds_two_cores_and_matches_its_kernel(kwargs, rng):
    layer = keras_tt.TTDense(300, tt_rank=5, bias_initializer="ones", **kwargs)
    x = rng.standard_normal((4, 200)).astype("float32")
    y = keras.ops.convert_to_numpy(layer(x))
    assert (layer.in_modes, layer.out_modes) == keras_tt.fast_modes(200, 300)
    assert layer.tt_ranks == (1, 5, 1)
    expected = x.astype(np.float64) @ layer.full_kernel() + 1.0
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)


def test_fast_pads_widths_like_automatic_modes(rng):
    layer = keras_tt.TTDense(10, tt_rank=3, in_modes="fast")
    x = rng.standard_normal((2, 1021)).astype("float32")
    y = keras.ops.convert_to_numpy(layer(x))
    assert layer.padded_input_dim == 1024 and layer.in_modes == (128, 8)
    expected = x.astype(np.float64) @ layer.full_kernel()
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.multibackend
def test_fast_is_kept_in_the_config_and_the_keras_file(tmp_path, rng):
    layer = keras_tt.TTDense(96, tt_rank=4, in_modes="fast", name="tt")
    model = keras.Sequential([keras.Input((64,)), layer])
    config = layer.get_config()
    assert config["in_modes"] == "fast" and config["out_modes"] is None
    x = rng.standard_normal((3, 64)).astype("float32")
    path = tmp_path / "fast.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_layer("tt").in_modes == layer.in_modes
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(x)),
        keras.ops.convert_to_numpy(model(x)),
        rtol=1e-6,
        atol=1e-6,
    )
    again = keras_tt.TTDense.from_config(config)
    again.build((None, 64))
    assert (again.in_modes, again.out_modes) == (
        layer.in_modes,
        layer.out_modes,
    )


@pytest.mark.multibackend
def test_tt_einsum_dense_fast(rng):
    layer = keras_tt.TTEinsumDense(
        "btd,dnh->btnh", output_shape=(None, 4, 16), tt_rank=6, in_modes="fast"
    )
    x = rng.standard_normal((2, 5, 48)).astype("float32")
    y = keras.ops.convert_to_numpy(layer(x))
    assert (layer.in_modes, layer.out_modes) == keras_tt.fast_modes(48, 64)
    expected = x.astype(np.float64) @ layer.full_kernel().reshape(48, 64)
    np.testing.assert_allclose(
        y.reshape(2, 5, 64), expected, rtol=1e-4, atol=1e-4
    )


def test_from_dense_fast_at_full_rank_equals_the_dense_layer(rng):
    dense = keras.layers.Dense(40, bias_initializer="ones")
    dense.build((None, 72))
    tt = keras_tt.TTDense.from_dense(dense, tt_rank=10**4, in_modes="fast")
    assert (tt.in_modes, tt.out_modes) == keras_tt.fast_modes(72, 40)
    x = rng.standard_normal((3, 72)).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(tt(x)),
        keras.ops.convert_to_numpy(dense(x)),
        rtol=1e-4,
        atol=1e-4,
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(in_modes="fast", out_modes=(4, 8)), "'fast' on both sides"),
        (dict(in_modes=(4, 8), out_modes="fast"), "'fast' on both sides"),
        (dict(in_modes="Fast"), "or 'fast'. Received: in_modes='Fast'"),
    ],
)
@pytest.mark.parametrize("kind", ["dense", "einsum"])
def test_bad_fast_arguments_are_refused(kwargs, match, kind):
    with pytest.raises(ValueError, match=match):
        if kind == "dense":
            keras_tt.TTDense(32, tt_rank=2, **kwargs)
        else:
            keras_tt.TTEinsumDense(
                "ab,bc->ac", output_shape=32, tt_rank=2, **kwargs
            )


def test_resolve_layout_fast_ranks_are_clamped_quietly():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layout = modes_lib.resolve_layout(48, 20, 10**4, "fast", None)
    assert layout.ranks == modes_lib.max_tt_ranks(
        layout.in_modes, layout.out_modes
    )


def _mixed_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((10,), dtype="int32")
    h = keras.layers.Embedding(300, 48, name="emb")(inputs)
    h = keras.layers.MultiHeadAttention(4, 12, name="mha")(h, h)
    h = keras.layers.Conv1D(48, 3, padding="same", name="conv")(h)
    h = keras.layers.EinsumDense(
        "btd,dh->bth", output_shape=(10, 96), name="ein"
    )(h)
    outputs = keras.layers.Dense(20, name="head")(keras.layers.Flatten()(h))
    return keras.Model(inputs, outputs)


def test_tensorize_fast_for_every_layer(rng):
    model = _mixed_model()
    x = rng.integers(0, 300, size=(4, 10))
    before = [w.copy() for w in model.get_weights()]
    with pytest.warns(UserWarning, match="more than"):
        tt = keras_tt.tensorize(
            model, tt_rank=10**6, modes="fast", min_params=0, verbose=0
        )
    # Full ranks: the outputs are the original's.
    np.testing.assert_allclose(tt(x), model(x), rtol=1e-4, atol=1e-4)
    for name, shape in (("head", (960, 20)), ("ein", (48, 96))):
        layer = tt.get_layer(name)
        assert (layer.in_modes, layer.out_modes) == keras_tt.fast_modes(*shape)
    mha = tt.get_layer("mha")
    assert mha.query_dense.in_modes == keras_tt.fast_modes(48, 48)[0]
    assert mha.output_dense.out_modes == keras_tt.fast_modes(48, 48)[1]
    # Embedding and convolution keep automatic modes.
    assert len(tt.get_layer("conv").in_modes) > 2
    assert len(tt.get_layer("emb").tt_ranks) > 3
    assert all(
        np.array_equal(a, b) for a, b in zip(before, model.get_weights())
    )


@pytest.mark.parametrize("name", ["emb", "conv"])
def test_tensorize_fast_for_a_layer_that_does_not_take_it(name):
    model = _mixed_model()
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match=f"Layer '{name}'.*'fast' apply to"):
        keras_tt.tensorize(
            model, tt_rank=4, modes={name: "fast"}, min_params=0, verbose=0
        )
    assert all(
        np.array_equal(a, b) for a, b in zip(before, model.get_weights())
    )


def test_tensorize_fast_in_layer_settings(rng):
    model = _mixed_model()
    tt = keras_tt.tensorize(
        model, tt_rank=4, layers={"head": {"in_modes": "fast"}}, verbose=0
    )
    head = tt.get_layer("head")
    assert (head.in_modes, head.out_modes) == keras_tt.fast_modes(960, 20)
    with pytest.raises(ValueError, match="'fast' on both sides"):
        keras_tt.tensorize(
            model,
            tt_rank=4,
            layers={"head": {"in_modes": "fast", "out_modes": (4, 5)}},
            verbose=0,
        )
    with pytest.raises(ValueError, match="expected 'fast', a pair"):
        keras_tt.tensorize(model, tt_rank=4, modes="quick", verbose=0)


def test_tt_multi_head_attention_projection_fast(rng):
    layer = keras_tt.TTMultiHeadAttention(
        num_heads=4,
        key_dim=16,
        tt_projections={"query": {"tt_rank": 4, "in_modes": "fast"}},
    )
    x = rng.standard_normal((2, 5, 64)).astype("float32")
    y = layer(x, x)
    assert tuple(y.shape) == (2, 5, 64)
    query = layer._query_dense
    assert (query.in_modes, query.out_modes) == keras_tt.fast_modes(64, 64)
    config = layer.get_config()
    assert config["tt_projections"]["query"]["in_modes"] == "fast"
    again = type(layer).from_config(config)
    again(x, x)
    assert again._query_dense.in_modes == query.in_modes


def test_whole_model_budget_with_fast_modes(rng):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((256,)),
            keras.layers.Dense(256, activation="relu", name="a"),
            keras.layers.Dense(128, name="b"),
        ]
    )
    x = rng.standard_normal((64, 256)).astype("float32")
    tt = keras_tt.tensorize(
        model,
        model_ratio=8,
        calibration_data=x,
        modes="fast",
        min_params=0,
        verbose=0,
    )
    for name, shape in (("a", (256, 256)), ("b", (256, 128))):
        layer = tt.get_layer(name)
        assert (layer.in_modes, layer.out_modes) == keras_tt.fast_modes(*shape)
    dense_params = sum(layer.count_params() for layer in model.layers)
    tt_params = sum(layer.count_params() for layer in tt.layers)
    assert dense_params / tt_params >= 8
