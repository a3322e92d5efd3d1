"""TT layers on 3-D and 4-D inputs export with a resizable batch."""

import keras
import numpy as np
import pytest

import keras_tt

pytest.importorskip("ai_edge_litert")


@pytest.mark.parametrize("inner", [(5,), (5, 3)])
def test_resizable_batch_export_of_nd_inputs_matches_keras(inner, tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((*inner, 16)),
            keras_tt.TTDense(8, 2, in_modes=(4, 4), activation="relu"),
            keras_tt.TTDense(6, 2, in_modes=(2, 4), bias_initializer="ones"),
        ]
    )
    report = keras_tt.export_tflite(
        model, str(tmp_path / "m.tflite"), verbose=0
    )
    # Every runtime, CompiledModel included, at batch 1 and after resizing.
    assert {c.runtime for c in report.comparisons} >= {"compiled_model"}
    assert len({c.batch_size for c in report.comparisons}) >= 2
    assert report.relative_error < 1e-5
    x = np.random.default_rng(1).normal(size=(3, *inner, 16)).astype("float32")
    runner = keras_tt.export.TFLiteRunner(str(tmp_path / "m.tflite"))
    np.testing.assert_allclose(
        runner.predict(x), keras.ops.convert_to_numpy(model(x)), atol=1e-5
    )


def test_reports_share_the_names_of_the_rest_of_the_library(tmp_path):
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(256, name="fc")]
    )
    tt = keras_tt.tensorize(model, tt_rank=4, verbose=0)
    record = tt.tensorize_report.layers[0]
    assert record.compression_ratio == tt.get_layer("fc").compression_ratio
    assert record.compression == record.compression_ratio
    assert record.as_dict()["compression_ratio"] == record.compression_ratio
    report = tt.tensorize_report
    assert report.compression_ratio == report.compression > 1
    export = keras_tt.export_tflite(tt, str(tmp_path / "m.tflite"), verbose=0)
    assert export.rel_error == export.relative_error < 1e-5
    assert all(c.rel_error == c.relative_error for c in export.comparisons)
