"""Convolutional architectures of keras.applications through tensorize.

The cheapest check that says something per model, small inputs, random
weights (``weights=None``, no download):

- ResNet50: share of the parameters the pass reaches (its convolutions
  and head) and whole-model compression at TT-ranks 8 and 16;
- MobileNetV2: full TT-ranks give the original logits, the depthwise
  convolutions are left alone with the reason, `.keras` round trip, and
  at TT-rank 8 a builtin-only LiteRT file that matches Keras;
- EfficientNetB0: share reached, compression at rank 16, outputs finite,
  a builtin-only LiteRT file that matches Keras;
- MobileNetV3Small: full TT-ranks give the original logits, share
  reached. (Its LiteRT export is not compared here: LiteRT's CompiledModel
  disagrees with Keras on the original, untensorized network already.)
"""

import warnings

import keras
import numpy as np
import pytest

import keras_tt
from keras_tt import TTConv2D

pytestmark = [
    pytest.mark.zoo,
    pytest.mark.filterwarnings("ignore:Layer '[^']*'. its TT-cores hold"),
    pytest.mark.filterwarnings("ignore:`tensorize` leaves"),
]

FULL_RANK = 10_000


def _images(size, batch=2):
    rng = np.random.default_rng(0)
    return rng.uniform(0, 1, (batch, size, size, 3)).astype("float32")


def _relative_error(a, b):
    a, b = keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _build(builder, size):
    return builder(
        input_shape=(size, size, 3),
        weights=None,
        classes=10,
        classifier_activation=None,
    )


def _reached_share(model, tt_model):
    report = tt_model.tensorize_report
    return report.kernel_params_before / model.count_params()


def test_resnet50_share_and_compression_at_rank_8_and_16():
    model = _build(keras.applications.ResNet50, 64)
    ratios = {}
    for rank in (8, 16):
        tt_model = keras_tt.tensorize(model, tt_rank=rank, verbose=0)
        report = tt_model.tensorize_report
        ratios[rank] = report.compression_ratio
        assert report.params_after == tt_model.count_params()
        kinds = {r.kind for r in report.layers}
        assert {"Conv2D 1x1", "Conv2D 3x3", "Dense"} <= kinds
    # 1x1 and 3x3 convolutions and the head: nearly every parameter.
    assert _reached_share(model, tt_model) > 0.95
    assert ratios[8] > ratios[16] > 10
    y = tt_model(_images(64))
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(y)))


def test_mobilenet_v2_full_rank_equals_original_and_round_trips(tmp_path):
    model = _build(keras.applications.MobileNetV2, 64)
    x = _images(64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tt_model = keras_tt.tensorize(model, tt_rank=FULL_RANK, verbose=0)
    depthwise = [
        str(w.message) for w in caught if "depthwise" in str(w.message)
    ]
    assert depthwise and "block_1_depthwise" in depthwise[0]
    assert isinstance(tt_model.get_layer("block_16_project"), TTConv2D)
    assert isinstance(
        tt_model.get_layer("block_1_depthwise"), keras.layers.DepthwiseConv2D
    )
    expected = model(x)
    assert _relative_error(tt_model(x), expected) < 1e-3
    low = keras_tt.tensorize(model, tt_rank=8, verbose=0)
    path = tmp_path / "mobilenet_v2_tt.keras"
    low.save(path)
    loaded = keras.saving.load_model(path)
    assert _relative_error(loaded(x), low(x)) < 1e-5
    print(
        "MobileNetV2 64x64: reached "
        f"{_reached_share(model, low):.0%} of the parameters, rank 8 "
        f"{low.tensorize_report.compression_ratio:.2f}x whole-model"
    )


def test_efficientnet_b0_share_compression_and_export_at_rank_16(tmp_path):
    model = _build(keras.applications.EfficientNetB0, 64)
    tt_model = keras_tt.tensorize(model, tt_rank=16, verbose=0)
    report = tt_model.tensorize_report
    assert _reached_share(model, tt_model) > 0.6
    assert report.compression_ratio > 2
    y = keras.ops.convert_to_numpy(tt_model(_images(64)))
    assert np.all(np.isfinite(y))
    _check_litert_export(tt_model, tmp_path)


def test_mobilenet_v3_small_full_rank_and_share():
    model = _build(keras.applications.MobileNetV3Small, 64)
    x = _images(64)
    full = keras_tt.tensorize(model, tt_rank=FULL_RANK, verbose=0)
    assert _relative_error(full(x), model(x)) < 1e-3
    tt_model = keras_tt.tensorize(model, tt_rank=8, verbose=0)
    assert _reached_share(model, tt_model) > 0.8


def _check_litert_export(tt_model, folder):
    """A builtin-only float32 file of the cores that matches Keras."""
    pytest.importorskip("ai_edge_litert.interpreter")
    from keras_tt.export import TFLiteRunner
    from keras_tt.export import export_tflite

    x = _images(64, batch=3)
    path = folder / "cnn.tflite"
    report = export_tflite(tt_model, path, validation_data=x, verbose=0)
    assert report.info.builtin_only
    assert "CONV_2D" in report.op_versions
    # The file holds the cores, not rebuilt kernels.
    assert path.stat().st_size < 4 * 1.2 * tt_model.count_params() + 2**16
    got = TFLiteRunner(path, num_threads=1)(x)
    assert _relative_error(got, tt_model(x)) < 1e-4


def test_tensorized_mobilenet_v2_exports_builtin_only_and_matches_keras(
    tmp_path,
):
    # ResNet50's export is verified the same way (inside export_tflite) by
    # `benchmarks/conv_speed.py --parts models`, too slow for this suite.
    model = _build(keras.applications.MobileNetV2, 64)
    tt_model = keras_tt.tensorize(model, tt_rank=8, verbose=0)
    assert any(isinstance(layer, TTConv2D) for layer in tt_model.layers)
    _check_litert_export(tt_model, tmp_path)
