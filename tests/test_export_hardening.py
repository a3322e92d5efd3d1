"""Bad input to the export and inspection: refused early, nothing lost.

Every failing call also checks that the file at the target path (and the
user's model) is unchanged and that no temporary file is left behind.
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_tt
from keras_tt.export import ExportReport
from keras_tt.export import VerificationError
from keras_tt.export import _op_audit
from keras_tt.export import _verification
from keras_tt.export import export_keras_file
from keras_tt.export import export_tflite
from keras_tt.export import inspect_tflite
from keras_tt.export.report import Comparison

pytest.importorskip("ai_edge_litert.interpreter")

PREVIOUS = b"previous file"


def small_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((64,), name="x")
    x = keras_tt.TTDense(
        32,
        4,
        in_modes=(8, 8),
        out_modes=(4, 8),
        activation="relu",
        bias_initializer="random_normal",
    )(inputs)
    return keras.Model(inputs, keras.layers.Dense(10)(x))


def calibration(n=32, width=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, width)).astype("float32")


@pytest.fixture
def target(tmp_path):
    """A file at the export path whose content must survive failures."""
    path = tmp_path / "m.tflite"
    path.write_bytes(PREVIOUS)
    return path


def weights_of(model):
    return [w.copy() for w in model.get_weights()]


def assert_untouched(target, model=None, weights=None):
    assert target.read_bytes() == PREVIOUS
    assert sorted(os.listdir(target.parent)) == [target.name]
    if model is not None:
        for before, after in zip(weights, model.get_weights()):
            np.testing.assert_array_equal(before, after)


# ------------------------------------------------- non-finite data


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("argument", ["representative_data", "validation_data"])
def test_non_finite_data_is_refused_before_conversion(bad, argument, target):
    model = small_model()
    weights = weights_of(model)
    data = calibration()
    data[3, 17] = bad
    kwargs = {argument: data}
    if argument == "representative_data":
        kwargs["quantization"] = "int8"
    with pytest.raises(
        ValueError,
        match=(
            rf"`{argument}`, expected finite values for input 'x'\. "
            rf"Received: 1 NaN or infinite values, the first .* at index "
            r"\(3, 17\)"
        ),
    ):
        export_tflite(model, target, verbose=False, **kwargs)
    assert_untouched(target, model, weights)


_INF_CALIBRATION_SCRIPT = r"""
import sys
import keras, numpy as np, keras_tt
inputs = keras.Input((64,))
model = keras.Model(inputs, keras.layers.Dense(10)(inputs))
data = np.random.default_rng(0).normal(size=(16, 64)).astype("float32")
data[0, 0] = np.inf
try:
    keras_tt.export_tflite(model, sys.argv[1], quantization="int8",
                           representative_data=data, verbose=False)
except ValueError as error:
    print("REFUSED:", error)
"""


def test_inf_in_int8_calibration_is_refused_without_a_crash(target):
    # This used to kill the process inside the converter: run it apart.
    result = subprocess.run(
        [sys.executable, "-c", _INF_CALIBRATION_SCRIPT, str(target)],
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "REFUSED:" in result.stdout
    assert "expected finite values" in result.stdout
    assert_untouched(target)


# --------------------------------------------- NaN-aware verification


def test_nan_in_keras_outputs_fails_verification(target):
    # log of the random normal samples: NaN for every negative entry.
    inputs = keras.Input((16,))
    outputs = keras.layers.Lambda(keras.ops.log)(keras.layers.Dense(4)(inputs))
    model = keras.Model(inputs, outputs)
    for quantization in (None, "dynamic"):
        with pytest.raises(
            VerificationError,
            match=r"Keras model's outputs hold NaN or infinite values",
        ):
            export_tflite(
                model,
                target,
                quantization=quantization,
                tolerance=1e-30,
                verbose=False,
            )
        assert_untouched(target)


@pytest.mark.parametrize("quantization", [None, "float16", "dynamic"])
def test_nan_in_litert_outputs_fails_verification(
    quantization, target, monkeypatch
):
    real_call = _verification.TFLiteRunner.__call__

    def one_nan(self, x):
        y = np.array(real_call(self, x))
        y[0, 0] = np.nan
        return y

    monkeypatch.setattr(_verification.TFLiteRunner, "__call__", one_nan)
    with pytest.raises(
        VerificationError,
        match=r"LiteRT \(xnnpack, batch 1\) outputs hold NaN or infinite",
    ):
        export_tflite(
            small_model(), target, quantization=quantization, verbose=False
        )
    assert_untouched(target)


def test_error_reductions_keep_nan():
    finite = [np.ones((2, 3), np.float32)]
    with_nan = [np.array([[1.0, np.nan, 1.0], [1, 1, 1]], np.float32)]
    relative, max_abs = _verification.errors(with_nan, finite)
    assert np.isnan(relative) and np.isnan(max_abs)
    assert np.isnan(_verification.nan_max([0.5, float("nan"), 0.1]))
    assert _verification.nan_max([0.5, 0.1]) == 0.5
    report = ExportReport(
        path="m.tflite",
        quantization=None,
        info=None,
        comparisons=(
            Comparison("xnnpack", 1, 1e-7, 1e-7),
            Comparison("reference", 1, float("nan"), float("nan")),
        ),
        tolerance=1e-5,
        num_samples=1,
        sample_source="test",
    )
    assert np.isnan(report.relative_error)
    assert np.isnan(report.max_abs_error)
    with pytest.raises(VerificationError, match=r"relative error nan"):
        _verification.check_tolerance(report.comparisons, 1e-5)


# ------------------------------------------------ int8 really is int8


def test_only_a_full_integer_file_passes_the_int8_check(tmp_path):
    model = small_model()
    infos = {}
    for quantization in ("float16", "dynamic", "int8"):
        path = tmp_path / f"{quantization}.tflite"
        export_tflite(
            model,
            path,
            quantization=quantization,
            representative_data=calibration(),
            verbose=False,
        )
        infos[quantization] = inspect_tflite(path)
    _op_audit.check_full_integer(infos["int8"])
    for quantization in ("float16", "dynamic"):
        with pytest.raises(
            VerificationError,
            match=r"not fully integer.*\(FULLY_CONNECTED\)",
        ):
            _op_audit.check_full_integer(infos[quantization])


@pytest.mark.parametrize("value", [0.0, 3.5])
def test_constant_calibration_data_is_refused(value, target):
    model = small_model()
    with pytest.raises(
        ValueError,
        match=(
            r"`representative_data`, expected calibration samples that "
            rf"vary.*every value of input 'x' equal to {value}"
        ),
    ):
        export_tflite(
            model,
            target,
            quantization="int8",
            representative_data=np.full((16, 64), value, "float32"),
            verbose=False,
        )
    assert_untouched(target)


# ------------------------------------------------------ argument checks


@pytest.mark.parametrize(
    "tolerance", [-1, 0, 0.0, float("nan"), float("inf"), "1e-5", True, None]
)
def test_invalid_tolerance_is_refused(tolerance, target):
    with pytest.raises(
        ValueError,
        match=(
            r"Received an invalid value for `tolerance`, expected a positive "
            rf"finite number.*Received: tolerance={repr(tolerance)}"
        ),
    ):
        export_tflite(small_model(), target, tolerance=tolerance)
    assert_untouched(target)


def test_labels_of_the_wrong_length_are_refused(target):
    x = calibration(10)
    with pytest.raises(
        ValueError,
        match=r"`labels`.*expected 10 labels, one per sample\. Received: 9",
    ):
        export_tflite(
            small_model(),
            target,
            validation_data=(x, np.zeros(9, int)),
            verbose=False,
        )
    with pytest.raises(ValueError, match=r"`labels`.*shape \(10,\)"):
        export_tflite(
            small_model(),
            target,
            validation_data=(x, np.zeros((10, 3))),
            verbose=False,
        )
    assert_untouched(target)


@pytest.mark.parametrize("width", [63, 65])
def test_calibration_data_of_the_wrong_width_is_refused(width, target):
    with pytest.raises(
        ValueError,
        match=(
            r"`representative_data`, expected samples of shape \(None, 64\) "
            rf"for input 'x'\. Received: array of shape \(8, {width}\)"
        ),
    ):
        export_tflite(
            small_model(),
            target,
            quantization="int8",
            representative_data=calibration(8, width),
            verbose=False,
        )
    assert_untouched(target)


def test_empty_or_folder_path_is_refused(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for path in ("", str(tmp_path), str(work) + os.sep):
        with pytest.raises(
            ValueError, match=r"expected the path of a file to write"
        ):
            export_tflite(small_model(), path, verbose=False)
    with pytest.raises(TypeError, match=r"Received: path=3"):
        export_tflite(small_model(), 3, verbose=False)
    assert os.listdir(work) == []
    assert sorted(os.listdir(tmp_path)) == ["work"]


@pytest.mark.parametrize("link", [None, "symlink", "hardlink"])
def test_export_keras_file_never_writes_over_its_input(link, tmp_path):
    model = small_model()
    source = tmp_path / "m.keras"
    model.save(source)
    content = source.read_bytes()
    destination = source
    if link == "symlink":
        destination = tmp_path / "alias.keras"
        destination.symlink_to(source)
    elif link == "hardlink":
        destination = tmp_path / "alias.keras"
        os.link(source, destination)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(
        ValueError,
        match=r"`output_path`, expected a file other than `model_path`",
    ):
        export_keras_file(source, destination, verbose=False)
    assert source.read_bytes() == content
    assert sorted(os.listdir(tmp_path)) == before


def test_export_keras_file_never_writes_over_the_samples(tmp_path):
    small_model().save(tmp_path / "m.keras")
    samples = tmp_path / "x.npy"
    np.save(samples, calibration(8))
    content = samples.read_bytes()
    with pytest.raises(ValueError, match=r"other than `representative_path`"):
        export_keras_file(
            tmp_path / "m.keras",
            samples,
            representative_path=samples,
            verbose=False,
        )
    assert samples.read_bytes() == content


def test_export_keras_file_checks_its_inputs_first(tmp_path, target):
    small_model().save(tmp_path / "m.keras")
    text = tmp_path / "notes.npy"
    text.write_text("not an array")
    with pytest.raises(ValueError, match=r"expected a \.npy file"):
        export_keras_file(
            tmp_path / "m.keras",
            target,
            representative_path=text,
            verbose=False,
        )
    fake = tmp_path / "fake.keras"
    fake.write_text("not a model")
    with pytest.raises(ValueError, match=r"`model_path`, expected a model"):
        export_keras_file(fake, target, verbose=False)
    with pytest.raises(ValueError, match=r"no such file"):
        export_keras_file(tmp_path / "missing.keras", target, verbose=False)
    with pytest.raises(ValueError, match=r"Received: quantization='int4'"):
        export_keras_file(fake, target, quantization="int4", verbose=False)
    assert target.read_bytes() == PREVIOUS
    assert sorted(os.listdir(tmp_path)) == [
        "fake.keras",
        "m.keras",
        "m.tflite",
        "notes.npy",
    ]


# ---------------------------------------------------------- inspection


def test_truncated_or_foreign_files_are_not_valid_tflite(tmp_path):
    path = tmp_path / "m.tflite"
    export_tflite(small_model(), path, verbose=False)
    data = path.read_bytes()
    for size in (0, 7, 8, 64, len(data) // 2, len(data) - 16):
        with pytest.raises(ValueError, match=r"not a valid \.tflite file"):
            inspect_tflite(data[:size])
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(data[:100])
    with pytest.raises(ValueError, match=r"not a valid \.tflite file"):
        inspect_tflite(broken)
    assert inspect_tflite(data).file_size == len(data)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"latency_runs": -1}, "latency_runs"),
        ({"latency_batch_size": 1.5}, "latency_batch_size"),
        ({"num_threads": 0}, "num_threads"),
    ],
)
def test_evaluate_tflite_checks_its_arguments(kwargs, name, tmp_path):
    from keras_tt.export import evaluate_tflite

    path = tmp_path / "m.tflite"
    export_tflite(small_model(), path, verbose=False)
    with pytest.raises(
        ValueError,
        match=rf"`{name}`, expected a positive integer.*Received: {name}=",
    ):
        evaluate_tflite(path, calibration(4), **kwargs)
