"""A zoo of real architectures through tensorize, `.keras` and LiteRT.

For each model: tensorize at full rank and compare the logits with the
original's; save and load the tensorized model; export it to float32 and
int8 LiteRT files with builtin ops only and compare LiteRT with Keras.
Small inputs keep the whole module to a few minutes on two cores.
"""

import dataclasses
import math
import warnings
from collections.abc import Callable

import keras
import numpy as np
import pytest

import keras_tt
from keras_tt.tensorize import DEFAULT_MIN_PARAMS

pytestmark = [
    pytest.mark.zoo,
    pytest.mark.filterwarnings("ignore:Layer '[^']*'. its TT-cores hold"),
]

FULL_RANK = 10_000
# Quantised export of a randomly initialised network: the int8 file's
# relative error against Keras stays well within this.
INT8_TOLERANCE = 0.15


@dataclasses.dataclass
class Case:
    build: Callable
    # tensorize's `layers` argument (None: the default selection).
    layers: object = None
    # Names (paths) that must be among the replaced kernels.
    expect: tuple = ()
    # Randomly initialised deep conv nets have vanishing logits (around
    # 1e-12 for MobileNetV2 at 32x32) that int8 cannot represent; there the
    # int8 file is compared with the int8 export of the original instead.
    int8_reference: bool = False


def rng():
    return np.random.default_rng(0)


def images(batch=4, size=32):
    return rng().uniform(0, 1, size=(batch, size, size, 3)).astype("float32")


def token_ids(batch, length, vocab):
    ids = rng().integers(1, vocab, size=(batch, length)).astype("int32")
    ids[0, length // 2 :] = 0  # Some padding.
    return ids


def mobilenet_v2():
    model = keras.applications.MobileNetV2(
        input_shape=(32, 32, 3),
        weights=None,
        classes=10,
        classifier_activation=None,
    )
    return model, images()


def resnet50():
    model = keras.applications.ResNet50(
        input_shape=(32, 32, 3),
        weights=None,
        classes=10,
        classifier_activation=None,
    )
    return model, images()


def efficientnet_b0():
    model = keras.applications.EfficientNetB0(
        input_shape=(32, 32, 3),
        weights=None,
        classes=10,
        classifier_activation=None,
    )
    return model, images()


def transformer_encoder():
    """An encoder block written with `x + y` residuals."""
    ids = keras.Input((16,), dtype="int32", name="ids")
    x = keras.layers.Embedding(200, 64, name="embed")(ids)
    attention = keras.layers.MultiHeadAttention(4, 16, name="attention")
    x = keras.layers.LayerNormalization(name="norm1")(x + attention(x, x))
    y = keras.layers.Dense(256, activation="gelu", name="ff1")(x)
    y = keras.layers.Dense(64, name="ff2")(y)
    x = keras.layers.LayerNormalization(name="norm2")(x + y)
    x = keras.layers.GlobalAveragePooling1D()(x)
    model = keras.Model(ids, keras.layers.Dense(5, name="logits")(x))
    return model, token_ids(4, 16, 200)


def bert_backbone():
    import keras_hub

    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=300,
        num_layers=2,
        num_heads=2,
        hidden_dim=64,
        intermediate_dim=256,
        max_sequence_length=16,
    )
    # A fixed sequence length, as an on-device export needs.
    inputs = {
        name: keras.Input((16,), dtype="int32", name=name)
        for name in ("token_ids", "segment_ids", "padding_mask")
    }
    model = keras.Model(inputs, backbone(inputs))
    ids = token_ids(3, 16, 300)
    inputs = {
        "token_ids": ids,
        "segment_ids": np.zeros_like(ids),
        "padding_mask": (ids != 0).astype("int32"),
    }
    return model, inputs


def text_classifier():
    ids = keras.Input((20,), dtype="int32", name="ids")
    x = keras.layers.Embedding(500, 128, mask_zero=True, name="embed")(ids)
    x = keras.layers.Dense(128, activation="relu", name="proj")(x)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    model = keras.Model(ids, keras.layers.Dense(4, name="logits")(x))
    return model, token_ids(4, 20, 500)


def time_distributed():
    x = keras.Input((6, 128), name="frames")
    h = keras.layers.TimeDistributed(
        keras.layers.Dense(128, activation="relu", name="frame_fc"),
        name="per_frame",
    )(x)
    h = keras.layers.GlobalAveragePooling1D()(h)
    model = keras.Model(x, keras.layers.Dense(3, name="logits")(h))
    data = rng().normal(size=(4, 6, 128)).astype("float32")
    return model, data


def dict_inputs():
    a = keras.Input((128,), name="a")
    b = keras.Input((64,), name="b")
    h = keras.layers.Dense(128, activation="relu", name="fa")(a)
    h = keras.layers.Concatenate()([h, b])
    h = keras.layers.Dense(192, activation="relu", name="fab")(h)
    model = keras.Model({"a": a, "b": b}, keras.layers.Dense(3, name="o")(h))
    data = {
        "a": rng().normal(size=(4, 128)).astype("float32"),
        "b": rng().normal(size=(4, 64)).astype("float32"),
    }
    return model, data


def shared_dense():
    shared = keras.layers.Dense(128, activation="tanh", name="shared")
    a = keras.Input((128,), name="left")
    b = keras.Input((128,), name="right")
    h = keras.layers.Concatenate()([shared(a), shared(b)])
    model = keras.Model([a, b], keras.layers.Dense(2, name="logits")(h))
    data = [
        rng().normal(size=(4, 128)).astype("float32"),
        rng().normal(size=(4, 128)).astype("float32") + 1,
    ]
    return model, data


def nested_model():
    inner = keras.Sequential(
        [
            keras.Input((160,)),
            keras.layers.Dense(128, activation="relu", name="inner_fc"),
            keras.layers.BatchNormalization(name="bn"),
        ],
        name="block",
    )
    x = keras.Input((160,))
    model = keras.Model(x, keras.layers.Dense(3, name="logits")(inner(x)))
    return model, rng().normal(size=(4, 160)).astype("float32")


CASES = {
    "MobileNetV2": Case(
        mobilenet_v2, ["predictions"], ("predictions",), int8_reference=True
    ),
    # The head only, as for the other two: the default selection (which
    # now takes the convolutions too) has its own test below.
    "ResNet50": Case(
        resnet50, ["predictions"], ("predictions",), int8_reference=True
    ),
    "EfficientNetB0": Case(
        efficientnet_b0,
        ["predictions"],
        ("predictions",),
        int8_reference=True,
    ),
    "transformer encoder": Case(transformer_encoder, None, ("ff1", "ff2")),
    "BERT backbone": Case(bert_backbone, None),
    "text classifier": Case(text_classifier, None, ("proj",)),
    "TimeDistributed": Case(time_distributed, None, ("per_frame/frame_fc",)),
    "dict inputs": Case(dict_inputs, None, ("fa", "fab")),
    "shared Dense": Case(shared_dense, None, ("shared",)),
    "nested model": Case(nested_model, None, ("block/inner_fc",)),
}


def flat(outputs):
    return [keras.ops.convert_to_numpy(o) for o in keras.tree.flatten(outputs)]


def assert_close(got, expected, rtol=1e-4):
    got, expected = flat(got), flat(expected)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        scale = max(1.0, float(np.max(np.abs(e))))
        np.testing.assert_allclose(g, e, atol=rtol * scale, rtol=0)


_built = {}


def tensorized(name):
    """The case's model, inputs and full-rank tensorized model (cached)."""
    if name not in _built:
        keras.utils.set_random_seed(1)
        case = CASES[name]
        model, data = case.build()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tt_model = keras_tt.tensorize(
                model, tt_rank=FULL_RANK, layers=case.layers, verbose=0
            )
        _built[name] = (model, data, tt_model)
    return _built[name]


@pytest.mark.parametrize("name", list(CASES))
def test_full_rank_matches_the_original(name):
    model, data, tt_model = tensorized(name)
    records = tt_model.tensorize_report.layers
    names = [r.name for r in records]
    assert records and set(CASES[name].expect) <= set(names)
    assert_close(tt_model(data), model(data))


@pytest.mark.parametrize("name", list(CASES))
def test_keras_round_trip(name, tmp_path):
    _, data, tt_model = tensorized(name)
    path = tmp_path / "model.keras"
    tt_model.save(path)
    loaded = keras.saving.load_model(path)
    assert_close(loaded(data), tt_model(data), rtol=1e-6)
    report = keras_tt.model_report(loaded)
    assert {r.name for r in report.layers} >= {
        r.name for r in tt_model.tensorize_report.layers if r.kind == "Dense"
    }


@pytest.mark.parametrize("quantization", [None, "int8"])
@pytest.mark.parametrize("name", list(CASES))
def test_litert_export(name, quantization, tmp_path):
    pytest.importorskip("ai_edge_litert")
    model, data, tt_model = tensorized(name)

    def export(m, file_name):
        return keras_tt.export_tflite(
            m,
            tmp_path / file_name,
            quantization=quantization,
            representative_data=data if quantization else None,
            validation_data=data,
            verbose=False,
        )

    # Float32: export_tflite itself fails unless LiteRT matches Keras.
    report = export(tt_model, "tt.tflite")
    assert report.info.ops, "no ops in the exported file"
    assert math.isfinite(report.relative_error)
    if quantization == "int8":
        assert report.quantized_tensors
        if CASES[name].int8_reference:
            reference = export(model, "dense.tflite").relative_error
            assert report.relative_error <= reference + 0.05
        else:
            assert report.relative_error < INT8_TOLERANCE


def test_default_selection_finds_the_resnet_head():
    model, _, _ = tensorized("ResNet50")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tt_model = keras_tt.tensorize(model, tt_rank=4, verbose=0)
    head = model.get_layer("predictions")
    assert math.prod(head.kernel.shape) >= DEFAULT_MIN_PARAMS
    assert isinstance(tt_model.get_layer("predictions"), keras_tt.TTDense)


def test_zoo_table():
    """Print the README's zoo table: kernels replaced and compression."""
    rows = []
    for name, case in CASES.items():
        keras.utils.set_random_seed(1)
        model, _ = case.build()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tt = keras_tt.tensorize(
                model, tt_rank=8, layers=case.layers, verbose=0
            )
        report = tt.tensorize_report
        rows.append(
            f"| {name} | {len(report.layers)} | "
            f"{report.kernel_params_before:,} | {report.kernel_params_after:,} "
            f"| {report.params_before:,} | {report.params_after:,} | "
            f"{report.compression:.2f}x |"
        )
        assert report.params_after < report.params_before
    print("\n" + "\n".join(rows))
