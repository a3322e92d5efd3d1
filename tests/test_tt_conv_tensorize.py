"""`tensorize` on convolutional models: selection, report, skips, export."""

import warnings

import keras
import numpy as np
import pytest

import keras_tt
from keras_tt import TTConv1D
from keras_tt import TTConv2D
from keras_tt import tensorize


def _cnn():
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(16, 3, padding="same", name="stem")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU()(x)
    y = keras.layers.Conv2D(32, 3, padding="same", name="conv3x3")(x)
    y = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(y)
    y = keras.layers.Conv2D(32, 1, strides=2, name="pointwise")(y)
    s = keras.layers.Conv2D(32, 1, strides=2, name="shortcut")(x)
    y = keras.layers.Add()([y, s])
    y = keras.layers.Conv2D(8, 3, groups=4, name="grouped")(y)
    y = keras.layers.GlobalAveragePooling2D()(y)
    outputs = keras.layers.Dense(5, name="head")(y)
    return keras.Model(inputs, outputs)


def _randomise_biases(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if getattr(layer, "bias", None) is not None:
            layer.bias.assign(rng.normal(0, 0.1, size=layer.bias.shape))


def test_full_rank_tensorize_reproduces_the_model_and_reports_each_kernel(
    rng,
):
    model = _cnn()
    _randomise_biases(model)
    x = rng.standard_normal((2, 12, 12, 3)).astype("float32")
    before = [w.copy() for w in model.get_weights()]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tt_model = tensorize(model, tt_rank=10_000, min_params=256, verbose=0)
    messages = " ".join(str(w.message) for w in caught)
    assert "['dw']" in messages and "depthwise" in messages
    assert "['grouped']" in messages and "grouped" in messages
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(tt_model(x)),
        keras.ops.convert_to_numpy(model(x)),
        rtol=1e-4,
        atol=1e-4,
    )
    kinds = {r.name: r.kind for r in tt_model.tensorize_report.layers}
    assert kinds == {
        "stem": "Conv2D 3x3",
        "conv3x3": "Conv2D 3x3",
        "pointwise": "Conv2D 1x1",
        "shortcut": "Conv2D 1x1",
    }
    for record in tt_model.tensorize_report.layers:
        layer = tt_model.get_layer(record.name)
        if isinstance(layer, TTConv2D):
            assert record.dense_params == np.prod(layer.kernel_shape)
            assert record.tt_params == layer.num_core_params
    assert isinstance(tt_model.get_layer("dw"), keras.layers.DepthwiseConv2D)
    assert isinstance(tt_model.get_layer("grouped"), keras.layers.Conv2D)
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)  # the original is untouched


def test_default_min_params_selects_by_kernel_entries():
    model = _cnn()
    tt_model = tensorize(model, tt_rank=4, min_params=4 * 16 * 32, verbose=0)
    names = [r.name for r in tt_model.tensorize_report.layers]
    # conv3x3 holds 3*3*16*32 = 4608 entries; the 1x1 kernels 512 and 1024.
    assert names == ["conv3x3"]


def test_target_ratio_is_met_on_the_conv_layout():
    model = _cnn()
    tt_model = tensorize(
        model, target_ratio=4, layers=["conv3x3", "shortcut"], verbose=0
    )
    for record in tt_model.tensorize_report.layers:
        assert record.compression_ratio >= 4
    report = keras_tt.model_report(tt_model)
    assert [r.name for r in report.layers] == ["conv3x3", "shortcut"]


def test_conv1d_models_and_keras_file_round_trip(tmp_path, rng):
    model = keras.Sequential(
        [
            keras.Input((20, 16)),
            keras.layers.Conv1D(32, 5, padding="causal", name="c1"),
            keras.layers.Conv1D(32, 3, strides=2, name="c2"),
        ]
    )
    tt_model = tensorize(model, tt_rank=4, min_params=1, verbose=0)
    assert all(isinstance(layer, TTConv1D) for layer in tt_model.layers)
    x = rng.standard_normal((2, 20, 16)).astype("float32")
    path = tmp_path / "tt.keras"
    tt_model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(x)),
        keras.ops.convert_to_numpy(tt_model(x)),
        rtol=1e-5,
        atol=1e-5,
    )


def test_unbuilt_conv_fails_before_any_work():
    model = keras.Sequential([keras.layers.Conv2D(8, 3, name="c")])
    with pytest.raises(ValueError):
        tensorize(model, tt_rank=2, layers=["c"], verbose=0)


def test_modes_factor_the_channels_of_a_convolution(rng):
    model = _cnn()
    _randomise_biases(model)
    x = rng.normal(size=(2, 12, 12, 3)).astype("float32")
    modes = {
        "conv3x3": ((4, 4), (8, 4)),
        "pointwise": ((2, 16), (4, 8)),
        "head": ((2, 4), (5, 1)),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tt_model = tensorize(
            model, tt_rank=10**6, layers=list(modes), modes=modes, verbose=0
        )
    for name, (in_modes, out_modes) in modes.items():
        layer = tt_model.get_layer(name)
        assert (layer.in_modes, layer.out_modes) == (in_modes, out_modes)
    np.testing.assert_allclose(tt_model(x), model(x), atol=1e-4)
    # The rank meets the ratio on the chain of the given channel modes.
    tt_model = tensorize(
        model,
        target_ratio=3,
        layers=["conv3x3"],
        modes={"conv3x3": ((4, 4), (8, 4))},
        verbose=0,
    )
    layer = tt_model.get_layer("conv3x3")
    assert layer.in_modes == (4, 4) and layer.compression_ratio >= 3
    bigger = TTConv2D.from_conv(
        model.get_layer("conv3x3"),
        tt_rank=max(layer.tt_ranks) + 1,
        in_modes=(4, 4),
        out_modes=(8, 4),
    )
    assert bigger.compression_ratio < 3


def test_modes_that_do_not_factor_the_channels_are_refused(rng):
    model = _cnn()
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError) as info:
        # (4, 36) factors the 3x3 kernel's 144 rows, not its 16 channels.
        tensorize(
            model,
            tt_rank=4,
            layers=["conv3x3"],
            modes={"conv3x3": ((4, 36), (8, 4))},
            verbose=0,
        )
    message = str(info.value)
    assert "Layer 'conv3x3' (3x3 kernel, 16 -> 32 channels)" in message
    assert "in_modes=(4, 36)" in message
    for got, expected in zip(model.get_weights(), before):
        np.testing.assert_array_equal(got, expected)
