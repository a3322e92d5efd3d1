"""Tests of keras_tt.export: builtin-only TFLite export, verification, reports.

Every check against an exported file loads it independently with
``ai_edge_litert.interpreter.Interpreter`` and compares with the Keras
model's own outputs.
"""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_tt
from keras_tt.datasets import load_mnist
from keras_tt.export import UnsupportedOpError
from keras_tt.export import VerificationError
from keras_tt.export import evaluate_tflite
from keras_tt.export import export_keras_file
from keras_tt.export import export_tflite
from keras_tt.export import inspect_tflite

interpreter_lib = pytest.importorskip("ai_edge_litert.interpreter")

# ----------------------------------------------------------------- helpers


def run_litert(path, x, delegate=True):
    """Outputs of the .tflite file for ``x``, through a fresh interpreter."""
    kwargs = {"model_path": str(path)}
    if not delegate:
        kwargs["experimental_op_resolver_type"] = (
            interpreter_lib.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        )
    interp = interpreter_lib.Interpreter(**kwargs)
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    if tuple(inp["shape"]) != x.shape:
        interp.resize_tensor_input(inp["index"], list(x.shape))
    interp.allocate_tensors()
    if inp["dtype"] == np.int8:
        scale, zero = inp["quantization"]
        x = np.clip(np.round(x / scale) + zero, -128, 127).astype(np.int8)
    interp.set_tensor(inp["index"], x.astype(inp["dtype"]))
    interp.invoke()
    y = interp.get_tensor(out["index"])
    if out["dtype"] == np.int8:
        scale, zero = out["quantization"]
        y = (y.astype(np.float32) - zero) * scale
    return y


def relative_error(got, expected):
    return float(np.linalg.norm(got - expected) / np.linalg.norm(expected))


def keras_outputs(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


def tt_model(
    input_shape,
    units,
    tt_rank,
    in_modes,
    out_modes,
    head=None,
    activation="relu",
    use_bias=True,
    seed=0,
):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(input_shape)
    x = keras_tt.TTDense(
        units,
        tt_rank,
        in_modes=in_modes,
        out_modes=out_modes,
        activation=activation,
        use_bias=use_bias,
        bias_initializer="random_normal",
        name="tt",
    )(inputs)
    if head:
        x = keras.layers.Dense(head, name="head")(x)
    return keras.Model(inputs, x)


# Models with TT layers of 2 to 6 cores, mixed with ordinary layers.
MODELS = {
    "d2_relu_bias": lambda: tt_model((64,), 32, 4, (8, 8), (4, 8)),
    "d3_no_bias_head": lambda: tt_model(
        (120,), 48, 3, (4, 5, 6), (4, 4, 3), head=10, use_bias=False
    ),
    "d4_tanh_3d_input": lambda: tt_model(
        (5, 256), 81, 2, (4, 4, 4, 4), (3, 3, 3, 3), activation="tanh"
    ),
    "d5_padded_width": lambda: tt_model((1021,), 100, 3, None, None, head=7),
    "d6_mixed": lambda: _mixed_d6(),
}


def _mixed_d6():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((8, 8))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(64, activation="relu")(x)
    x = keras_tt.TTDense(
        64,
        [2, 3, 4, 3, 2],
        in_modes=(2,) * 6,
        out_modes=(2,) * 6,
        activation="sigmoid",
        bias_initializer="random_normal",
    )(x)
    x = keras.layers.LayerNormalization()(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def sample_inputs(model, n, seed=0):
    shape = tuple(model.inputs[0].shape[1:])
    return (
        np.random.default_rng(seed).normal(size=(n,) + shape).astype("float32")
    )


# ------------------------------------------------------- float32, d = 2..6


@pytest.mark.parametrize("name", sorted(MODELS))
def test_float32_export_is_builtin_only_and_matches_keras(name, tmp_path):
    model = MODELS[name]()
    tt_layers = [l for l in model.layers if isinstance(l, keras_tt.TTDense)]
    assert 2 <= len(tt_layers[0].cores) <= 6
    path = tmp_path / "m.tflite"
    report = export_tflite(model, path, verbose=False)

    info = inspect_tflite(path)
    assert info.builtin_only
    # The TT layer lowers to FULLY_CONNECTED (plus RESHAPE and TRANSPOSE
    # when its cores are contracted one by one), or to BATCH_MATMUL when
    # the LiteRT plan rebuilds its kernel in the file.
    assert {"FULLY_CONNECTED", "BATCH_MATMUL"} & set(info.op_versions)
    assert not any(op.startswith("Flex") for op in info.op_versions)
    assert info.inputs[0].shape[0] == -1
    assert report.file_size == os.path.getsize(path)
    assert report.min_runtime_version is not None

    x = sample_inputs(model, 9, seed=3)
    expected = keras_outputs(model, x)
    for batch in (1, 9):
        for delegate in (True, False):
            got = run_litert(path, x[:batch], delegate=delegate)
            assert got.shape == expected[:batch].shape
            assert relative_error(got, expected[:batch]) <= 1e-5


def test_every_tt_dimension_stays_within_xnnpack_and_transpose_limits(tmp_path):
    model = MODELS["d6_mixed"]()
    export_tflite(model, tmp_path / "m.tflite", verbose=False)
    interp = interpreter_lib.Interpreter(
        model_path=str(tmp_path / "m.tflite"),
        experimental_op_resolver_type=(
            interpreter_lib.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        ),
    )
    interp.allocate_tensors()
    ranks = [len(t["shape_signature"]) for t in interp.get_tensor_details()]
    assert max(ranks) <= 4


# ---------------------------------------------------------- every mode


def _calibration(model, n=64):
    return sample_inputs(model, n, seed=7)


# Relative error bounds for the quantised modes, against the float model.
QUANTISED_BOUNDS = {"float16": 5e-3, "dynamic": 5e-2, "int8": 0.1}


@pytest.mark.parametrize("quantization", ["float16", "dynamic", "int8"])
@pytest.mark.parametrize(
    "name", ["d3_no_bias_head", "d4_tanh_3d_input", "d6_mixed"]
)
def test_quantised_exports_are_builtin_only_and_close_to_keras(
    quantization, name, tmp_path
):
    model = MODELS[name]()
    calibration = _calibration(model)
    path = tmp_path / f"m_{quantization}.tflite"
    report = export_tflite(
        model,
        path,
        quantization=quantization,
        representative_data=calibration if quantization == "int8" else None,
        verbose=False,
    )
    assert report.quantization == quantization
    assert report.tolerance is None
    info = inspect_tflite(path)
    assert info.builtin_only

    x = calibration[:11]
    expected = keras_outputs(model, x)
    for batch in (1, 11):
        got = run_litert(path, x[:batch])
        assert got.shape == expected[:batch].shape
        assert (
            relative_error(got, expected[:batch])
            <= QUANTISED_BOUNDS[quantization]
        )


def test_int8_export_quantises_every_fully_connected_weight(tmp_path):
    model = MODELS["d3_no_bias_head"]()
    path = tmp_path / "m.tflite"
    export_tflite(
        model,
        path,
        quantization="int8",
        representative_data=_calibration(model),
        verbose=False,
    )
    interp = interpreter_lib.Interpreter(
        model_path=str(path),
        experimental_op_resolver_type=(
            interpreter_lib.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        ),
    )
    interp.allocate_tensors()
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    fully_connected = [
        op
        for op in interp._get_ops_details()
        if op["op_name"] == "FULLY_CONNECTED"
    ]
    # At least one for the TT layer and one for the Dense head.
    assert len(fully_connected) >= 2
    for op in fully_connected:
        assert tensors[op["inputs"][0]]["dtype"] == np.int8
        assert tensors[op["inputs"][1]]["dtype"] == np.int8


def test_dynamic_export_keeps_fully_connected_loadable_by_old_runtimes(
    tmp_path,
):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(256, activation="relu"),
            keras_tt.TTDense(256, 8, in_modes=(4,) * 4, out_modes=(4,) * 4),
        ]
    )
    report = export_tflite(
        model, tmp_path / "m.tflite", quantization="dynamic", verbose=False
    )
    assert report.op_versions["FULLY_CONNECTED"] < 12
    major, minor = map(int, report.min_runtime_version.split(".")[:2])
    assert (major, minor) < (2, 17)
    # The 784 x 256 kernel is stored as int8: the file is about a quarter.
    float_report = export_tflite(model, tmp_path / "f.tflite", verbose=False)
    assert report.file_size < 0.4 * float_report.file_size


def test_int8_with_integer_inputs_and_outputs(tmp_path):
    model = MODELS["d3_no_bias_head"]()
    calibration = _calibration(model)
    path = tmp_path / "m.tflite"
    export_tflite(
        model,
        path,
        quantization="int8",
        io_dtype="int8",
        representative_data=calibration,
        verbose=False,
    )
    info = inspect_tflite(path)
    assert info.inputs[0].dtype == "int8" and info.outputs[0].dtype == "int8"
    assert info.inputs[0].scale > 0
    x = calibration[:6]
    got = run_litert(path, x)
    assert relative_error(got, keras_outputs(model, x)) <= 0.1


def test_fixed_batch_size(tmp_path):
    model = MODELS["d2_relu_bias"]()
    path = tmp_path / "m.tflite"
    report = export_tflite(model, path, batch_size=3, verbose=False)
    assert report.info.inputs[0].shape == (3, 64)
    assert {c.batch_size for c in report.comparisons} == {3}
    x = sample_inputs(model, 3)
    assert relative_error(run_litert(path, x), keras_outputs(model, x)) <= 1e-5


def test_fixed_batch_int8_regroups_calibration_samples(tmp_path):
    model = MODELS["d2_relu_bias"]()
    report = export_tflite(
        model,
        tmp_path / "m.tflite",
        quantization="int8",
        batch_size=4,
        representative_data=_calibration(model, 10),
        verbose=False,
    )
    assert report.info.inputs[0].shape == (4, 64)


def test_representative_data_as_iterable_of_batches(tmp_path):
    model = MODELS["d2_relu_bias"]()
    data = _calibration(model, 40)
    batches = (data[i : i + 8] for i in range(0, 40, 8))
    report = export_tflite(
        model,
        tmp_path / "m.tflite",
        quantization="int8",
        representative_data=batches,
        verbose=False,
    )
    assert report.info.builtin_only
    assert report.relative_error <= 0.1


# -------------------------------------------------- the paper's fc6 layer


def test_paper_layer_25088_to_4096_rank_4(tmp_path):
    model = tt_model(
        (25088,), 4096, 4, (2, 7, 8, 8, 7, 4), (4,) * 6, activation=None
    )
    assert model.layers[1].num_core_params == 2016
    x = sample_inputs(model, 4, seed=5)
    expected = keras_outputs(model, x)

    path = tmp_path / "fc6.tflite"
    report = export_tflite(model, path, validation_data=x, verbose=False)
    assert report.info.builtin_only
    # 2,016 core parameters and 4,096 biases: a file of a few tens of KiB,
    # against 411 MB for the dense kernel.
    assert report.file_size < 100_000
    for batch in (1, 4):
        assert (
            relative_error(run_litert(path, x[:batch]), expected[:batch])
            <= 1e-5
        )

    path8 = tmp_path / "fc6_int8.tflite"
    calibration = sample_inputs(model, 16, seed=6)
    report8 = export_tflite(
        model,
        path8,
        quantization="int8",
        representative_data=calibration,
        verbose=False,
    )
    assert report8.info.builtin_only
    for batch in (1, 4):
        assert (
            relative_error(run_litert(path8, x[:batch]), expected[:batch])
            <= 0.1
        )


# ------------------------------------------------------------- MNIST int8


def test_int8_mnist_tt_model_loses_at_most_one_point(mnist_dir, tmp_path):
    data = load_mnist(mnist_dir)
    x_train = data.x_train.reshape(-1, 784).astype("float32") / 255.0
    x_test = data.x_test.reshape(-1, 784).astype("float32") / 255.0
    assert len(x_test) == 2000  # the held-out part of the 10k test set
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((784,)),
            keras_tt.TTDense(
                256,
                8,
                in_modes=(4, 7, 7, 4),
                out_modes=(4,) * 4,
                activation="relu",
            ),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x_train, data.y_train, epochs=3, batch_size=100, verbose=0)

    report = export_tflite(
        model,
        tmp_path / "mnist_int8.tflite",
        quantization="int8",
        representative_data=x_train[:300],
        validation_data=(x_test, data.y_test),
        verbose=False,
    )
    assert report.keras_accuracy > 0.9
    assert report.accuracy_change >= -0.01

    keras_acc = np.mean(
        np.argmax(keras_outputs(model, x_test), -1) == data.y_test
    )
    litert_acc = np.mean(
        np.argmax(run_litert(tmp_path / "mnist_int8.tflite", x_test), -1)
        == data.y_test
    )
    assert keras_acc - litert_acc <= 0.01
    assert report.tflite_accuracy == pytest.approx(litert_acc)

    result = evaluate_tflite(
        tmp_path / "mnist_int8.tflite", x_test, data.y_test, latency_runs=5
    )
    assert result["accuracy"] == pytest.approx(litert_acc)
    assert result["latency_ms"] > 0


# ------------------------------------------------------------ bad inputs


def _small_model():
    return MODELS["d2_relu_bias"]()


def test_invalid_quantization_is_rejected(tmp_path):
    with pytest.raises(
        ValueError,
        match=(
            r"Received an invalid value for `quantization`, expected one of "
            r"\(None, 'float32', 'float16', 'dynamic', 'int8'\)\. "
            r"Received: quantization='int4'"
        ),
    ):
        export_tflite(
            _small_model(), tmp_path / "m.tflite", quantization="int4"
        )
    assert os.listdir(tmp_path) == []


def test_int8_needs_representative_data(tmp_path):
    with pytest.raises(ValueError, match=r"Received: representative_data=None"):
        export_tflite(
            _small_model(), tmp_path / "m.tflite", quantization="int8"
        )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_size": 0}, r"Received: batch_size=0"),
        ({"io_dtype": "uint8"}, r"Received: io_dtype='uint8'"),
        ({"io_dtype": "int8"}, r"need quantization='int8'"),
    ],
)
def test_other_invalid_arguments(kwargs, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        export_tflite(_small_model(), tmp_path / "m.tflite", **kwargs)


def test_missing_folder_is_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"Received: path="):
        export_tflite(_small_model(), tmp_path / "no" / "m.tflite")


class OneSidedEinsum(keras.layers.Layer):
    """Sums an index present in one operand only: stays tf.Einsum (Flex)."""

    def call(self, x):
        return tf.einsum(
            "bij,jk->bk", tf.reshape(x, (-1, 4, 8)), tf.ones((8, 3))
        )


class Digamma(keras.layers.Layer):
    def call(self, x):
        return tf.math.digamma(x)


@pytest.mark.parametrize(
    "layer, op, kind",
    [
        (OneSidedEinsum(name="pooling_einsum"), "Einsum", "flex"),
        (Digamma(name="special_fn"), "Digamma", "custom"),
    ],
)
def test_non_builtin_op_is_named_with_its_layer_and_no_file_is_written(
    layer, op, kind, tmp_path
):
    inputs = keras.Input((64,))
    x = keras_tt.TTDense(32, 2, in_modes=(8, 8), out_modes=(4, 8))(inputs)
    model = keras.Model(inputs, layer(x))
    path = tmp_path / "m.tflite"
    path.write_bytes(b"previous file")
    with pytest.raises(
        UnsupportedOpError, match=rf"{op} .*from layer '{layer.name}'"
    ) as info:
        export_tflite(model, path, verbose=False)
    assert info.value.ops == [(op, layer.name, kind)]
    assert isinstance(info.value, ValueError)
    assert path.read_bytes() == b"previous file"
    assert os.listdir(tmp_path) == ["m.tflite"]


def test_non_builtin_op_inside_a_nested_model_names_the_inner_layer(tmp_path):
    block = keras.Sequential(
        [
            keras.Input((32,)),
            keras.layers.Dense(16),
            Digamma(name="inner_special"),
        ],
        name="block",
    )
    inputs = keras.Input((64,))
    x = keras_tt.TTDense(32, 2, in_modes=(8, 8), out_modes=(4, 8))(inputs)
    model = keras.Model(inputs, block(x))
    with pytest.raises(UnsupportedOpError, match=r"from layer 'inner_special'"):
        export_tflite(model, tmp_path / "m.tflite", verbose=False)
    assert os.listdir(tmp_path) == []


def test_mismatch_with_keras_fails_verification_and_writes_nothing(
    tmp_path, monkeypatch
):
    from keras_tt.export import _verification as verification_module

    true_outputs = verification_module.keras_outputs

    def off_by_one_percent(model, arrays):
        return [1.01 * y for y in true_outputs(model, arrays)]

    monkeypatch.setattr(
        verification_module, "keras_outputs", off_by_one_percent
    )
    with pytest.raises(
        VerificationError, match=r"relative error 0\.0099.* > 1e-05"
    ):
        export_tflite(_small_model(), tmp_path / "m.tflite", verbose=False)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("as_dict", [False, True])
def test_several_outputs_are_all_compared(as_dict, tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((64,))
    x = keras_tt.TTDense(32, 2, in_modes=(8, 8), out_modes=(4, 8))(inputs)
    heads = {
        "z_scores": keras.layers.Dense(3)(x),
        "a_logits": keras.layers.Dense(5)(x),
    }
    model = keras.Model(inputs, heads if as_dict else list(heads.values()))
    report = export_tflite(model, tmp_path / "m.tflite", verbose=False)
    assert len(report.info.outputs) == 2
    assert report.relative_error <= 1e-5


def test_inspect_rejects_other_files(tmp_path):
    path = tmp_path / "x.tflite"
    path.write_bytes(b"not a flatbuffer at all")
    with pytest.raises(ValueError, match=r"expected a TFLite flatbuffer"):
        inspect_tflite(path)
    with pytest.raises(FileNotFoundError):
        inspect_tflite(tmp_path / "missing.tflite")


# --------------------------------------------------------- reports, CLI


def test_report_text_lists_size_ops_versions_and_runtime(tmp_path):
    report = export_tflite(_small_model(), tmp_path / "m.tflite", verbose=False)
    text = str(report)
    assert f"{report.file_size:,} bytes" in text
    assert f"FULLY_CONNECTED v{report.op_versions['FULLY_CONNECTED']}" in text
    assert f"Minimum runtime version: {report.min_runtime_version}" in text
    assert "xnnpack" in text and "reference" in text
    assert str(inspect_tflite(tmp_path / "m.tflite")).startswith("File: ")
    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"")
    assert os.stat(tmp_path / "m.tflite").st_mode == os.stat(plain).st_mode


def test_export_keras_file(tmp_path):
    model = MODELS["d3_no_bias_head"]()
    model.save(tmp_path / "m.keras")
    np.save(tmp_path / "calib.npy", _calibration(model, 32))
    report = export_keras_file(
        tmp_path / "m.keras",
        tmp_path / "m.tflite",
        quantization="int8",
        representative_path=tmp_path / "calib.npy",
        verbose=False,
    )
    assert report.info.builtin_only
    x = _calibration(model, 5)
    assert (
        relative_error(
            run_litert(tmp_path / "m.tflite", x), keras_outputs(model, x)
        )
        <= 0.1
    )


# ------------------------------------------------------- other backends

_OTHER_BACKEND_SCRIPT = r"""
import os, sys, traceback
importers = []

class Spy:
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" and not importers:
            importers.append(
                [f.filename for f in traceback.extract_stack()[:-1]]
            )
        return None

sys.meta_path.insert(0, Spy())
import keras
import keras_tt
from keras_tt import export as export_package
stack = importers[0] if importers else []
assert not any(os.sep + "export" + os.sep in f for f in stack), stack
inputs = keras.Input((8,))
model = keras.Model(inputs, keras.layers.Dense(4)(inputs))
path = sys.argv[1]
try:
    keras_tt.export_tflite(model, path, verbose=False)
except RuntimeError as error:
    print("ERROR:", error)
"""


def test_export_on_another_backend_says_it_needs_tensorflow(tmp_path):
    import importlib.util
    import subprocess
    import sys

    backend = next(
        (b for b in ("jax", "torch") if importlib.util.find_spec(b)), None
    )
    if backend is None:
        pytest.skip("needs JAX or PyTorch: pip install -e '.[backends]'")
    path = tmp_path / "m.tflite"
    path.write_bytes(b"previous file")
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-c", _OTHER_BACKEND_SCRIPT, str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ERROR: TFLite/LiteRT export needs the TensorFlow backend" in (
        result.stdout
    )
    assert "KERAS_BACKEND=tensorflow" in result.stdout
    assert "Current backend: 'jax'" in result.stdout
    assert path.read_bytes() == b"previous file"
    assert os.listdir(tmp_path) == ["m.tflite"]


def test_export_stores_the_tt_cores_not_a_merged_kernel(tmp_path):
    # A layer whose dense kernel (1024 x 1024) Keras may rebuild when that
    # is faster; the file must hold the cores.
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((1024,)),
            keras_tt.TTDense(
                1024, 8, in_modes=(4, 8, 8, 4), out_modes=(4, 8, 8, 4)
            ),
        ]
    )
    layer = model.layers[0]
    largest_core = max(int(np.prod(c.shape)) for c in layer.cores)
    report = export_tflite(model, tmp_path / "m.tflite", verbose=False)
    assert max(w.size for w in report.info.weights) <= largest_core
    assert report.file_size < 100_000  # the dense kernel alone is 4 MiB
