"""Bad input to tensorize: refused before any work, the model untouched."""

import keras
import numpy as np
import pytest

from keras_tt.tensorize import _converters
from keras_tt.tensorize import tensorize


def model_under_test():
    keras.utils.set_random_seed(0)
    x = keras.Input((256,))
    h = keras.layers.Dense(128, name="fc1", activation="relu")(x)
    h = keras.layers.TimeDistributed(
        keras.layers.Dense(8, name="inner"), name="td"
    )(keras.layers.Reshape((8, 16))(h))
    y = keras.layers.Dense(4, name="head")(keras.layers.Flatten()(h) * 2.0)
    model = keras.Model(x, y)
    model.compile(optimizer="adam", loss="mse")
    return model


@pytest.fixture
def no_decomposition(monkeypatch):
    """Fail the test if any TT-SVD starts."""

    def convert(self, *args, **kwargs):
        raise AssertionError("a decomposition started before the error")

    monkeypatch.setattr(_converters.DenseConverter, "convert", convert)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (
            {"tt_rank": 2, "layers": []},
            ValueError,
            r"`layers`, expected at least one layer to replace; pass "
            r"`layers=None` to select by `min_params`. Received: layers=\[\]",
        ),
        (
            {"tt_rank": 2, "layers": ()},
            ValueError,
            r"expected at least one layer.*Received: layers=\(\)",
        ),
        (
            {"tt_rank": 2, "layers": {}},
            ValueError,
            r"expected at least one layer.*Received: layers=\{\}",
        ),
        (
            {"tt_rank": (2, 2, 2, 2, 2, 2, 2), "layers": ["fc1"]},
            ValueError,
            r"Layer 'fc1' \(256x128\).*sequence of 3 inner ranks for 4 cores "
            r"\(modes \(4, 4, 4, 4\) x \(4, 4, 4, 2\)\)",
        ),
        (
            {"tt_rank": 2, "layers": ["td/inner"], "modes": ((4, 4), (4, 4))},
            ValueError,
            r"Layer 'td/inner' \(16x8\).*product equals 8",
        ),
        (
            {"tt_rank": 2, "layers": ["td"]},
            ValueError,
            r"'td' is a TimeDistributed, which `tensorize` cannot convert",
        ),
        (
            {"tt_rank": 2, "layers": {"fc1": 3}},
            ValueError,
            r"per-layer settings as a dict.*layer 'fc1': 3",
        ),
        (
            {"tt_rank": 2, "modes": {"fc1": (4, 4)}},
            ValueError,
            r"`modes`, expected 'fast', a pair",
        ),
        (
            {"tt_rank": 2, "min_params": 1.5},
            ValueError,
            r"Received: min_params=1\.5",
        ),
        ({"tt_rank": 2, "verbose": "1"}, ValueError, r"verbose='1'"),
        ({"tt_rank": True}, ValueError, r"Received: tt_rank=True"),
        ({"tt_rank": [2, 0]}, ValueError, r"Received: tt_rank=\[2, 0\]"),
        (
            {"rel_error": float("nan")},
            ValueError,
            r"strictly between 0 and 1. Received: rel_error=nan",
        ),
        (
            {"target_ratio": float("inf")},
            ValueError,
            r"positive number. Received: target_ratio=inf",
        ),
        (
            {"target_ratio": 10**9, "layers": ["td/inner"]},
            ValueError,
            r"layer 'td/inner' \(16x8, modes .*\) is compressed at most",
        ),
    ],
)
def test_refused_before_any_work(no_decomposition, kwargs, error, message):
    model = model_under_test()
    config = model.get_config()
    weights = [w.numpy().copy() for w in model.weights]
    with pytest.raises(error, match=message):
        tensorize(model, **{"verbose": 0, **kwargs})
    assert model.get_config() == config
    assert model.compiled
    for w, old in zip(model.weights, weights):
        np.testing.assert_array_equal(w.numpy(), old)


def test_empty_selection_does_not_blame_min_params():
    model = model_under_test()
    with pytest.raises(ValueError) as info:
        tensorize(model, tt_rank=2, layers=[], verbose=0)
    assert "min_params=16384" not in str(info.value)
    assert "smaller" not in str(info.value)


def test_failure_after_decomposition_leaves_the_model_untouched(monkeypatch):
    from keras_tt.tensorize import _cloning

    model = model_under_test()
    config = model.get_config()
    weights = [w.numpy().copy() for w in model.weights]

    def broken(*args):
        raise RuntimeError("copy failed")

    monkeypatch.setattr(_cloning, "_copy_whole", broken)
    with pytest.raises(RuntimeError, match="copy failed"):
        tensorize(model, tt_rank=2, verbose=0)
    assert model.get_config() == config and model.compiled
    for w, old in zip(model.weights, weights):
        np.testing.assert_array_equal(w.numpy(), old)
