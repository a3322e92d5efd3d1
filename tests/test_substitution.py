"""The copy-and-substitute route of `tensorize` (`_substitution`)."""

import keras
import numpy as np
import pytest

import keras_tt
from keras_tt.layers import TTDense
from keras_tt.tensorize._references import follow_path
from keras_tt.tensorize._references import layer_path
from keras_tt.tensorize._references import substitute
from keras_tt.tensorize._selection import build_tree
from keras_tt.tensorize._substitution import copy_model

pytestmark = [
    pytest.mark.multibackend,
    pytest.mark.filterwarnings("ignore:Layer '[^']*'. its TT-cores hold"),
]


class Block(keras.layers.Layer):
    """Holds Dense layers in an attribute, a list and a dict; unregistered."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.fc = keras.layers.Dense(32, name="fc", bias_initializer="ones")
        self.stack = [keras.layers.Dense(32, name="s0")]
        self.heads = {"a": keras.layers.Dense(16, name="ha")}

    def call(self, x):
        return self.heads["a"](self.stack[0](self.fc(x)))


def model():
    keras.utils.set_random_seed(0)
    x = keras.Input((24,))
    h = keras.layers.Dense(24, name="first")(x)
    return keras.Model(x, Block(name="blk")(h))


def data():
    return np.random.default_rng(0).normal(size=(4, 24)).astype("float32")


def numpy_of(tensor):
    return keras.ops.convert_to_numpy(tensor)


def test_copy_has_equal_separate_weights():
    original = model()
    copy = copy_model(original)
    assert copy is not original
    for a, b in zip(original.weights, copy.weights):
        assert a is not b
        np.testing.assert_array_equal(numpy_of(a), numpy_of(b))


def test_paths_lead_back_to_each_layer():
    original = model()
    _, nodes = build_tree(original)
    for node in nodes:
        assert follow_path(original, layer_path(node)) is node.layer
    steps = {n.path: layer_path(n) for n in nodes}
    position = original.layers.index(original.get_layer("blk"))
    assert steps["blk/fc"] == [
        ["layer", position, "blk"],
        ["attribute", "fc", None],
    ]
    assert steps["blk/s0"] == [
        ["layer", position, "blk"],
        ["attribute", "stack", 0],
    ]
    assert steps["blk/ha"][-1][0] == "tracked"


def test_substitute_replaces_every_reference():
    copy = copy_model(model())
    block = copy.get_layer("blk")
    old = block.heads["a"]
    new = keras.layers.Dense(16, name="ha")
    new.build((None, 32))
    assert substitute(copy, old, new) >= 2  # the dict and the tracked list
    assert block.heads["a"] is new
    assert all(layer is not old for layer in block._layers)
    assert numpy_of(copy(data())).shape == (4, 16)


def test_tensorize_substitutes_train_and_round_trips(tmp_path):
    original = model()
    tt = keras_tt.tensorize(original, tt_rank=10**4, min_params=0, verbose=0)
    assert sorted(r.name for r in tt.tensorize_report.layers) == [
        "blk/fc",
        "blk/ha",
        "blk/s0",
        "first",
    ]
    np.testing.assert_allclose(
        numpy_of(tt(data())), numpy_of(original(data())), atol=1e-4
    )
    block = tt.get_layer("blk")
    assert isinstance(block.fc, TTDense) and isinstance(
        block.heads["a"], TTDense
    )
    assert not isinstance(original.get_layer("blk").fc, TTDense)
    # Only the TT layers' weights are trained: the original's Dense is gone.
    assert len(tt.trainable_weights) == sum(
        len(layer.trainable_weights)
        for layer in (tt.get_layer("first"), block.fc, block.stack[0])
    ) + len(block.heads["a"].trainable_weights)
    tt.compile(optimizer="sgd", loss="mse")
    tt.fit(data(), np.zeros((4, 16)), verbose=0)
    path = tmp_path / "blk.keras"
    tt.save(path)
    loaded = keras.saving.load_model(path, custom_objects={"Block": Block})
    assert isinstance(loaded.get_layer("blk").heads["a"], TTDense)
    np.testing.assert_allclose(
        numpy_of(loaded(data())), numpy_of(tt(data())), atol=1e-5
    )


def test_a_pass_failing_half_way_leaves_the_model_untouched(monkeypatch):
    from keras_tt.tensorize._converters import DenseConverter

    original = model()
    before = [numpy_of(w).copy() for w in original.weights]
    config = original.get_config()
    calls = []
    convert = DenseConverter.convert

    def failing(self, layer, settings, callback):
        calls.append(layer.name)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return convert(self, layer, settings, callback)

    monkeypatch.setattr(DenseConverter, "convert", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        keras_tt.tensorize(original, tt_rank=4, min_params=0, verbose=0)
    assert len(calls) == 3
    assert original.get_config() == config
    assert not any(
        isinstance(layer, TTDense) for layer in original._flatten_layers()
    )
    for a, b in zip(original.weights, before):
        np.testing.assert_array_equal(numpy_of(a), b)
