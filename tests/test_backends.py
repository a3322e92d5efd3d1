"""`TTDense` on every Keras backend.

`make test-backends` runs this module (with the other `multibackend` tests)
under ``KERAS_BACKEND=jax`` and ``KERAS_BACKEND=torch``, one process each;
`make test` runs it on TensorFlow. Nothing here imports TensorFlow, so the
JAX and PyTorch runs exercise the layer without it.
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from keras.src.testing import test_case

import keras_tt

pytestmark = pytest.mark.multibackend

BACKENDS = ("tensorflow", "jax", "torch")


def _reference(layer, x):
    bias = keras.ops.convert_to_numpy(layer.bias)
    return x.astype("float64") @ layer.full_kernel() + bias


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "units, in_modes, out_modes, input_dim",
    [
        (30, (2, 3, 5), None, 30),
        (10, None, None, 1021),  # padded input width
        (24, (4, 6), (6, 4), 24),
        (7, (16,), (7,), 16),  # one core
    ],
)
def test_forward_equals_x_times_full_kernel(
    units, in_modes, out_modes, input_dim, dtype
):
    if dtype == "float64" and keras.backend.backend() == "jax":
        import jax

        if not jax.config.jax_enable_x64:
            pytest.skip("JAX computes in float32 unless jax_enable_x64 is set")
    layer = keras_tt.TTDense(
        units, 3, in_modes=in_modes, out_modes=out_modes, dtype=dtype
    )
    x = np.random.default_rng(0).normal(size=(4, 3, input_dim))
    y = keras.ops.convert_to_numpy(layer(x.astype(dtype)))
    assert y.shape == (4, 3, units)
    tol = 1e-4 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(y, _reference(layer, x), rtol=tol, atol=tol)


def test_keras_layer_contract():
    test_case.TestCase().run_layer_test(
        keras_tt.TTDense,
        init_kwargs={"units": 6, "tt_rank": 2, "in_modes": (2, 4)},
        input_shape=(3, 8),
        expected_output_shape=(3, 6),
        expected_num_trainable_weights=3,
        expected_num_non_trainable_weights=0,
        supports_masking=True,
        run_mixed_precision_check=False,
    )


def test_fit_lowers_the_loss():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(256, 64)).astype("float32")
    w = rng.normal(size=(64, 4)).astype("float32")
    y = x @ w
    model = keras.Sequential(
        [keras.Input((64,)), keras_tt.TTDense(4, 4, in_modes=(8, 8))]
    )
    model.compile(keras.optimizers.Adam(0.05), "mse")
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=20, batch_size=64, verbose=0)
    assert model.evaluate(x, y, verbose=0) < 0.5 * before


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(policy):
    layer = keras_tt.TTDense(12, 2, in_modes=(4, 4), dtype=policy)
    x = np.random.default_rng(2).normal(size=(5, 16)).astype("float32")
    y = layer(x)
    assert keras.backend.standardize_dtype(y.dtype) == policy.split("_")[1]
    assert all(
        keras.backend.standardize_dtype(c.dtype) == "float32"
        for c in layer.cores
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(keras.ops.cast(y, "float32")),
        _reference(layer, x),
        rtol=0.05,
        atol=0.05,
    )


_SAVE_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import keras
    import keras_tt

    path = sys.argv[1]
    model = keras.Sequential([
        keras.Input((20,)),
        keras_tt.TTDense(12, 3, activation="relu"),
        keras_tt.TTDense(5, 2, in_modes=(3, 4)),
    ])
    x = np.random.default_rng(3).normal(size=(4, 20)).astype("float32")
    np.save(path + ".x.npy", x)
    np.save(path + ".y.npy", keras.ops.convert_to_numpy(model(x)))
    model.save(path)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("source", BACKENDS)
def test_keras_file_saved_on_one_backend_loads_on_this_one(source, tmp_path):
    path = str(tmp_path / f"from_{source}.keras")
    env = {**os.environ, "KERAS_BACKEND": source, "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run(
        [sys.executable, "-c", _SAVE_SCRIPT, path],
        check=True,
        env=env,
        timeout=300,
    )
    model = keras.models.load_model(path)
    x = np.load(path + ".x.npy")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model(x)),
        np.load(path + ".y.npy"),
        rtol=1e-5,
        atol=1e-5,
    )
    config = json.loads(json.dumps(model.get_config()))
    assert config["layers"][1]["class_name"] == "TTDense"


def test_training_the_tensorized_model_leaves_the_original_working():
    """The tensorized copy shares no buffer with the original: on JAX,
    `fit` and `predict` donate the buffers of the model they run, which
    would delete a shared bias under the original model."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((12, 16))
    h = keras.layers.Dense(32, activation="relu", name="fc")(inputs)
    h = keras.layers.MultiHeadAttention(2, 8, name="attention")(h, h)
    h = keras.layers.EinsumDense(
        "btd,de->bte", (None, 24), bias_axes="e", name="ed"
    )(h)
    h = keras.layers.Conv1D(16, 3, padding="same", name="conv")(h)
    h = keras.layers.LayerNormalization(name="norm")(h)
    outputs = keras.layers.Dense(4, name="head")(h)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 12, 16)).astype("float32")
    y = rng.normal(size=(8, 12, 4)).astype("float32")
    weights = [keras.ops.convert_to_numpy(w) for w in model.weights]
    expected = keras.ops.convert_to_numpy(model(x))

    tt_model = keras_tt.tensorize(model, tt_rank=4, min_params=1, verbose=0)
    replaced = {r.name.split("/")[0] for r in tt_model.tensorize_report.layers}
    assert replaced == {"fc", "attention", "ed", "conv", "head"}
    tt_model.compile(optimizer="adam", loss="mse")
    tt_model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    tt_model.predict(x, verbose=0)

    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model(x)), expected
    )
    for before, after in zip(weights, model.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(after), before)
