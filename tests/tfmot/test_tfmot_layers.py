"""tf_keras TTDense: outputs, training, serialization, conversion, errors.

Runs in the tfmot process (``make test-tfmot``), never in the fast suite.
"""

import math

import numpy as np
import pytest

tf_keras = pytest.importorskip("tf_keras")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from tt_reference import naive_full_matrix  # noqa: E402

import keras_tt  # noqa: E402
from keras_tt.tf_keras import TTDense  # noqa: E402
from keras_tt.tf_keras import dense_to_tt_dense  # noqa: E402

pytestmark = pytest.mark.tfmot

CASES = [
    # (input_dim, units, in_modes, out_modes, tt_rank)
    (6, 5, (6,), (5,), 1),
    (12, 10, (4, 3), (2, 5), 3),
    (12, 12, (2, 3, 2), (3, 2, 2), (2, 4)),
    (48, 24, (2, 2, 3, 4), (1, 3, 2, 4), 2),
    (97, 13, None, None, 3),  # padded on both sides
]


def _reference(layer, x):
    cores = [np.asarray(c, np.float64) for c in layer.cores]
    w = naive_full_matrix(cores)[: layer.input_dim, : layer.units]
    return x.astype(np.float64) @ w + np.asarray(layer.bias)


@pytest.mark.parametrize("batch_shape", [(4,), (2, 3)])
@pytest.mark.parametrize("input_dim, units, in_modes, out_modes, rank", CASES)
def test_output_equals_x_times_full_matrix_plus_bias(
    rng, input_dim, units, in_modes, out_modes, rank, batch_shape
):
    layer = TTDense(
        units,
        rank,
        in_modes=in_modes,
        out_modes=out_modes,
        bias_initializer="random_normal",
    )
    x = rng.standard_normal(batch_shape + (input_dim,)).astype("float32")
    y = layer(x).numpy()
    assert y.shape == batch_shape + (units,)
    np.testing.assert_allclose(y, _reference(layer, x), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        layer.full_kernel(),
        naive_full_matrix([np.asarray(c) for c in layer.cores])[
            :input_dim, :units
        ],
        atol=1e-5,
    )


def test_same_layout_and_output_as_the_keras3_layer(rng):
    # Keras 3 and tf_keras share this process: both layers, given the same
    # cores, pick the same modes and ranks and compute the same outputs.
    tk = TTDense(60, 4, activation="relu")
    k3 = keras_tt.TTDense(60, 4, activation="relu")
    x = rng.standard_normal((5, 200)).astype("float32")
    tk.build((None, 200))
    k3.build((None, 200))
    assert (tk.in_modes, tk.out_modes, tk.tt_ranks) == (
        k3.in_modes,
        k3.out_modes,
        k3.tt_ranks,
    )
    k3.set_weights(tk.get_weights())
    np.testing.assert_allclose(
        tk(x).numpy(), keras.ops.convert_to_numpy(k3(x)), rtol=1e-5, atol=1e-6
    )


def test_glorot_initialiser_targets_the_full_matrix_variance():
    layer = TTDense(
        1024,
        8,
        in_modes=(8, 8, 16),
        out_modes=(8, 8, 16),
        kernel_initializer=tf_keras.initializers.GlorotNormal(seed=3),
    )
    layer.build((None, 1024))
    variance = layer.full_kernel().var()
    target = 1.0 / 1024
    assert 0.7 * target < variance < 1.4 * target
    # Core by core: the standard deviation TTVarianceScaling prescribes.
    expected = keras_tt.TTVarianceScaling(
        mode="fan_avg", distribution="truncated_normal"
    ).core_stddev(1024, 1024, layer.tt_ranks)
    for core in layer.cores:
        assert abs(np.std(core) / expected - 1) < 0.1


def test_training_reduces_the_loss(rng):
    x = rng.standard_normal((256, 64)).astype("float32")
    w = rng.standard_normal((64, 8)).astype("float32")
    y = x @ w
    model = tf_keras.Sequential(
        [
            tf_keras.Input((64,)),
            TTDense(8, 4, in_modes=(8, 8), out_modes=(2, 4)),
        ]
    )
    model.compile(tf_keras.optimizers.Adam(0.02), "mse")
    first = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=20, verbose=0)
    assert model.evaluate(x, y, verbose=0) < 0.5 * first


def _model():
    inputs = tf_keras.Input((96,))
    h = TTDense(
        48,
        (3, 2),
        in_modes=(4, 4, 6),
        out_modes=(4, 2, 6),
        activation="relu",
        kernel_regularizer="l2",
        name="tt",
    )(inputs)
    outputs = tf_keras.layers.Dense(3)(h)
    return tf_keras.Model(inputs, outputs)


def test_config_round_trip():
    layer = _model().get_layer("tt")
    clone = TTDense.from_config(layer.get_config())
    clone.build((None, 96))
    assert clone.get_config() == layer.get_config()
    assert [c.shape for c in clone.cores] == [c.shape for c in layer.cores]


@pytest.mark.parametrize("file_name", ["m.keras", "m.h5", "saved_model"])
def test_model_reloads_with_the_same_predictions(rng, tmp_path, file_name):
    model = _model()
    x = rng.standard_normal((4, 96)).astype("float32")
    path = str(tmp_path / file_name)
    model.save(path)
    # The layer is registered with tf_keras: no custom_objects needed.
    loaded = tf_keras.models.load_model(path)
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), atol=1e-6)
    if file_name != "saved_model":
        assert isinstance(loaded.get_layer("tt"), TTDense)


@pytest.mark.parametrize("input_dim, units, rank", [(64, 32, 64), (50, 7, 50)])
def test_dense_to_tt_dense_at_full_rank_reproduces_the_dense_layer(
    rng, input_dim, units, rank
):
    dense = tf_keras.layers.Dense(units, activation="tanh")
    dense.build((None, input_dim))
    dense.bias.assign(rng.standard_normal(units))
    layer, decomposition = dense_to_tt_dense(dense, tt_rank=rank)
    x = rng.standard_normal((6, input_dim)).astype("float32")
    np.testing.assert_allclose(layer(x).numpy(), dense(x).numpy(), atol=1e-5)
    assert decomposition.rel_error < 1e-5
    assert layer.name == dense.name


def test_dense_to_tt_dense_truncates_to_the_requested_error(rng):
    dense = tf_keras.layers.Dense(64)
    dense.build((None, 64))
    layer, decomposition = dense_to_tt_dense(dense, rel_error=0.5)
    kernel = dense.kernel.numpy()
    achieved = np.linalg.norm(layer.full_kernel() - kernel) / np.linalg.norm(
        kernel
    )
    assert achieved <= 0.5 + 1e-6
    assert abs(achieved - decomposition.rel_error) < 1e-4
    assert layer.num_core_params < 64 * 64


def test_invalid_units_is_rejected_with_the_argument_named():
    with pytest.raises(ValueError, match="expected a positive integer"):
        TTDense(0, 2)


def test_modes_must_multiply_to_units():
    with pytest.raises(ValueError, match="product equals 10"):
        TTDense(10, 2, in_modes=(2, 2), out_modes=(3, 3))


def test_input_width_must_match_the_modes():
    layer = TTDense(4, 2, in_modes=(2, 3), out_modes=(2, 2))
    with pytest.raises(ValueError, match="in_modes"):
        layer.build((None, 7))


def test_dense_to_tt_dense_needs_a_tf_keras_dense_layer():
    with pytest.raises(ValueError, match="tf_keras.layers.Dense"):
        dense_to_tt_dense(keras.layers.Dense(3), tt_rank=2)


def test_layer_is_prunable_and_clusterable_by_its_cores():
    layer = TTDense(8, 2, in_modes=(4, 4), out_modes=(2, 4))
    layer.build((None, 16))
    assert layer.get_prunable_weights() == layer.cores
    assert [n for n, _ in layer.get_clusterable_weights()] == [
        "core_0",
        "core_1",
    ]
    assert math.prod(layer.in_modes) == 16
    assert isinstance(tf.convert_to_tensor(layer.cores[0]), tf.Tensor)
