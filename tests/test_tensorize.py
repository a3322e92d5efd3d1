"""The tensorize pass, TTDense.from_dense and the report."""

import importlib.util
import math
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_tt.decomposition import tt_error
from keras_tt.layers import TTDense
from keras_tt.report import CompressionReport
from keras_tt.report import model_report
from keras_tt.tensorize import DEFAULT_MIN_PARAMS
from keras_tt.tensorize import tensorize

FULL_RANK = 10_000  # Larger than any useful rank here: exact decompositions.

# At full rank the cores outgrow the kernel; that warning has its own test.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Layer '[^']*'. its TT-cores hold"
)


def dense(units, name, activation=None):
    return keras.layers.Dense(
        units,
        activation=activation,
        name=name,
        bias_initializer="random_normal",
    )


def mlp(input_dim=48, hidden=40, name="mlp"):
    return keras.Sequential(
        [
            keras.Input((input_dim,)),
            dense(hidden, "fc1", "relu"),
            keras.layers.Dropout(0.1, name="drop"),
            dense(hidden, "fc2", "tanh"),
            dense(3, "head"),
        ],
        name=name,
    )


def snapshot(model):
    return [
        (layer, type(layer), [w.copy() for w in layer.get_weights()])
        for layer in model.layers
    ]


def assert_unchanged(model, before):
    assert len(model.layers) == len(before)
    for layer, (old_layer, old_type, old_weights) in zip(model.layers, before):
        assert layer is old_layer and type(layer) is old_type
        for w, old in zip(layer.get_weights(), old_weights):
            np.testing.assert_array_equal(w, old)


def inputs_for(model, batch=5, seed=0):
    rng = np.random.default_rng(seed)
    shapes = [tuple(t.shape[1:]) for t in model.inputs]
    xs = [rng.normal(size=(batch, *s)).astype("float32") for s in shapes]
    return xs if len(xs) > 1 else xs[0]


def assert_same_outputs(a, b, x, atol=2e-4):
    ya, yb = a(x), b(x)
    ya = ya if isinstance(ya, (list, tuple)) else [ya]
    yb = yb if isinstance(yb, (list, tuple)) else [yb]
    assert len(ya) == len(yb)
    for u, v in zip(ya, yb):
        np.testing.assert_allclose(
            np.asarray(u), np.asarray(v), atol=atol, rtol=1e-4
        )


@pytest.fixture(autouse=True)
def seed():
    keras.utils.set_random_seed(7)


# ------------------------------------------------------------- model kinds


def test_sequential_at_full_rank_matches_original():
    model = mlp()
    before = snapshot(model)
    tt_model = tensorize(model, tt_rank=FULL_RANK, min_params=0, verbose=0)
    assert [type(l).__name__ for l in tt_model.layers] == [
        "TTDense",
        "Dropout",
        "TTDense",
        "TTDense",
    ]
    assert [l.name for l in tt_model.layers] == ["fc1", "drop", "fc2", "head"]
    assert_same_outputs(model, tt_model, inputs_for(model))
    assert_unchanged(model, before)


def test_tensorize_keeps_unselected_weights():
    model = mlp()
    tt_model = tensorize(model, tt_rank=2, layers=["fc1"], verbose=0)
    for name in ("fc2", "head"):
        old, new = model.get_layer(name), tt_model.get_layer(name)
        assert type(new) is keras.layers.Dense and new is not old
        for w_old, w_new in zip(old.weights, new.weights):
            assert w_old is not w_new
            np.testing.assert_array_equal(w_old.numpy(), w_new.numpy())
    # Copies, not shared: changing the clone leaves the original alone.
    new_kernel = tt_model.get_layer("fc2").kernel
    original = model.get_layer("fc2").kernel.numpy().copy()
    new_kernel.assign(new_kernel.numpy() + 1.0)
    np.testing.assert_array_equal(
        model.get_layer("fc2").kernel.numpy(), original
    )


def test_a_tensorized_model_can_be_tensorized_again():
    model = mlp()
    first = tensorize(model, tt_rank=FULL_RANK, layers=["fc1"], verbose=0)
    second = tensorize(first, tt_rank=FULL_RANK, layers=["fc2"], verbose=0)
    assert second.get_layer("fc1") is not first.get_layer("fc1")
    for core, old in zip(
        second.get_layer("fc1").cores, first.get_layer("fc1").cores
    ):
        np.testing.assert_array_equal(core.numpy(), old.numpy())
    assert isinstance(second.get_layer("fc2"), TTDense)
    assert_same_outputs(model, second, inputs_for(model))


def test_bias_activation_and_kernel_carried_over():
    model = mlp()
    tt_model = tensorize(model, tt_rank=FULL_RANK, layers="fc1", verbose=0)
    old, new = model.get_layer("fc1"), tt_model.get_layer("fc1")
    assert isinstance(new, TTDense)
    np.testing.assert_array_equal(new.bias.numpy(), old.bias.numpy())
    assert new.activation is old.activation
    np.testing.assert_allclose(new.full_kernel(), old.kernel.numpy(), atol=1e-5)


def test_functional_with_branches_multiple_inputs_and_outputs():
    a = keras.Input((32,), name="a")
    b = keras.Input((20,), name="b")
    h = keras.layers.Concatenate()([dense(24, "fa", "relu")(a), b])
    left = dense(30, "left", "relu")(h)
    right = dense(30, "right")(h)
    out1 = dense(4, "out1")(keras.layers.Add()([left, right]))
    out2 = dense(2, "out2", "sigmoid")(right)
    model = keras.Model([a, b], [out1, out2])
    before = snapshot(model)
    tt_model = tensorize(model, tt_rank=FULL_RANK, min_params=0, verbose=0)
    assert sum(isinstance(l, TTDense) for l in tt_model.layers) == 5
    assert_same_outputs(model, tt_model, inputs_for(model))
    assert_unchanged(model, before)


def test_nested_sequential_inside_functional():
    inner = keras.Sequential(
        [
            keras.Input((36,)),
            dense(30, "inner_fc", "relu"),
            keras.layers.BatchNormalization(name="bn"),
        ],
        name="block",
    )
    x = keras.Input((36,))
    y = dense(5, "head")(inner(x))
    model = keras.Model(x, y)
    # Give the batch norm non-trivial statistics to copy.
    bn = inner.get_layer("bn")
    bn.moving_mean.assign(np.linspace(-1, 1, 30).astype("float32"))
    bn.moving_variance.assign(np.linspace(0.5, 2, 30).astype("float32"))
    before = snapshot(inner)
    tt_model = tensorize(
        model, tt_rank=FULL_RANK, layers=["block/inner_fc"], verbose=0
    )
    new_inner = tt_model.get_layer("block")
    assert new_inner is not inner
    assert isinstance(new_inner.get_layer("inner_fc"), TTDense)
    np.testing.assert_array_equal(
        new_inner.get_layer("bn").moving_mean, bn.moving_mean
    )
    assert_same_outputs(model, tt_model, inputs_for(model))
    assert_unchanged(inner, before)
    assert [r.name for r in tt_model.tensorize_report.layers] == [
        "block/inner_fc"
    ]
    # The plain layer name finds nested layers too.
    again = tensorize(model, tt_rank=2, layers=["inner_fc"], verbose=0)
    assert isinstance(again.get_layer("block").get_layer("inner_fc"), TTDense)


def test_shared_layer_becomes_one_shared_ttdense():
    shared = dense(16, "shared", "relu")
    a, b = keras.Input((40,)), keras.Input((40,))
    out = keras.layers.Subtract()([shared(a), shared(b)])
    model = keras.Model([a, b], dense(2, "head")(out))
    tt_model = tensorize(model, tt_rank=FULL_RANK, layers=[shared], verbose=0)
    tt_layers = [l for l in tt_model.layers if isinstance(l, TTDense)]
    assert len(tt_layers) == 1 and len(tt_layers[0]._inbound_nodes) == 2
    assert_same_outputs(model, tt_model, inputs_for(model))
    assert len(tt_model.tensorize_report.layers) == 1


def test_dense_on_sequences():
    x = keras.Input((7, 32))
    model = keras.Model(x, dense(24, "proj", "gelu")(x))
    tt_model = tensorize(model, tt_rank=FULL_RANK, min_params=0, verbose=0)
    assert isinstance(tt_model.get_layer("proj"), TTDense)
    assert tt_model.output_shape == (None, 7, 24)
    assert_same_outputs(model, tt_model, inputs_for(model))


def test_padded_widths_are_handled():
    # 67 is prime: the TT layer pads its input to 70 = 2 * 5 * 7.
    model = keras.Sequential([keras.Input((67,)), dense(11, "odd")])
    tt_model = tensorize(model, tt_rank=FULL_RANK, min_params=0, verbose=0)
    layer = tt_model.get_layer("odd")
    assert layer.padded_input_dim > 67 or layer.padded_units > 11
    assert_same_outputs(model, tt_model, inputs_for(model))


def test_subclassed_model_that_cannot_be_copied_gets_a_clear_error():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.fc = keras.layers.Dense(8, name="fc")

        def call(self, x):
            return self.fc(x)

    net = Net()
    net(np.zeros((1, 4), "float32"))
    with pytest.raises(
        ValueError,
        match=r"(?s)could not copy the model 'net' \(Net\).*Give the class a "
        r"`get_config` that returns its constructor arguments",
    ):
        tensorize(net, tt_rank=2, min_params=0)


# --------------------------------------------------------------- the ranks


def test_low_rank_layers_have_the_requested_ranks():
    model = mlp(input_dim=64, hidden=64)
    tt_model = tensorize(model, tt_rank=3, min_params=0, verbose=0)
    for record in tt_model.tensorize_report.layers:
        assert max(record.ranks) <= 3
        new = tt_model.get_layer(record.name)
        assert new.tt_ranks == record.ranks


@pytest.mark.parametrize("eps", [0.2, 0.5])
def test_rel_error_is_met_and_reported(eps):
    model = mlp(input_dim=256, hidden=64)
    tt_model = tensorize(model, rel_error=eps, verbose=0)
    records = tt_model.tensorize_report.layers
    # By default only kernels of 128 * 128 entries or more are replaced.
    assert [r.name for r in records] == ["fc1"]
    record = records[0]
    actual = tt_error(
        tt_model.get_layer("fc1").cores, model.get_layer("fc1").kernel.numpy()
    )
    assert actual <= eps * (1 + 1e-4)
    assert record.rel_error == pytest.approx(actual, rel=1e-3)


@pytest.mark.parametrize("ratio", [2, 10, 40])
@pytest.mark.filterwarnings("ignore:`tt_rank`=")
def test_target_ratio_picks_the_largest_rank_that_compresses_enough(ratio):
    model = mlp(input_dim=256, hidden=128)
    tt_model = tensorize(
        model, target_ratio=ratio, layers=["fc1", "fc2"], verbose=0
    )
    for record in tt_model.tensorize_report.layers:
        assert record.compression >= ratio
        rank = max(record.ranks)
        bigger = TTDense(
            record.units,
            tt_rank=rank + 1,
            in_modes=record.in_modes,
            out_modes=record.out_modes,
        )
        bigger.build((None, record.input_dim))
        assert bigger.compression_ratio < ratio


def test_warns_when_the_cores_are_larger_than_the_kernel():
    model = mlp(input_dim=64, hidden=64)
    with pytest.warns(
        UserWarning,
        match=r"Layer 'fc1': its TT-cores hold "
        r"[\d,]+ parameters, more than the 4,096",
    ):
        tensorize(model, tt_rank=FULL_RANK, layers=["fc1"], verbose=0)


def test_per_layer_settings():
    model = mlp(input_dim=64, hidden=64)
    tt_model = tensorize(
        model,
        tt_rank=2,
        layers={
            "fc1": {"tt_rank": 5, "in_modes": (8, 8), "out_modes": (8, 8)},
            "fc2": None,
        },
        verbose=0,
    )
    fc1, fc2 = tt_model.get_layer("fc1"), tt_model.get_layer("fc2")
    assert fc1.in_modes == (8, 8) and fc1.tt_ranks == (1, 5, 1)
    assert max(fc2.tt_ranks) == 2


def test_global_modes_and_predicate_selection():
    model = mlp(input_dim=64, hidden=64)
    tt_model = tensorize(
        model,
        tt_rank=4,
        layers=lambda layer: layer.units == 64,
        modes={"fc1": ((4, 16), (16, 4))},
        verbose=0,
    )
    assert tt_model.get_layer("fc1").in_modes == (4, 16)
    assert isinstance(tt_model.get_layer("fc2"), TTDense)
    assert type(tt_model.get_layer("head")) is keras.layers.Dense


# -------------------------------------------------------- the user's model


def test_original_unchanged_when_the_pass_fails_half_way():
    class NoConfig(keras.layers.Layer):
        def __init__(self, scale):
            super().__init__()
            self.scale = scale

        def call(self, x):
            return x * self.scale

    x = keras.Input((48,))
    model = keras.Model(x, dense(3, "head")(NoConfig(2.0)(dense(40, "fc1")(x))))
    before = snapshot(model)
    with pytest.raises(ValueError, match="could not clone layer"):
        tensorize(model, tt_rank=2, layers=["fc1"], verbose=0)
    assert_unchanged(model, before)


def test_compiled_model_gets_fresh_optimizer_and_fine_tunes():
    model = mlp()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    x = inputs_for(model, batch=32)
    y = np.zeros((32, 3), "float32")
    model.fit(x, y, epochs=1, verbose=0)
    tt_model = tensorize(model, tt_rank=2, min_params=0, verbose=0)
    assert tt_model.compiled
    assert tt_model.optimizer is not model.optimizer
    cores_before = [c.numpy().copy() for c in tt_model.get_layer("fc1").cores]
    tt_model.fit(x, y, epochs=1, verbose=0)
    assert any(
        not np.array_equal(c.numpy(), b)
        for c, b in zip(tt_model.get_layer("fc1").cores, cores_before)
    )


def test_saved_and_reloaded_tt_model(tmp_path):
    model = mlp()
    tt_model = tensorize(model, tt_rank=3, min_params=0, verbose=0)
    path = tmp_path / "tt.keras"
    tt_model.save(path)
    loaded = keras.saving.load_model(path)
    assert_same_outputs(tt_model, loaded, inputs_for(model), atol=1e-6)
    report = model_report(loaded)
    assert [r.ranks for r in report.layers] == [
        r.ranks for r in tt_model.tensorize_report.layers
    ]
    assert report.params_after == tt_model.tensorize_report.params_after
    assert report.params_before == model.count_params()


# -------------------------------------------------------------- the report


def test_report_data_and_table(capsys):
    model = mlp(input_dim=64, hidden=64)
    tt_model = tensorize(model, tt_rank=4, layers=["fc1", "fc2"], verbose=1)
    printed = capsys.readouterr().out
    report = tt_model.tensorize_report
    assert isinstance(report, CompressionReport)
    assert report.params_before == model.count_params()
    assert report.params_after == tt_model.count_params()
    fc1 = report.layers[0]
    layer = tt_model.get_layer("fc1")
    assert (fc1.dense_params, fc1.tt_params) == (64 * 64, layer.num_core_params)
    assert fc1.compression == pytest.approx(layer.compression_ratio)
    assert report.kernel_params_before == 2 * 64 * 64
    assert report.compression == pytest.approx(
        model.count_params() / tt_model.count_params()
    )
    assert report.records[1]["name"] == "fc2"
    assert set(report.totals()) >= {
        "params_before",
        "params_after",
        "compression",
    }
    table = report.table()
    assert table in printed
    for text in (
        "fc1",
        "fc2",
        "whole model",
        f"{model.count_params():,}",
        "*".join(map(str, fc1.in_modes)),
    ):
        assert text in table


def test_verbose_zero_prints_nothing(capsys):
    tensorize(mlp(), tt_rank=2, min_params=0, verbose=0)
    assert capsys.readouterr().out == ""


# ---------------------------------------------------------------- from_dense


def test_from_dense_full_rank_and_rel_error():
    layer = dense(20, "d", "relu")
    layer.build((None, 30))
    x = inputs_for(keras.Sequential([keras.Input((30,)), layer]))
    tt = TTDense.from_dense(layer, tt_rank=FULL_RANK)
    assert tt.name == "d" and tt.built
    np.testing.assert_allclose(tt(x), layer(x), atol=1e-5)
    small = TTDense.from_dense(
        layer, rel_error=0.6, in_modes=(5, 6), out_modes=(4, 5), name="small"
    )
    assert small.name == "small" and small.in_modes == (5, 6)
    assert tt_error(small.cores, layer.kernel.numpy()) <= 0.6


def test_from_dense_keeps_the_dtype_policy():
    layer = keras.layers.Dense(12, dtype="float64")
    layer.build((None, 16))
    tt = TTDense.from_dense(layer, tt_rank=FULL_RANK)
    assert tt.dtype_policy.name == "float64"
    assert all(c.dtype == "float64" for c in tt.cores)
    np.testing.assert_allclose(
        tt.full_kernel(), layer.kernel.numpy(), atol=1e-12
    )


def test_from_dense_errors():
    with pytest.raises(
        ValueError,
        match=r"expected a `keras.layers.Dense` "
        r"layer. Received: dense_layer=ReLU",
    ):
        TTDense.from_dense(keras.layers.ReLU(), tt_rank=2)
    with pytest.raises(ValueError, match="is not built"):
        TTDense.from_dense(keras.layers.Dense(4, name="raw"), tt_rank=2)
    layer = keras.layers.Dense(4)
    layer.build((None, 8))
    with pytest.raises(ValueError, match=r"Expected `tt_rank` or `rel_error`"):
        TTDense.from_dense(layer)
    with pytest.raises(ValueError, match=r"Received: tt_rank=0"):
        TTDense.from_dense(layer, tt_rank=0)
    with pytest.raises(ValueError, match=r"Received: rel_error=1\.0"):
        TTDense.from_dense(layer, rel_error=1.0)
    with pytest.raises(
        ValueError, match=r"product equals 8.*in_modes=\(3, 3\)"
    ):
        TTDense.from_dense(layer, tt_rank=2, in_modes=(3, 3))


# ------------------------------------------------------------ bad arguments


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"tt_rank": 0}, r"`tt_rank`, expected a positive integer.*tt_rank=0"),
        ({"tt_rank": -3}, r"Received: tt_rank=-3"),
        ({"tt_rank": 2.5}, r"Received: tt_rank=2\.5"),
        (
            {"rel_error": 0},
            r"`rel_error`.*strictly between 0 and 1.*rel_error=0",
        ),
        ({"rel_error": 1}, r"Received: rel_error=1$"),
        ({"rel_error": 1.5}, r"Received: rel_error=1\.5"),
        ({"target_ratio": 0}, r"`target_ratio`, expected a positive number"),
        (
            {"tt_rank": 2, "target_ratio": 5},
            r"both `tt_rank` and `target_ratio`",
        ),
        ({"layers": ["fc1"]}, r"No TT-ranks for layer 'fc1'"),
        (
            {"tt_rank": 2, "layers": ["nope"]},
            r"no layer named 'nope'\. Its layers that can be tensorized are "
            r"\['fc1', 'fc2', 'head'\]",
        ),
        (
            {"tt_rank": 2, "layers": ["drop"]},
            r"'drop' is a Dropout, which `tensorize` cannot convert "
            r"\(it converts Dense",
        ),
        ({"tt_rank": 2, "layers": [3]}, r"Received: layers entry 3"),
        (
            {"tt_rank": 2, "layers": {"fc1": {"rank": 3}}},
            r"unknown setting\(s\) \['rank'\]",
        ),
        ({"tt_rank": 2, "layers": {"fc1": {"tt_rank": 0}}}, r"tt_rank=0"),
        (
            {"tt_rank": 2, "min_params": 10**9},
            r"no layer to replace: its kernels .* are all smaller than "
            r"min_params=1000000000",
        ),
        ({"tt_rank": 2, "min_params": -1}, r"Received: min_params=-1"),
        ({"tt_rank": 2, "verbose": 5}, r"Received: verbose=5"),
        ({"tt_rank": 2, "modes": "4x4"}, r"`modes`.*Received: modes='4x4'"),
        (
            {
                "tt_rank": 2,
                "layers": ["fc1"],
                "modes": {"fc9": ((6, 8), (5, 8))},
            },
            r"`modes`: \['fc9'\] are not among the selected layers",
        ),
        (
            {"tt_rank": 2, "layers": ["fc1"], "modes": ((5, 10), (8, 5))},
            r"Layer 'fc1' \(48x40\).*product equals 48",
        ),
        (
            {"tt_rank": (2, 2, 2), "layers": ["fc1"]},
            r"Layer 'fc1'.*sequence of \d+ inner ranks",
        ),
        (
            {"target_ratio": 10**6, "layers": ["fc1"]},
            r"layer 'fc1' \(48x40, .*compressed at most [\d.]+x "
            r"\(at TT-rank 1\)",
        ),
    ],
)
def test_bad_arguments(kwargs, message):
    model = mlp()
    before = snapshot(model)
    with pytest.raises(ValueError, match=message):
        tensorize(model, **{"verbose": 0, **kwargs})
    assert_unchanged(model, before)


def test_bad_models():
    with pytest.raises(
        ValueError,
        match=r"expected a Keras model. "
        r"Received: model=Dense",
    ):
        tensorize(keras.layers.Dense(3), tt_rank=2)
    x = keras.Input((8,))
    no_dense = keras.Model(x, keras.layers.ReLU()(x), name="relu_only")
    with pytest.raises(
        ValueError,
        match=r"model 'relu_only' has no layer to replace: it holds no "
        r"layer of a kind it converts \(Dense",
    ):
        tensorize(no_dense, tt_rank=2, min_params=0)
    stranger = keras.layers.Dense(3)
    stranger.build((None, 48))
    with pytest.raises(ValueError, match=r"not part of the model"):
        tensorize(mlp(), tt_rank=2, layers=[stranger])
    unbuilt = keras.Sequential([keras.layers.Dense(3)])
    with pytest.raises(ValueError, match=r"is not built"):
        tensorize(unbuilt, tt_rank=2)


def test_module_exports():
    assert DEFAULT_MIN_PARAMS == 128 * 128
    assert math.isclose(
        model_report(
            keras.Sequential([keras.Input((4,)), dense(2, "d")])
        ).compression,
        1.0,
    )


# ------------------------------------------------------------------ example


def test_compress_mnist_example_recovers_accuracy(mnist_dir):
    path = (
        Path(__file__).resolve().parents[1] / "examples" / "compress_mnist.py"
    )
    spec = importlib.util.spec_from_file_location("compress_mnist", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    results = example.run(
        data_path=mnist_dir, epochs=1, finetune_epochs=1, verbose=0
    )
    assert "8,000/2,000" in results["data"]
    assert results["dense_accuracy"] > 0.85
    assert results["finetuned_accuracy"] > results["tt_svd_accuracy"]
    assert results["finetuned_accuracy"] > 0.8
    assert results["ranks"] == (1, 16, 16, 16, 1)
    assert results["layer_compression"] == pytest.approx(490_000 / 14_960)
