"""TTConv1D / TTConv2D: the Conv contract, against Keras's own convolutions.

The reference is always an independent computation: the original Keras
convolution (full TT-ranks reproduce its kernel exactly), or a Keras
convolution whose kernel is the layer's `full_kernel()` (low ranks), or the
kernel rebuilt from the cores in NumPy.
"""

import math

import keras
import numpy as np
import pytest
from keras.src.testing import test_case
from tt_reference import naive_full_matrix

import keras_tt
from keras_tt import TTConv1D
from keras_tt import TTConv2D

pytestmark = pytest.mark.multibackend

FULL = 10_000  # a rank cap above every bond's largest useful rank


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _conv_with_kernel(layer, conv_cls):
    """A Keras convolution with the TT layer's config and full kernel."""
    conv = conv_cls(
        layer.filters,
        layer.kernel_size,
        strides=layer.strides,
        padding=layer.padding,
        data_format=layer.data_format,
        dilation_rate=layer.dilation_rate,
        use_bias=layer.use_bias,
        activation=layer.activation,
    )
    shape = [None] * (layer.rank + 2)
    shape[-1 if layer.data_format == "channels_last" else 1] = (
        layer.input_channels
    )
    conv.build(tuple(shape))
    conv.kernel.assign(layer.full_kernel())
    if layer.use_bias:
        conv.bias.assign(_np(layer.bias))
    return conv


CONV2D_CASES = [
    # kernel_size, strides, padding, dilation, c_in, c_out, data_format
    ((3, 3), (1, 1), "same", (1, 1), 16, 32, "channels_last"),
    ((3, 3), (2, 2), "same", (1, 1), 12, 20, "channels_last"),
    ((3, 3), (2, 1), "valid", (1, 1), 11, 9, "channels_last"),
    ((1, 1), (1, 1), "valid", (1, 1), 24, 36, "channels_last"),
    ((1, 1), (2, 2), "same", (1, 1), 16, 8, "channels_last"),
    ((3, 1), (1, 1), "valid", (2, 2), 8, 16, "channels_last"),
    ((5, 5), (1, 1), "same", (2, 1), 6, 10, "channels_first"),
    ((1, 1), (1, 1), "valid", (1, 1), 16, 16, "channels_first"),
]


@pytest.mark.parametrize(
    "kernel_size,strides,padding,dilation,c_in,c_out,data_format",
    CONV2D_CASES,
)
def test_full_rank_from_conv_equals_conv2d(
    rng, kernel_size, strides, padding, dilation, c_in, c_out, data_format
):
    conv = keras.layers.Conv2D(
        c_out,
        kernel_size,
        strides=strides,
        padding=padding,
        dilation_rate=dilation,
        data_format=data_format,
        bias_initializer="random_normal",
        activation="relu",
    )
    shape = (
        (2, 13, 11, c_in)
        if data_format == "channels_last"
        else (2, c_in, 13, 11)
    )
    x = rng.standard_normal(shape).astype("float32")
    conv.build(shape)
    if data_format == "channels_last":
        expected = _np(conv(x))
    else:
        # TensorFlow's CPU Conv2D runs only NHWC with a dilation: the
        # reference is the channels-last convolution with the same weights.
        reference = keras.layers.Conv2D.from_config(
            {**conv.get_config(), "data_format": "channels_last"}
        )
        reference.build((2, 13, 11, c_in))
        reference.set_weights(conv.get_weights())
        expected = _np(reference(np.transpose(x, (0, 2, 3, 1))))
        expected = np.transpose(expected, (0, 3, 1, 2))
    tt = TTConv2D.from_conv(conv, tt_rank=FULL)
    np.testing.assert_allclose(
        tt.full_kernel(), _np(conv.kernel), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(_np(tt(x)), expected, rtol=1e-4, atol=1e-4)
    assert tt.compute_output_shape(shape) == expected.shape
    assert tt.name == conv.name


@pytest.mark.parametrize("padding", ["valid", "same", "causal"])
def test_full_rank_from_conv_equals_conv1d(rng, padding):
    conv = keras.layers.Conv1D(
        24, 4, padding=padding, dilation_rate=2, bias_initializer="ones"
    )
    x = rng.standard_normal((3, 17, 12)).astype("float32")
    expected = _np(conv(x))
    tt = TTConv1D.from_conv(conv, tt_rank=FULL)
    np.testing.assert_allclose(_np(tt(x)), expected, rtol=1e-4, atol=1e-4)
    assert tt.compute_output_shape(x.shape) == expected.shape
    assert tt.full_kernel().shape == (4, 12, 24)


@pytest.mark.parametrize(
    "kernel_size,strides,padding,dilation,c_in,c_out,data_format",
    CONV2D_CASES[:5],
)
def test_low_rank_layer_is_the_conv_of_its_full_kernel(
    rng, kernel_size, strides, padding, dilation, c_in, c_out, data_format
):
    layer = TTConv2D(
        c_out,
        kernel_size,
        tt_rank=3,
        strides=strides,
        padding=padding,
        dilation_rate=dilation,
        data_format=data_format,
        bias_initializer="random_normal",
    )
    x = rng.standard_normal((2, 10, 9, c_in)).astype("float32")
    y = _np(layer(x))
    reference = _np(_conv_with_kernel(layer, keras.layers.Conv2D)(x))
    np.testing.assert_allclose(y, reference, rtol=1e-4, atol=1e-4)


def test_full_kernel_is_the_cores_matrix_read_channel_first():
    layer = TTConv2D(8, (3, 2), tt_rank=4, in_modes=(2, 3), out_modes=(4, 2))
    layer.build((None, 5, 5, 6))
    assert layer.chain_in_modes == (2, 3, 6, 1, 1)
    assert layer.chain_out == (1, 1, 1, 4, 2)
    matrix = naive_full_matrix([_np(c) for c in layer.cores])  # (6*6, 8)
    kernel = matrix.reshape(6, 3, 2, 8).transpose(1, 2, 0, 3)
    np.testing.assert_allclose(layer.full_kernel(), kernel, atol=1e-6)
    cores = sum(math.prod(c.shape) for c in layer.cores)
    assert layer.num_core_params == cores
    assert layer.compression_ratio == pytest.approx(3 * 2 * 6 * 8 / cores)


def test_pointwise_layer_is_a_matrix_product_at_every_pixel(rng):
    layer = TTConv2D(48, 1, tt_rank=5)
    x = rng.standard_normal((2, 4, 5, 32)).astype("float32")
    y = _np(layer(x))
    assert layer.is_pointwise
    assert (layer.in_modes, layer.out_modes) == ((4, 4, 2), (4, 4, 3))
    assert layer.chain_in_modes == (4, 4, 2, 1, 1, 1, 1)
    w = naive_full_matrix([_np(c) for c in layer.cores])
    np.testing.assert_allclose(y, x @ w, rtol=1e-4, atol=1e-4)


def test_padded_channels_are_transparent(rng):
    conv = keras.layers.Conv2D(13, 3, padding="same")
    x = rng.standard_normal((2, 6, 6, 11)).astype("float32")
    expected = _np(conv(x))
    tt = TTConv2D.from_conv(conv, tt_rank=FULL)
    assert tt.padded_input_channels == 12 and tt.padded_filters == 14
    assert tt.full_kernel().shape == (3, 3, 11, 13)
    np.testing.assert_allclose(_np(tt(x)), expected, rtol=1e-4, atol=1e-4)


def test_from_conv_rel_error_and_rank_cap(rng):
    conv = keras.layers.Conv2D(32, 3)
    conv.build((None, 8, 8, 32))
    kernel = _np(conv.kernel)
    tt = TTConv2D.from_conv(conv, rel_error=0.5)
    error = np.linalg.norm(tt.full_kernel() - kernel) / np.linalg.norm(kernel)
    assert error <= 0.5 + 1e-6
    capped = TTConv2D.from_conv(conv, tt_rank=2)
    assert max(capped.tt_ranks) == 2
    assert capped.compression_ratio > tt.compression_ratio


def test_save_and_load_keras_file(tmp_path, rng):
    model = keras.Sequential(
        [
            keras.Input((8, 8, 6)),
            TTConv2D(8, 3, tt_rank=3, padding="same", activation="relu"),
            TTConv2D(12, 1, tt_rank=2, strides=2, in_modes=(2, 4)),
            keras.layers.Reshape((16, 12)),
            TTConv1D(5, 3, tt_rank=2, padding="causal"),
        ]
    )
    x = rng.standard_normal((2, 8, 8, 6)).astype("float32")
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        _np(loaded(x)), _np(model(x)), rtol=1e-5, atol=1e-5
    )
    assert loaded.layers[1].in_modes == (2, 4)
    assert isinstance(loaded.layers[3], TTConv1D)


def test_run_layer_test_contract():
    """Keras's own layer checks: build, symbolic and eager calls, training,
    serialization round trip and mixed precision."""
    case = test_case.TestCase()
    case.run_layer_test(
        TTConv2D,
        init_kwargs={
            "filters": 6,
            "kernel_size": 3,
            "tt_rank": 2,
            "padding": "same",
            "activation": "relu",
        },
        input_shape=(2, 5, 5, 4),
        expected_output_shape=(2, 5, 5, 6),
        # Two input cores, the spatial core, two output cores, the bias.
        expected_num_trainable_weights=6,
        expected_num_non_trainable_weights=0,
    )
    case.run_layer_test(
        TTConv1D,
        init_kwargs={"filters": 4, "kernel_size": 1, "tt_rank": 2},
        input_shape=(2, 7, 6),
        expected_output_shape=(2, 7, 4),
        # Modes (3, 2) x (2, 2): five cores and the bias.
        expected_num_trainable_weights=6,
        expected_num_non_trainable_weights=0,
    )


def test_trains(rng):
    model = keras.Sequential(
        [
            keras.Input((6, 6, 4)),
            TTConv2D(8, 3, tt_rank=3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(1),
        ]
    )
    model.compile("adam", "mse")
    x = rng.standard_normal((32, 6, 6, 4)).astype("float32")
    y = rng.standard_normal((32, 1)).astype("float32")
    before = [_np(c).copy() for c in model.layers[0].cores]
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    after = [_np(c) for c in model.layers[0].cores]
    assert all(not np.allclose(a, b) for a, b in zip(before, after))


@pytest.mark.parametrize(
    "kwargs,argument",
    [
        ({"kernel_size": (3, 3, 3)}, "kernel_size"),
        ({"kernel_size": 0}, "kernel_size"),
        ({"strides": (1, 2, 1)}, "strides"),
        ({"dilation_rate": (1,)}, "dilation_rate"),
        ({"padding": "causal"}, "padding"),
        ({"padding": "full"}, "padding"),
        ({"groups": 2}, "groups"),
        ({"data_format": "nhwc"}, "data_format"),
        ({"tt_rank": 0}, "tt_rank"),
        ({"filters": 0}, "filters"),
        ({"out_modes": (3, 3)}, "out_modes"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, argument):
    arguments = {"filters": 8, "kernel_size": 3, "tt_rank": 2, **kwargs}
    with pytest.raises(ValueError, match=f"`{argument}`"):
        TTConv2D(**arguments)


def test_from_conv_refuses_what_it_cannot_stand_for():
    grouped = keras.layers.Conv2D(8, 3, groups=2)
    grouped.build((None, 6, 6, 8))
    with pytest.raises(ValueError, match="grouped"):
        TTConv2D.from_conv(grouped, tt_rank=2)
    depthwise = keras.layers.DepthwiseConv2D(3)
    depthwise.build((None, 6, 6, 8))
    with pytest.raises(ValueError, match="expected a `keras.layers.Conv2D`"):
        TTConv2D.from_conv(depthwise, tt_rank=2)
    with pytest.raises(ValueError, match="not built"):
        TTConv2D.from_conv(keras.layers.Conv2D(8, 3), tt_rank=2)
    conv1d = keras.layers.Conv1D(8, 3)
    conv1d.build((None, 6, 8))
    with pytest.raises(ValueError, match="expected a `keras.layers.Conv2D`"):
        TTConv2D.from_conv(conv1d, tt_rank=2)
    with pytest.raises(ValueError, match="tt_rank"):
        TTConv1D.from_conv(conv1d)
    assert isinstance(keras_tt.TTConv1D.from_conv(conv1d, 2), TTConv1D)


def test_wrong_input_rank_is_refused():
    layer = TTConv2D(4, 3, tt_rank=2)
    with pytest.raises(ValueError, match="rank 4"):
        layer.build((None, 5, 3))
