"""Mixture-of-experts weights in TT format (`keras_tt.layers.tt_experts`)."""

import json
import zipfile

import keras
import numpy as np
import pytest

import keras_tt
from keras_tt.layers.tt_experts import TTExpertsMixin
from keras_tt.layers.tt_experts import expert_matrix
from keras_tt.layers.tt_experts import expert_weights
from keras_tt.layers.tt_experts import experts_to_tt
from keras_tt.tt_matrix import full_matrix

pytestmark = pytest.mark.filterwarnings(
    "ignore:Layer '[^']*'. its TT-cores hold"
)

EXPERTS, HIDDEN, FFN = 4, 24, 40


@keras.saving.register_keras_serializable(package="tests")
class Experts(keras.layers.Layer):
    """Batched experts as keras_hub holds them: raw 3-D weights."""

    def __init__(self, num_experts, hidden, ffn, **kwargs):
        super().__init__(**kwargs)
        self.num_experts, self.hidden, self.ffn = num_experts, hidden, ffn

    def build(self, _):
        self.up = self.add_weight(
            shape=(self.num_experts, self.hidden, self.ffn), name="up"
        )
        self.down = self.add_weight(
            shape=(self.num_experts, self.ffn, self.hidden), name="down"
        )
        self.scale = self.add_weight(
            shape=(self.num_experts,), initializer="ones", name="scale"
        )

    def call(self, x):
        h = keras.ops.relu(keras.ops.einsum("th,ehm->etm", x, self.up))
        out = keras.ops.einsum("etm,emh->eth", h, self.down)
        return keras.ops.einsum("eth,e->th", out, self.scale)

    def get_config(self):
        return {
            **super().get_config(),
            "num_experts": self.num_experts,
            "hidden": self.hidden,
            "ffn": self.ffn,
        }


def model_with_experts():
    keras.utils.set_random_seed(0)
    x = keras.Input((HIDDEN,))
    h = keras.layers.Dense(HIDDEN, name="proj")(x)
    return keras.Model(x, Experts(EXPERTS, HIDDEN, FFN, name="experts")(h))


def data():
    return np.random.default_rng(1).normal(size=(5, HIDDEN)).astype("float32")


def test_expert_weights_are_found_by_shape():
    layer = model_with_experts().get_layer("experts")
    assert sorted(expert_weights(layer)) == ["down", "up"]
    assert expert_weights(keras.layers.Dense(3)) == []


def test_expert_matrix_puts_experts_beside_the_columns():
    w = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    matrix = expert_matrix(w)
    assert matrix.shape == (3, 8)
    np.testing.assert_array_equal(matrix[:, 4:], w[1])


def test_full_rank_equals_the_original_and_leaves_it_untouched():
    model = model_with_experts()
    before = [keras.ops.convert_to_numpy(w).copy() for w in model.weights]
    tt = keras_tt.tensorize(model, tt_rank=10**6, min_params=1, verbose=0)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(tt(data())),
        keras.ops.convert_to_numpy(model(data())),
        atol=2e-5,
    )
    layer = tt.get_layer("experts")
    assert isinstance(layer, TTExpertsMixin) and isinstance(layer, Experts)
    assert not isinstance(model.get_layer("experts"), TTExpertsMixin)
    for a, b in zip(model.weights, before):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), b)
    kinds = {r.name: r.kind for r in tt.tensorize_report.layers}
    assert kinds == {
        "proj": "Dense",
        "experts/up": "Experts",
        "experts/down": "Experts",
    }


def test_low_rank_experts_match_an_independent_reference():
    layer = model_with_experts().get_layer("experts")
    change, _ = experts_to_tt(layer, tt_rank=3)
    x = data()
    change.apply(layer)
    # The reference: the matrices rebuilt from the cores with numpy, put
    # back into (experts, rows, cols) by hand, and the layer's own einsums.
    weights = {}
    for attribute, spec in change.specs.items():
        experts, rows, cols = spec["shape"]
        matrix = full_matrix(change.cores[attribute])[:rows, : experts * cols]
        weights[attribute] = np.stack(
            [matrix[:, e * cols : (e + 1) * cols] for e in range(experts)]
        )
    h = np.maximum(np.einsum("th,ehm->etm", x, weights["up"]), 0)
    out = np.einsum("etm,emh->eth", h, weights["down"])
    expected = out.sum(axis=0)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(x)), expected, rtol=1e-4, atol=1e-4
    )
    assert max(change.specs["up"]["tt_ranks"]) == 3
    core_params = sum(int(np.prod(w.shape)) for w in layer.weights)
    assert core_params < 2 * EXPERTS * HIDDEN * FFN + EXPERTS


def test_keras_round_trip_and_training(tmp_path):
    tt = keras_tt.tensorize(
        model_with_experts(), tt_rank=4, min_params=1, verbose=0
    )
    path = tmp_path / "experts.keras"
    tt.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.get_layer("experts"), TTExpertsMixin)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(data())),
        keras.ops.convert_to_numpy(tt(data())),
        atol=1e-6,
    )
    assert loaded.count_params() == tt.count_params()
    # The cores train.
    loaded.compile(optimizer="sgd", loss="mse")
    cores = [
        keras.ops.convert_to_numpy(w).copy()
        for w in loaded.get_layer("experts").weights
    ]
    loaded.fit(data(), np.ones((5, HIDDEN)), epochs=1, verbose=0)
    after = loaded.get_layer("experts").weights
    assert any(
        not np.allclose(a, keras.ops.convert_to_numpy(b))
        for a, b in zip(cores, after)
    )


def _tamper(path, edit):
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])
    edit(config)
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)


def test_tampered_expert_specs_are_refused(tmp_path):
    tt = keras_tt.tensorize(
        model_with_experts(), tt_rank=4, min_params=1, verbose=0
    )
    path = tmp_path / "experts.keras"
    tt.save(path)

    def huge_ranks(config):
        for _, entry in config["config"]["substitutions"]:
            if isinstance(entry, dict) and entry.get("kind") == "experts":
                spec = entry["tt_experts"]["up"]
                spec["tt_ranks"] = (
                    [1] + [10**6] * (len(spec["tt_ranks"]) - 2) + [1]
                )

    _tamper(path, huge_ranks)
    with pytest.raises(ValueError, match="the file may be damaged or edited"):
        keras.saving.load_model(path)


def test_target_ratio_holds_for_every_expert_weight():
    tt = keras_tt.tensorize(
        model_with_experts(), target_ratio=4, layers=["experts"], verbose=0
    )
    records = tt.tensorize_report.layers
    assert {r.name for r in records} == {"experts/up", "experts/down"}
    for record in records:
        assert record.dense_params / record.tt_params >= 4
