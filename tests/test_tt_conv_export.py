"""TT convolutions exported to TFLite: builtin ops only, matching Keras."""

import keras
import numpy as np
import pytest

from keras_tt import TTConv1D
from keras_tt import TTConv2D
from keras_tt.export import export_tflite

pytest.importorskip("ai_edge_litert")

# What the TT convolutions lower to (QUANTIZE/DEQUANTIZE for int8, the
# MEAN for the pooling; ADD, CAST, GREATER and STRIDED_SLICE where a plan
# computes merged cores in the file).
ALLOWED_OPS = {
    "ADD",
    "CAST",
    "GREATER",
    "STRIDED_SLICE",
    "CONV_2D",
    "FULLY_CONNECTED",
    "BATCH_MATMUL",
    "RESHAPE",
    "TRANSPOSE",
    "MEAN",
    "QUANTIZE",
    "DEQUANTIZE",
}


def _model():
    return keras.Sequential(
        [
            keras.Input((12, 12, 16)),
            TTConv2D(32, 3, tt_rank=6, padding="same", activation="relu"),
            TTConv2D(32, 1, tt_rank=4, strides=2),
            TTConv2D(24, 3, tt_rank=4, strides=2, padding="valid"),
            keras.layers.GlobalAveragePooling2D(),
        ]
    )


@pytest.mark.parametrize("quantization", [None, "float16", "dynamic", "int8"])
def test_export_is_builtin_only_and_matches_keras(tmp_path, quantization):
    model = _model()
    rng = np.random.default_rng(0)
    x = rng.random((8, 12, 12, 16), dtype=np.float32)
    report = export_tflite(
        model,
        str(tmp_path / "m.tflite"),
        quantization=quantization,
        representative_data=x if quantization == "int8" else None,
        validation_data=x[:2],
        verbose=False,
    )
    assert report.info.builtin_only
    ops = set(report.op_versions)
    assert "CONV_2D" in ops
    assert {"FULLY_CONNECTED", "BATCH_MATMUL"} & ops
    assert ops <= ALLOWED_OPS, ops - ALLOWED_OPS
    runtimes = {c.runtime for c in report.comparisons}
    assert {"xnnpack", "reference", "compiled_model"} <= runtimes
    tolerance = {None: 1e-4, "float16": 1e-2, "dynamic": 5e-2, "int8": 1e-1}
    for check in report.comparisons:
        assert check.relative_error < tolerance[quantization], check


def test_conv1d_causal_export(tmp_path):
    model = keras.Sequential(
        [keras.Input((16, 8)), TTConv1D(12, 3, tt_rank=3, padding="causal")]
    )
    x = np.random.default_rng(1).random((4, 16, 8), dtype=np.float32)
    report = export_tflite(
        model, str(tmp_path / "c.tflite"), validation_data=x, verbose=False
    )
    assert report.info.builtin_only
    assert "PAD" in report.op_versions
    for check in report.comparisons:
        assert check.relative_error < 1e-4
