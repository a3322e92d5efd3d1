"""tensorize on the shapes of model Keras users write: operations, masks,
wrappers, custom layers, subclassed models, compile settings, dtypes."""

import keras
import numpy as np
import pytest

import keras_tt
from keras_tt.layers import TTDense
from keras_tt.tensorize import DEFAULT_MIN_PARAMS
from keras_tt.tensorize import tensorize

FULL_RANK = 10_000

pytestmark = pytest.mark.filterwarnings(
    "ignore:Layer '[^']*'. its TT-cores hold"
)


@pytest.fixture(autouse=True)
def seed():
    keras.utils.set_random_seed(3)


def dense(units, name=None, activation=None, **kwargs):
    return keras.layers.Dense(
        units,
        activation=activation,
        name=name,
        bias_initializer="random_normal",
        **kwargs,
    )


def weights_of(model):
    return [w.numpy().copy() for w in model.weights]


def assert_untouched(model, weights, config):
    assert model.get_config() == config
    now = [w.numpy() for w in model.weights]
    assert len(now) == len(weights)
    for a, b in zip(now, weights):
        np.testing.assert_array_equal(a, b)


def tensorize_checked(model, x, atol=2e-5, **kwargs):
    """Tensorize at full rank; outputs equal, original untouched."""
    weights, config = weights_of(model), model.get_config()
    expected = keras.ops.convert_to_numpy(model(x))
    tt_model = tensorize(
        model, **{"tt_rank": FULL_RANK, "min_params": 0, "verbose": 0, **kwargs}
    )
    got = keras.ops.convert_to_numpy(tt_model(x))
    scale = max(1.0, float(np.max(np.abs(expected))))
    np.testing.assert_allclose(got, expected, atol=atol * scale, rtol=0)
    assert_untouched(model, weights, config)
    return tt_model


def tt_names(model):
    return [r.name for r in model.tensorize_report.layers]


def normal(*shape):
    return np.random.default_rng(0).normal(size=shape).astype("float32")


# ------------------------------------------------------- operation nodes


@pytest.mark.parametrize(
    "op",
    [
        lambda x, h: h * 2.0,
        lambda x, h: x + h,
        lambda x, h: keras.ops.relu(h) - keras.ops.tanh(x),
        lambda x, h: keras.ops.concatenate([h, x * h], axis=-1),
    ],
    ids=["scale", "residual", "ops", "concat"],
)
def test_operations_on_symbolic_tensors(op):
    x = keras.Input((32,))
    h = dense(32, "fc1", "gelu")(x)
    y = dense(4, "head")(op(x, h))
    model = keras.Model(x, y)
    tt_model = tensorize_checked(model, normal(5, 32))
    assert isinstance(tt_model.get_layer("fc1"), TTDense)
    assert isinstance(tt_model.get_layer("head"), TTDense)


def test_embedding_with_mask_zero_and_int_inputs():
    ids = keras.Input((7,), dtype="int32")
    h = keras.layers.Embedding(40, 24, mask_zero=True, name="embed")(ids)
    h = dense(24, "proj", "relu")(h)
    h = keras.layers.GRU(8, name="gru")(h)  # Consumes the mask.
    model = keras.Model(ids, dense(3, "head")(h))
    x = np.array([[3, 5, 9, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6, 7]], "int32")
    tt_model = tensorize_checked(model, x, layers=["proj"])
    assert tt_names(tt_model) == ["proj"]
    # The mask still reaches the GRU: the padded row gives what the GRU
    # gives on the three real steps alone.
    short_ids = keras.Input((3,), dtype="int32")
    h = short_ids
    for name in ("embed", "proj", "gru", "head"):
        h = tt_model.get_layer(name)(h)
    short = keras.Model(short_ids, h)
    np.testing.assert_allclose(
        tt_model(x[:1]), short(x[:1, :3]), atol=1e-5, rtol=1e-5
    )


def test_a_layer_called_several_times_stays_shared():
    shared = dense(16, "shared", "relu")
    a, b = keras.Input((40,)), keras.Input((40,))
    y = dense(2, "head")(keras.layers.Subtract()([shared(a), shared(b)]))
    model = keras.Model([a, b], y)
    tt_model = tensorize_checked(
        model, [normal(3, 40), normal(3, 40) + 1], layers=["shared"]
    )
    new = tt_model.get_layer("shared")
    assert isinstance(new, TTDense) and len(new._inbound_nodes) == 2


# ---------------------------------------------------------------- wrappers


def time_distributed_model():
    x = keras.Input((6, 128))
    inner = keras.layers.Dense(128, name="inner", activation="relu")
    h = keras.layers.TimeDistributed(inner, name="td")(x)
    return keras.Model(x, dense(3, "head")(h[:, -1])), inner


def test_time_distributed_dense_selected_by_default():
    model, _ = time_distributed_model()
    tt_model = tensorize_checked(
        model, normal(2, 6, 128), min_params=DEFAULT_MIN_PARAMS
    )
    assert tt_names(tt_model) == ["td/inner"]
    wrapper = tt_model.get_layer("td")
    assert isinstance(wrapper, keras.layers.TimeDistributed)
    assert isinstance(wrapper.layer, TTDense)
    assert wrapper.layer in wrapper._layers


@pytest.mark.parametrize("key", ["td/inner", "inner", "object"])
def test_time_distributed_dense_selected_by_name_or_object(key):
    model, inner = time_distributed_model()
    layers = [inner if key == "object" else key]
    tt_model = tensorize_checked(model, normal(2, 6, 128), layers=layers)
    assert tt_names(tt_model) == ["td/inner"]


def test_time_distributed_round_trip(tmp_path):
    model, _ = time_distributed_model()
    tt_model = tensorize(model, tt_rank=4, verbose=0)
    path = tmp_path / "td.keras"
    tt_model.save(path)
    loaded = keras.saving.load_model(path)
    x = normal(2, 6, 128)
    np.testing.assert_allclose(loaded(x), tt_model(x), atol=1e-6)
    assert keras_tt.model_report(loaded).layers[0].name == "td/inner"


# ----------------------------------------------------------- custom layers


@keras.saving.register_keras_serializable(package="tests")
class TransformerBlock(keras.layers.Layer):
    """The keras.io text-classification block: no get_config of its own."""

    def __init__(self, embed_dim, num_heads, ff_dim, rate=0.1, **kwargs):
        super().__init__(**kwargs)
        self.att = keras.layers.MultiHeadAttention(num_heads, embed_dim)
        self.ffn = keras.Sequential(
            [
                keras.layers.Dense(ff_dim, activation="relu", name="ff1"),
                keras.layers.Dense(embed_dim, name="ff2"),
            ],
            name="ffn",
        )
        self.layernorm1 = keras.layers.LayerNormalization(epsilon=1e-6)
        self.layernorm2 = keras.layers.LayerNormalization(epsilon=1e-6)
        self.dropout1 = keras.layers.Dropout(rate)
        self.dropout2 = keras.layers.Dropout(rate)

    def call(self, inputs, training=False):
        attn_output = self.att(inputs, inputs)
        attn_output = self.dropout1(attn_output, training=training)
        out1 = self.layernorm1(inputs + attn_output)
        ffn_output = self.ffn(out1)
        ffn_output = self.dropout2(ffn_output, training=training)
        return self.layernorm2(out1 + ffn_output)


@keras.saving.register_keras_serializable(package="tests")
class BuiltInBuild(keras.layers.Layer):
    """Creates its Dense in `build`, as keras_hub layers do."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.proj = keras.layers.Dense(self.units, name="proj")
        self.proj.build(input_shape)
        self.scale = self.add_weight(
            shape=(self.units,), initializer="random_normal", name="scale"
        )

    def call(self, x):
        return self.proj(x) * self.scale

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def transformer_classifier():
    ids = keras.Input((10,), dtype="int32")
    h = keras.layers.Embedding(50, 32, name="embed")(ids)
    h = TransformerBlock(32, 2, 64, name="block")(h)
    h = keras.layers.GlobalAveragePooling1D()(h)
    return keras.Model(ids, dense(4, "head")(h))


def test_dense_layers_inside_a_registered_custom_layer(tmp_path):
    model = transformer_classifier()
    x = np.random.default_rng(1).integers(0, 50, size=(3, 10)).astype("int32")
    tt_model = tensorize_checked(
        model, x, layers=lambda l: getattr(l, "units", 0) == 64
    )
    assert tt_names(tt_model) == ["block/ffn/ff1"]
    block = tt_model.get_layer("block")
    assert isinstance(block.ffn.layers[0], TTDense)
    assert block is not model.get_layer("block")
    # Attention, norms and the second Dense hold copies, not the originals.
    old_ids = {id(w) for w in model.weights}
    assert not any(id(w) in old_ids for w in tt_model.weights)
    path = tmp_path / "block.keras"
    tt_model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded(x), tt_model(x), atol=1e-5)


def test_dense_created_in_build_is_replaced():
    x = keras.Input((24,))
    model = keras.Model(x, BuiltInBuild(20, name="custom")(x))
    tt_model = tensorize_checked(model, normal(4, 24))
    assert tt_names(tt_model) == ["custom/proj"]
    custom = tt_model.get_layer("custom")
    np.testing.assert_array_equal(
        custom.scale.numpy(), model.get_layer("custom").scale.numpy()
    )


class UnregisteredBlock(keras.layers.Layer):
    """A custom layer holding a Dense, not registered for serialization."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.fc = keras.layers.Dense(
            200, name="fc", bias_initializer="random_normal"
        )

    def call(self, x):
        return self.fc(x)


def test_dense_in_an_unregistered_custom_layer_is_substituted(tmp_path):
    x = keras.Input((100,))
    model = keras.Model(x, UnregisteredBlock(name="blk")(x))
    tt_model = tensorize_checked(model, normal(3, 100), layers=["blk/fc"])
    assert tt_names(tt_model) == ["blk/fc"]
    assert isinstance(tt_model.get_layer("blk").fc, TTDense)
    # The original is untouched; the copy's Dense is gone from its weights.
    assert isinstance(model.get_layer("blk").fc, keras.layers.Dense)
    assert tt_model.count_params() < model.count_params() * 2
    path = tmp_path / "blk.keras"
    tt_model.save(path)
    loaded = keras.saving.load_model(
        path, custom_objects={"UnregisteredBlock": UnregisteredBlock}
    )
    assert isinstance(loaded.get_layer("blk").fc, TTDense)
    np.testing.assert_allclose(
        loaded(normal(3, 100)), tt_model(normal(3, 100)), atol=1e-6
    )


def test_dense_held_in_a_dict_is_substituted():
    @keras.saving.register_keras_serializable(package="tests")
    class Heads(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.heads = {"a": keras.layers.Dense(200, name="fc")}

        def call(self, x):
            return self.heads["a"](x)

    x = keras.Input((100,))
    model = keras.Model(x, Heads(name="heads")(x))
    tt_model = tensorize_checked(model, normal(2, 100), layers=["heads/fc"])
    assert isinstance(tt_model.get_layer("heads").heads["a"], TTDense)


def test_default_selection_reaches_layers_in_unregistered_holders():
    x = keras.Input((100,))
    h = UnregisteredBlock(name="blk")(
        dense(100, "first")(dense(200, "zero")(x))
    )
    model = keras.Model(x, h)
    tt_model = tensorize_checked(
        model, normal(2, 100), min_params=DEFAULT_MIN_PARAMS
    )
    assert tt_names(tt_model) == ["zero", "first", "blk/fc"]


def test_a_model_that_cannot_be_copied_is_left_untouched():
    class Stubborn(keras.layers.Layer):
        def __init__(self, width, **kwargs):
            super().__init__(**kwargs)
            self.fc = keras.layers.Dense(width, name="fc")

        def get_config(self):
            return {"name": self.name}  # `width` is missing

        def call(self, x):
            return self.fc(x)

    x = keras.Input((100,))
    model = keras.Model(x, Stubborn(200, name="stub")(x))
    weights, config = weights_of(model), model.get_config()
    with pytest.raises(
        ValueError, match=r"could not clone layer 'stub' \(Stubborn\)"
    ):
        tensorize(model, tt_rank=2, min_params=0, verbose=0)
    assert_untouched(model, weights, config)


# ------------------------------------------------------- subclassed models


@keras.saving.register_keras_serializable(package="tests")
class Classifier(keras.Model):
    def __init__(self, hidden=128, classes=5, **kwargs):
        super().__init__(**kwargs)
        self.hidden, self.classes = hidden, classes
        self.fc = keras.layers.Dense(hidden, activation="relu", name="fc")
        self.norm = keras.layers.LayerNormalization(name="norm")
        self.out = keras.layers.Dense(classes, name="out")

    def call(self, x):
        return self.out(self.norm(self.fc(x)))

    def get_config(self):
        return {
            **super().get_config(),
            "hidden": self.hidden,
            "classes": self.classes,
        }


def test_registered_subclassed_model_is_tensorized(tmp_path):
    model = Classifier()
    x = normal(4, 200)
    model(x)
    model.norm.gamma.assign(normal(128) + 1)
    tt_model = tensorize_checked(model, x, layers=["fc"])
    assert isinstance(tt_model, Classifier) and tt_model.built
    assert isinstance(tt_model.fc, TTDense)
    assert type(tt_model.out) is keras.layers.Dense
    assert tt_model.count_params() < model.count_params() + 10**6
    tt_model.compile(optimizer="sgd", loss="mse")
    tt_model.fit(x, np.zeros((4, 5)), epochs=1, verbose=0)
    path = tmp_path / "sub.keras"
    tt_model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded(x), tt_model(x), atol=1e-5)


# ----------------------------------------------------------- compile config


def plain_loss(y_true, y_pred):
    return keras.ops.mean(keras.ops.square(y_true - y_pred))


class UnregisteredLoss(keras.losses.Loss):
    def call(self, y_true, y_pred):
        return keras.ops.mean(keras.ops.abs(y_true - y_pred), axis=-1)


class UnregisteredMetric(keras.metrics.Mean):
    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(keras.ops.abs(y_true - y_pred))


def plain_metric(y_true, y_pred):
    return keras.ops.max(keras.ops.abs(y_true - y_pred))


@pytest.mark.parametrize(
    "loss, metrics",
    [
        (plain_loss, None),
        (lambda y, p: keras.ops.mean((y - p) ** 2), None),
        (UnregisteredLoss(), None),
        ("mse", [UnregisteredMetric(name="um")]),
        ("mse", [plain_metric]),
    ],
    ids=["function", "lambda", "loss-subclass", "metric-class", "metric-fn"],
)
def test_compiled_with_objects_that_do_not_deserialize(loss, metrics):
    model = keras.Sequential(
        [keras.Input((64,)), dense(128, "fc", "relu"), dense(2, "head")]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3), loss=loss, metrics=metrics
    )
    x, y = normal(16, 64), normal(16, 2)
    expected = model.evaluate(x, y, verbose=0, return_dict=True)
    tt_model = tensorize_checked(model, x)
    assert tt_model.compiled and tt_model.optimizer is not model.optimizer
    got = tt_model.evaluate(x, y, verbose=0, return_dict=True)
    assert set(got) == set(expected)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-4)
    tt_model.fit(x, y, epochs=1, verbose=0)


def test_compile_that_cannot_be_rebuilt_returns_uncompiled(monkeypatch):
    from keras_tt.tensorize import _pass

    model = keras.Sequential([keras.Input((64,)), dense(128, "fc")])
    model.compile(optimizer="adam", loss=plain_loss)
    monkeypatch.setattr(_pass, "compile_plan", lambda model: ("none", "no way"))
    with pytest.warns(
        UserWarning,
        match=r"\(no way\); the tensorized model "
        r"is returned uncompiled",
    ):
        tt_model = tensorize(model, tt_rank=2, min_params=0, verbose=0)
    assert not tt_model.compiled and model.compiled


# ------------------------------------------------------------------ dtypes


@pytest.mark.parametrize(
    "dtype, atol",
    [
        ("float32", 2e-5),
        ("float64", 1e-10),
        ("float16", 2e-2),
        ("bfloat16", 1e-1),
        ("mixed_float16", 2e-2),
        ("mixed_bfloat16", 1e-1),
    ],
)
def test_every_float_dtype(dtype, atol):
    model = keras.Sequential(
        [
            keras.Input((64,)),
            dense(96, "fc", "relu", dtype=dtype),
            dense(3, "head", dtype=dtype),
        ]
    )
    x = normal(5, 64)
    tt_model = tensorize_checked(model, x, atol=atol)
    fc = tt_model.get_layer("fc")
    assert fc.dtype_policy.name == model.get_layer("fc").dtype_policy.name
    assert fc.cores[0].dtype == model.get_layer("fc").kernel.dtype


def test_non_float_kernel_refused_before_work():
    model = keras.Sequential([keras.Input((8,)), dense(8, "fc")])
    model.get_layer("fc").quantize("int8")
    with pytest.raises(ValueError, match=r"'fc' is quantized \('int8'\)"):
        tensorize(model, tt_rank=2, min_params=0, verbose=0)


# ------------------------------------------------ regularisers, constraints


def test_kernel_regularizer_and_constraint_carried_to_the_cores():
    model = keras.Sequential(
        [
            keras.Input((64,)),
            dense(
                128,
                "fc",
                kernel_regularizer=keras.regularizers.L2(1e-3),
                kernel_constraint=keras.constraints.MaxNorm(3.0),
                bias_regularizer=keras.regularizers.L1(1e-3),
            ),
        ]
    )
    model(normal(2, 64))
    assert len(model.losses) == 2
    with pytest.warns(UserWarning, match=r"now apply to each TT-core"):
        tt_model = tensorize(model, tt_rank=FULL_RANK, min_params=0, verbose=0)
    fc = tt_model.get_layer("fc")
    assert isinstance(fc, TTDense)
    tt_model(normal(2, 64))
    # One L2 term per core plus the bias term.
    assert len(tt_model.losses) == len(fc.cores) + 1
    expected = sum(
        1e-3 * float(np.sum(np.square(c.numpy()))) for c in fc.cores
    ) + 1e-3 * float(np.sum(np.abs(fc.bias.numpy())))
    np.testing.assert_allclose(float(sum(tt_model.losses)), expected, rtol=1e-4)
    assert isinstance(fc.kernel_constraint, keras.constraints.MaxNorm)
