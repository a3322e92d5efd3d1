"""TTDense: outputs, gradients, training, serialization, errors."""

import math
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.src.testing import test_case
from tt_reference import naive_full_matrix

import keras_tt
from keras_tt import TTDense


def _reference_output(layer, x):
    """``x @ W + b`` with W rebuilt entry by entry from the layer's cores."""
    cores = [
        keras.ops.convert_to_numpy(c).astype(np.float64) for c in layer.cores
    ]
    w = naive_full_matrix(cores)[: layer.input_dim, : layer.units]
    y = x.astype(np.float64) @ w
    if layer.use_bias:
        y = y + keras.ops.convert_to_numpy(layer.bias)
    return y


CASES = [
    # (in_modes, out_modes, tt_rank)
    ((6,), (5,), 1),
    ((4, 3), (2, 5), 3),
    ((2, 3, 2), (3, 1, 2), (2, 4)),
    ((2, 2, 3, 2), (1, 3, 2, 2), 2),
    ((2, 2, 2, 2, 2), (2, 1, 2, 1, 2), 3),
    ((2, 1, 2, 3, 2, 2), (2, 2, 1, 2, 1, 2), (2, 2, 3, 2, 2)),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batch_shape", [(4,), (2, 3), (2, 1, 3)])
@pytest.mark.parametrize("in_modes, out_modes, tt_rank", CASES)
def test_output_equals_x_times_full_matrix_plus_bias(
    rng, in_modes, out_modes, tt_rank, batch_shape, dtype
):
    layer = TTDense(
        math.prod(out_modes),
        tt_rank,
        in_modes=in_modes,
        out_modes=out_modes,
        bias_initializer="random_normal",
        dtype=dtype,
    )
    x = rng.standard_normal(batch_shape + (math.prod(in_modes),)).astype(dtype)
    y = layer(x)
    assert y.dtype == dtype
    assert tuple(y.shape) == batch_shape + (math.prod(out_modes),)
    tol = 1e-10 if dtype == "float64" else 1e-4
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(y),
        _reference_output(layer, x),
        rtol=tol,
        atol=tol,
    )


def test_run_layer_test_contract():
    """Keras's own layer checks: build, symbolic and eager calls, training,
    serialization round trip and mixed precision."""
    case = test_case.TestCase()
    case.run_layer_test(
        TTDense,
        init_kwargs={"units": 12, "tt_rank": 3, "activation": "relu"},
        input_shape=(2, 3, 20),
        expected_output_shape=(2, 3, 12),
        expected_num_trainable_weights=3,  # two cores and the bias
        expected_num_non_trainable_weights=0,
        supports_masking=True,
    )


def test_auto_modes_and_padding_are_transparent(rng):
    layer = TTDense(11, tt_rank=4, activation="relu")
    x = rng.standard_normal((5, 1021)).astype("float32")
    y = keras.ops.convert_to_numpy(layer(x))
    assert layer.padded_input_dim == 1024 and layer.padded_units == 12
    assert math.prod(layer.in_modes) == 1024
    assert y.shape == (5, 11)
    np.testing.assert_allclose(
        y, np.maximum(_reference_output(layer, x), 0), rtol=1e-4, atol=1e-4
    )
    assert layer.full_kernel().shape == (1021, 11)
    assert layer.compression_ratio == pytest.approx(
        1021 * 11 / sum(np.prod(c.shape) for c in layer.cores)
    )


def test_paper_layer_shapes_and_compression():
    layer = TTDense(
        4096, tt_rank=4, in_modes=(2, 7, 8, 8, 7, 4), out_modes=(4,) * 6
    )
    layer.build((None, 25088))
    assert [tuple(c.shape) for c in layer.cores] == [
        (1, 2, 4, 4),
        (4, 7, 4, 4),
        (4, 8, 4, 4),
        (4, 8, 4, 4),
        (4, 7, 4, 4),
        (4, 4, 4, 1),
    ]
    assert layer.num_core_params == 2016
    assert round(layer.compression_ratio) == 50972
    assert layer.tt_ranks == (1, 4, 4, 4, 4, 4, 1)


def test_rank_above_useful_maximum_is_clamped_with_warning():
    layer = TTDense(6, tt_rank=50, in_modes=(2, 3), out_modes=(3, 2))
    with pytest.warns(
        UserWarning, match=r"exceeds the largest useful TT-ranks \(6,\)"
    ):
        layer.build((None, 6))
    assert layer.tt_ranks == (1, 6, 1)
    # The config keeps the ranks in use, so a reload does not warn again.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clone = TTDense.from_config(layer.get_config())
        clone.build((None, 6))
    assert clone.tt_ranks == (1, 6, 1)


def test_per_bond_ranks():
    layer = TTDense(8, tt_rank=[2, 3], in_modes=(2, 2, 2), out_modes=(2, 2, 2))
    layer.build((None, 8))
    assert layer.tt_ranks == (1, 2, 3, 1)


def test_gradients_match_finite_differences(rng):
    layer = TTDense(
        6,
        tt_rank=2,
        in_modes=(2, 3, 2),
        out_modes=(3, 1, 2),
        activation="tanh",
        dtype="float64",
    )
    x = tf.constant(rng.standard_normal((3, 12)))
    layer(x)
    target = tf.constant(rng.standard_normal((3, 6)))

    def loss():
        return tf.reduce_sum((layer(x) - target) ** 2)

    with tf.GradientTape() as tape:
        value = loss()
    grads = tape.gradient(value, [v.value for v in layer.trainable_variables])
    eps = 1e-6
    for variable, grad in zip(layer.trainable_variables, grads):
        flat = variable.numpy().ravel()
        for index in range(0, flat.size, max(1, flat.size // 7)):
            shifted = flat.copy()
            shifted[index] += eps
            variable.assign(shifted.reshape(variable.shape))
            plus = loss().numpy()
            shifted[index] -= 2 * eps
            variable.assign(shifted.reshape(variable.shape))
            minus = loss().numpy()
            variable.assign(flat.reshape(variable.shape))
            numeric = (plus - minus) / (2 * eps)
            assert grad.numpy().ravel()[index] == pytest.approx(
                numeric, rel=1e-5, abs=1e-7
            )


def test_fit_reduces_the_loss(rng):
    """A TT student learns a TT teacher of the same shape."""
    keras.utils.set_random_seed(0)
    teacher = TTDense(16, tt_rank=4)
    x = rng.standard_normal((512, 64)).astype("float32")
    y = keras.ops.convert_to_numpy(teacher(x))
    model = keras.Sequential([keras.Input((64,)), TTDense(16, tt_rank=4)])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    after = model.evaluate(x, y, verbose=0)
    assert after < 0.2 * before


def _model(rng_seed=0):
    keras.utils.set_random_seed(rng_seed)
    return keras.Sequential(
        [
            keras.Input((784,)),
            TTDense(64, tt_rank=8, activation="relu"),
            TTDense(
                10,
                tt_rank=4,
                in_modes=(4, 4, 4),
                out_modes=(1, 10, 1),
                kernel_regularizer="l2",
            ),
        ]
    )


def test_save_and_load_keras_file_gives_identical_outputs(tmp_path, rng):
    model = _model()
    x = rng.standard_normal((3, 784)).astype("float32")
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)  # safe_mode=True, no custom_objects
    assert isinstance(loaded.layers[0], TTDense)
    assert loaded.layers[1].in_modes == (4, 4, 4)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded(x)),
        keras.ops.convert_to_numpy(model(x)),
    )


def test_config_round_trip():
    layer = TTDense(
        20,
        tt_rank=[2, 3],
        in_modes=(2, 3, 5),
        out_modes=(5, 2, 2),
        activation="gelu",
        use_bias=False,
        kernel_initializer="he_normal",
        kernel_regularizer="l2",
        kernel_constraint="max_norm",
        name="fc",
    )
    config = layer.get_config()
    assert config["tt_rank"] == [2, 3]
    assert config["in_modes"] == [2, 3, 5]
    clone = TTDense.from_config(config)
    assert clone.get_config() == config
    json_config = keras.saving.serialize_keras_object(layer)
    assert json_config["registered_name"] == "keras_tt>TTDense"


def test_savedmodel_export(tmp_path, rng):
    model = _model()
    x = rng.standard_normal((2, 784)).astype("float32")
    model.export(str(tmp_path / "saved"), verbose=False)
    reloaded = tf.saved_model.load(str(tmp_path / "saved"))
    np.testing.assert_allclose(
        reloaded.serve(tf.constant(x)).numpy(),
        keras.ops.convert_to_numpy(model(x)),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.parametrize("jit_compile", [False, True])
def test_graph_and_xla_match_eager(rng, jit_compile):
    layer = TTDense(24, tt_rank=3, activation="relu")
    x = tf.constant(rng.standard_normal((5, 7, 30)).astype("float32"))
    eager = layer(x).numpy()
    compiled = tf.function(layer, jit_compile=jit_compile)
    np.testing.assert_allclose(compiled(x).numpy(), eager, rtol=1e-5, atol=1e-5)


def test_unknown_inner_axes_are_supported(rng):
    layer = TTDense(12, tt_rank=2)
    fn = tf.function(
        layer, input_signature=[tf.TensorSpec((None, None, 20), tf.float32)]
    )
    x = rng.standard_normal((2, 5, 20)).astype("float32")
    np.testing.assert_allclose(
        fn(x).numpy(), layer(x).numpy(), rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(rng, policy):
    layer = TTDense(32, tt_rank=4, dtype=policy)
    x = rng.standard_normal((4, 48)).astype("float32")
    y = layer(x)
    assert layer.cores[0].dtype == "float32"
    assert y.dtype == policy.split("_")[1]
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(y).astype("float64"),
        _reference_output(layer, x),
        rtol=0.05,
        atol=0.05,
    )


def test_glorot_variance_of_the_full_matrix():
    keras.utils.set_random_seed(3)
    layer = TTDense(
        1024, tt_rank=8, in_modes=(4, 8, 8, 4), out_modes=(4, 8, 8, 4)
    )
    layer.build((None, 1024))
    assert np.var(layer.full_kernel()) == pytest.approx(2 / 2048, rel=0.25)
    he = TTDense(
        1024,
        tt_rank=8,
        in_modes=(4, 8, 8, 4),
        out_modes=(4, 8, 8, 4),
        kernel_initializer="he_normal",
    )
    he.build((None, 1024))
    assert np.var(he.full_kernel()) == pytest.approx(2 / 1024, rel=0.25)


def test_deep_relu_stack_keeps_activation_scale(rng):
    """He-initialised TT layers keep the signal alive through depth."""
    keras.utils.set_random_seed(5)
    x = rng.standard_normal((256, 512)).astype("float32")
    h = x
    for _ in range(8):
        h = TTDense(
            512, tt_rank=8, activation="relu", kernel_initializer="he_normal"
        )(h)
    ratio = float(np.mean(np.square(h))) / float(np.mean(np.square(x)))
    assert 0.2 < ratio < 5.0


def test_seeded_initializer_is_reproducible_and_cores_differ():
    def cores(seed):
        layer = TTDense(
            16,
            tt_rank=2,
            in_modes=(4, 4),
            out_modes=(4, 4),
            kernel_initializer=keras_tt.TTVarianceScaling(seed=seed),
        )
        layer.build((None, 16))
        return [c.numpy() for c in layer.cores]

    a, b = cores(7), cores(7)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.allclose(a[0].ravel()[:8], a[1].ravel()[:8])


def test_input_of_wrong_width_is_rejected():
    layer = TTDense(10, tt_rank=2)
    layer(np.zeros((1, 64), "float32"))
    with pytest.raises(
        ValueError, match="expected axis -1 of input shape to have value 64"
    ):
        layer(np.zeros((1, 65), "float32"))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"units": 0, "tt_rank": 2},
            "Received an invalid value for `units`, expected a positive "
            "integer. Received: units=0",
        ),
        ({"units": 2.5, "tt_rank": 2}, "Received: units=2.5"),
        (
            {"units": 4, "tt_rank": 0},
            r"Received an invalid value for `tt_rank`, expected a positive "
            r"integer or a sequence of positive integers \(one per inner "
            r"bond\). Received: tt_rank=0",
        ),
        ({"units": 4, "tt_rank": 1.5}, "Received: tt_rank=1.5"),
        ({"units": 4, "tt_rank": [2, 0]}, r"Received: tt_rank=\[2, 0\]"),
        (
            {"units": 4, "tt_rank": [2, 2], "out_modes": (2, 2)},
            r"expected one integer or a sequence of 1 inner ranks for 2 "
            r"cores .* Received: tt_rank=\(2, 2\)",
        ),
        (
            {"units": 10, "tt_rank": 2, "out_modes": (2, 3)},
            r"`out_modes`, expected modes whose product equals 10, but "
            r"their product is 6. Received: out_modes=\(2, 3\)",
        ),
        (
            {"units": 4, "tt_rank": 2, "in_modes": (2, 0)},
            r"`in_modes`, expected a non-empty sequence of positive "
            r"integers or 'fast'. Received: in_modes=\(2, 0\)",
        ),
        (
            {"units": 4, "tt_rank": 2, "in_modes": "abc"},
            "Received: in_modes='abc'",
        ),
        (
            {
                "units": 8,
                "tt_rank": 2,
                "in_modes": (2, 2),
                "out_modes": (2, 2, 2),
            },
            r"expected sequences of the same length. Received: "
            r"in_modes=\(2, 2\) \(length 2\), "
            r"out_modes=\(2, 2, 2\) \(length 3\)",
        ),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TTDense(**kwargs)


def test_in_modes_not_matching_input_width_is_rejected_at_build():
    layer = TTDense(4, tt_rank=2, in_modes=(4, 4))
    with pytest.raises(
        ValueError,
        match=r"expected modes whose product equals 20, but their product "
        r"is 16. Received: in_modes=\(4, 4\)",
    ):
        layer.build((None, 20))


def test_properties_need_a_built_layer():
    layer = TTDense(4, tt_rank=2)
    with pytest.raises(
        ValueError,
        match="`compression_ratio` is only known once the layer is built",
    ):
        _ = layer.compression_ratio


@pytest.mark.parametrize(
    "kwargs, input_dim, expected_in, expected_out",
    [
        ({"units": 11, "in_modes": (4, 4)}, 16, (4, 4), (4, 3)),
        ({"units": 12, "out_modes": (3, 4)}, 13, (7, 2), (3, 4)),
    ],
)
def test_one_side_given_splits_and_pads_the_other(
    rng, kwargs, input_dim, expected_in, expected_out
):
    layer = TTDense(tt_rank=3, **kwargs)
    x = rng.standard_normal((3, input_dim)).astype("float32")
    y = keras.ops.convert_to_numpy(layer(x))
    assert (layer.in_modes, layer.out_modes) == (expected_in, expected_out)
    np.testing.assert_allclose(
        y, _reference_output(layer, x), rtol=1e-4, atol=1e-4
    )
