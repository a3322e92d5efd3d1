"""The runtimes the export checks, and what its report says was quantised.

The ``CompiledModel`` rows of the report are checked against a direct
call of ``ai_edge_litert.compiled_model`` written here; the per-tensor
quantisation against the tensor types a fresh ``Interpreter`` reads.
"""

import os

import keras
import numpy as np
import pytest

import keras_tt
from keras_tt.export import VerificationError
from keras_tt.export import _compiled_model
from keras_tt.export import export_tflite

interpreter_lib = pytest.importorskip("ai_edge_litert.interpreter")
compiled_lib = pytest.importorskip("ai_edge_litert.compiled_model")


def tt_model(big_dense=False):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((784 if big_dense else 64,), name="x")
    x = inputs
    if big_dense:
        x = keras.layers.Dense(64, activation="relu", name="big")(x)
    x = keras_tt.TTDense(
        32,
        4,
        in_modes=(8, 8),
        out_modes=(4, 8),
        activation="relu",
        bias_initializer="random_normal",
        name="tt",
    )(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="head")(x))


def samples(model, n, seed=0):
    width = model.inputs[0].shape[1]
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, width)).astype("float32")


def compiled_model_batch_one(path, x):
    """The file's output for one sample, through CompiledModel directly."""
    model = compiled_lib.CompiledModel.from_file(str(path))
    inputs = model.create_input_buffers(0)
    outputs = model.create_output_buffers(0)
    inputs[0].write(x)
    model.run_by_index(0, inputs, outputs)
    return outputs[0].read(10, np.float32).reshape(1, 10)


def relative_error(got, expected):
    return float(np.linalg.norm(got - expected) / np.linalg.norm(expected))


# ------------------------------------------------------ CompiledModel


@pytest.mark.parametrize("batch_size", [None, 3])
def test_report_has_compiled_model_rows_that_match_keras(batch_size, tmp_path):
    model = tt_model()
    path = tmp_path / "m.tflite"
    x = samples(model, 5)
    report = export_tflite(
        model, path, batch_size=batch_size, validation_data=x, verbose=False
    )
    rows = [c for c in report.comparisons if c.runtime == "compiled_model"]
    expected_sizes = [1, 5] if batch_size is None else [3]
    assert [c.batch_size for c in rows] == expected_sizes
    assert all(c.relative_error <= 1e-5 for c in rows)
    assert "compiled_model" in report.summary()
    if batch_size is None:
        keras_out = keras.ops.convert_to_numpy(model(x[:1]))
        direct = compiled_model_batch_one(path, x[:1])
        assert relative_error(direct, keras_out) == pytest.approx(
            rows[0].relative_error, abs=1e-7
        )


def test_compiled_model_runs_int8_files_with_integer_io(tmp_path):
    model = tt_model()
    report = export_tflite(
        model,
        tmp_path / "m.tflite",
        quantization="int8",
        io_dtype="int8",
        representative_data=samples(model, 48, seed=1),
        verbose=False,
    )
    rows = {
        c.batch_size: c.relative_error
        for c in report.comparisons
        if c.runtime == "compiled_model"
    }
    interpreter_rows = {
        c.batch_size: c.relative_error
        for c in report.comparisons
        if c.runtime == "reference"
    }
    assert sorted(rows) == [1, 16]
    for size, error in rows.items():
        assert error <= 0.1
        # Same integer kernels: the same error as the reference kernels.
        assert error == pytest.approx(interpreter_rows[size], rel=0.05)


def test_compiled_model_mismatch_fails_the_float32_export(
    tmp_path, monkeypatch
):
    real_call = _compiled_model.CompiledModelRunner.__call__

    def off_by_one_percent(self, feed, shapes):
        return [1.01 * y for y in real_call(self, feed, shapes)]

    monkeypatch.setattr(
        _compiled_model.CompiledModelRunner, "__call__", off_by_one_percent
    )
    with pytest.raises(
        VerificationError,
        match=r"relative error 0\.01 > 1e-05 \(runtime=compiled_model",
    ):
        export_tflite(tt_model(), tmp_path / "m.tflite", verbose=False)
    assert os.listdir(tmp_path) == []


def test_compiled_model_failure_is_a_verification_error(tmp_path, monkeypatch):
    def refuse(self, module, feed, shapes):
        raise RuntimeError("CompiledModel error: code=3")

    monkeypatch.setattr(_compiled_model.CompiledModelRunner, "_run", refuse)
    with pytest.raises(VerificationError, match=r"CompiledModel API .*code=3"):
        export_tflite(tt_model(), tmp_path / "m.tflite", verbose=False)
    assert os.listdir(tmp_path) == []


# -------------------------------------------- what was quantised, per tensor


def constant_tensor_types(path):
    """{name: dtype} of the weight tensors, from a fresh Interpreter."""
    interp = interpreter_lib.Interpreter(model_path=str(path))
    interp.allocate_tensors()
    types = {}
    for t in interp.get_tensor_details():
        try:
            value = interp.get_tensor(t["index"])
        except ValueError:
            continue
        if t["dtype"] in (np.int8, np.float32, np.float16) and value.size:
            quantised = bool(len(t["quantization_parameters"]["scales"]))
            is_float = t["dtype"] != np.int8
            if quantised or is_float:
                types[t["name"]] = np.dtype(t["dtype"]).name
    return types


def test_dynamic_export_of_small_cores_reports_nothing_quantised(tmp_path):
    model = tt_model()  # cores of 128 and 256 elements, head of 320
    path = tmp_path / "dynamic.tflite"
    with pytest.warns(UserWarning, match=r"'dynamic' export quantised nothing"):
        report = export_tflite(
            model, path, quantization="dynamic", verbose=False
        )
    assert report.quantized_tensors == ()
    assert len(report.float_tensors) >= 3
    types = constant_tensor_types(path)
    assert "int8" not in {types[name] for name in report.float_tensors}
    assert "fewer than 1,024 elements" in report.summary()
    assert "Weights: 0 of" in report.summary()
    float32 = export_tflite(model, tmp_path / "f.tflite", verbose=False)
    assert report.file_size == pytest.approx(float32.file_size, rel=0.05)


def test_dynamic_export_lists_the_tensors_it_quantised(tmp_path, recwarn):
    model = tt_model(big_dense=True)  # a 784 x 64 Dense kernel
    path = tmp_path / "dynamic.tflite"
    report = export_tflite(model, path, quantization="dynamic", verbose=False)
    assert not [w for w in recwarn if "quantised nothing" in str(w.message)]
    assert report.warnings == ()
    types = constant_tensor_types(path)
    int8_names = {name for name, dtype in types.items() if dtype == "int8"}
    assert set(report.quantized_tensors) == int8_names
    assert len(int8_names) >= 1
    assert all("big" in name for name in int8_names)
    assert {types[name] for name in report.float_tensors} == {"float32"}
    assert f"Weights: {len(int8_names)} of" in report.summary()


def test_int8_export_reports_every_weight_quantised(tmp_path):
    model = tt_model()
    report = export_tflite(
        model,
        tmp_path / "m.tflite",
        quantization="int8",
        representative_data=samples(model, 32),
        verbose=False,
    )
    assert report.float_tensors == ()
    assert len(report.quantized_tensors) >= 3
