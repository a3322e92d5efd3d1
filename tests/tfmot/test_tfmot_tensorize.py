"""tensorize for tf_keras models: predictions, weights, report, errors."""

import numpy as np
import pytest

tf_keras = pytest.importorskip("tf_keras")

from keras_tt.tf_keras import TTDense  # noqa: E402
from keras_tt.tf_keras import model_report  # noqa: E402
from keras_tt.tf_keras import tensorize  # noqa: E402

pytestmark = pytest.mark.tfmot


def _sequential():
    model = tf_keras.Sequential(
        [
            tf_keras.Input((128,)),
            tf_keras.layers.Dense(128, activation="relu", name="fc1"),
            tf_keras.layers.Dropout(0.1),
            tf_keras.layers.Dense(10, name="head"),
        ]
    )
    model.compile("adam", "mse", metrics=["mae"])
    return model


def _functional():
    inputs = tf_keras.Input((128,))
    a = tf_keras.layers.Dense(128, activation="relu", name="fc1")(inputs)
    b = tf_keras.layers.Dense(128, name="fc2")(inputs)
    h = tf_keras.layers.Add()([a, b])
    return tf_keras.Model(inputs, tf_keras.layers.Dense(10, name="head")(h))


@pytest.mark.parametrize("build", [_sequential, _functional])
def test_full_rank_tensorize_keeps_the_predictions(rng, build):
    model = build()
    x = rng.standard_normal((8, 128)).astype("float32")
    tt_model = tensorize(model, tt_rank=256, verbose=0)
    replaced = [l.name for l in tt_model.layers if isinstance(l, TTDense)]
    assert replaced == [l.name for l in model.layers if l.name.startswith("fc")]
    np.testing.assert_allclose(
        tt_model(x).numpy(), model(x).numpy(), rtol=1e-4, atol=1e-4
    )


def test_tensorize_keeps_unselected_weights_as_copies():
    model = _sequential()
    tt_model = tensorize(model, tt_rank=4, verbose=0)
    head, new_head = model.get_layer("head"), tt_model.get_layer("head")
    assert new_head is not head
    for old, new in zip(head.weights, new_head.weights):
        np.testing.assert_array_equal(old.numpy(), new.numpy())
        assert old is not new
    # Training the clone never changes the original.
    before = head.kernel.numpy().copy()
    new_head.kernel.assign(new_head.kernel + 1.0)
    np.testing.assert_array_equal(head.kernel.numpy(), before)
    assert isinstance(model.get_layer("fc1"), tf_keras.layers.Dense)


def test_report_matches_the_layers():
    model = _sequential()
    tt_model = tensorize(model, tt_rank=4, verbose=0)
    report = tt_model.tensorize_report
    (record,) = report.layers
    layer = tt_model.get_layer("fc1")
    assert record.name == "fc1"
    assert (record.in_modes, record.out_modes, record.ranks) == (
        layer.in_modes,
        layer.out_modes,
        layer.tt_ranks,
    )
    assert record.dense_params == 128 * 128
    assert record.tt_params == sum(int(np.prod(c.shape)) for c in layer.cores)
    kernel = model.get_layer("fc1").kernel.numpy()
    achieved = np.linalg.norm(layer.full_kernel() - kernel) / np.linalg.norm(
        kernel
    )
    assert record.rel_error == pytest.approx(achieved, abs=1e-4)
    assert report.params_before == model.count_params()
    assert report.params_after == tt_model.count_params()
    assert model_report(tt_model).layers[0].tt_params == record.tt_params
    assert "fc1" in report.table()


def test_compiled_model_gives_a_compiled_clone_with_a_fresh_optimizer(rng):
    model = _sequential()
    tt_model = tensorize(model, tt_rank=4, verbose=0)
    assert tt_model.optimizer is not model.optimizer
    x = rng.standard_normal((16, 128)).astype("float32")
    y = rng.standard_normal((16, 10)).astype("float32")
    history = tt_model.fit(x, y, epochs=1, verbose=0)
    assert set(history.history) == {"loss", "mae"}


def test_per_layer_settings_and_rel_error(rng):
    model = _functional()
    tt_model = tensorize(
        model,
        layers={"fc1": {"rel_error": 0.3}, "fc2": {"tt_rank": 2}},
        verbose=0,
    )
    records = {r.name: r for r in tt_model.tensorize_report.layers}
    assert records["fc1"].rel_error <= 0.3 + 1e-6
    assert max(records["fc2"].ranks) == 2


def test_target_ratio_compresses_at_least_that_much():
    tt_model = tensorize(_sequential(), target_ratio=20, verbose=0)
    assert tt_model.tensorize_report.layers[0].compression >= 20


def test_errors_name_the_argument():
    model = _sequential()
    with pytest.raises(ValueError, match="`target_ratio`"):
        tensorize(model, tt_rank=2, target_ratio=3)
    with pytest.raises(ValueError, match="not a Dense layer"):
        tensorize(model, tt_rank=2, layers=[model.layers[1]])
    with pytest.raises(ValueError, match="no Dense layer to replace"):
        tensorize(model, tt_rank=2, min_params=10**9)
    with pytest.raises(ValueError, match="tf_keras"):
        tensorize(object(), tt_rank=2)
