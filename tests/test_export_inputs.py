"""Export of models with integer, dict and mixed-dtype inputs, every mode.

Each exported file is run through a fresh ``ai_edge_litert`` interpreter
(not keras_tt's runner), fed by input name, and its logits are compared
with the Keras model's.
"""

import os

import keras
import numpy as np
import pytest

import keras_tt
from keras_tt.export import TFLiteRunner
from keras_tt.export import export_tflite
from keras_tt.export import inspect_tflite

interpreter_lib = pytest.importorskip("ai_edge_litert.interpreter")

# (quantization, io_dtype) for every export mode.
MODES = [
    (None, "float32"),
    ("float16", "float32"),
    ("dynamic", "float32"),
    ("int8", "float32"),
    ("int8", "int8"),
]
# Relative error bounds on the logits, against the Keras model.
BOUNDS = {None: 1e-5, "float16": 5e-3, "dynamic": 5e-2, "int8": 0.1}


def run_litert_by_name(path, feed):
    """Outputs of the file for ``feed`` ({input name: array}), first output.

    Float arrays for int8 inputs are quantised here with the file's own
    scale and zero point; integer arrays are set as they are.
    """
    interp = interpreter_lib.Interpreter(model_path=str(path))
    details = {d["name"]: d for d in interp.get_input_details()}
    assert sorted(details) == sorted(feed)
    for name, array in feed.items():
        interp.resize_tensor_input(details[name]["index"], list(array.shape))
    interp.allocate_tensors()
    for name, array in feed.items():
        detail = details[name]
        if detail["dtype"] == np.int8 and array.dtype.kind == "f":
            scale, zero = detail["quantization"]
            array = np.clip(np.round(array / scale) + zero, -128, 127)
        interp.set_tensor(detail["index"], array.astype(detail["dtype"]))
    interp.invoke()
    out = interp.get_output_details()[0]
    y = interp.get_tensor(out["index"])
    if out["dtype"] == np.int8:
        scale, zero = out["quantization"]
        y = (y.astype(np.float32) - zero) * scale
    return y


def relative_error(got, expected):
    return float(np.linalg.norm(got - expected) / np.linalg.norm(expected))


def keras_logits(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


def token_model():
    """Token ids -> Embedding(40) -> TTDense -> logits."""
    keras.utils.set_random_seed(0)
    ids = keras.Input((6,), dtype="int32", name="ids")
    x = keras.layers.Embedding(40, 8, name="embed")(ids)
    x = keras.layers.Flatten()(x)
    x = keras_tt.TTDense(
        16, 2, in_modes=(6, 8), out_modes=(4, 4), activation="relu"
    )(x)
    return keras.Model(ids, keras.layers.Dense(5, name="logits")(x))


def dict_model():
    """A dict of a float input and an int32 id input."""
    keras.utils.set_random_seed(1)
    feat = keras.Input((12,), name="feat")
    ids = keras.Input((4,), dtype="int32", name="ids")
    e = keras.layers.Flatten()(keras.layers.Embedding(30, 4)(ids))
    h = keras.layers.Dense(16, activation="relu")(feat)
    x = keras.layers.Concatenate()([h, e])
    x = keras_tt.TTDense(8, 2, in_modes=(4, 8), out_modes=(2, 4))(x)
    return keras.Model({"ids": ids, "feat": feat}, keras.layers.Dense(3)(x))


def list_model():
    """Three inputs in a list: float32, int32 ids, int32 ids."""
    keras.utils.set_random_seed(2)
    feat = keras.Input((8,), name="feat")
    word = keras.Input((3,), dtype="int32", name="word")
    char = keras.Input((5,), dtype="int32", name="char")
    w = keras.layers.Flatten()(keras.layers.Embedding(50, 4)(word))
    c = keras.layers.Flatten()(keras.layers.Embedding(20, 2)(char))
    x = keras.layers.Concatenate()([feat, w, c])
    return keras.Model([feat, word, char], keras.layers.Dense(4)(x))


def token_data(n, seed):
    return np.random.default_rng(seed).integers(0, 40, (n, 6), "int32")


def dict_data(n, seed):
    rng = np.random.default_rng(seed)
    return {
        "feat": rng.normal(size=(n, 12)).astype("float32"),
        "ids": rng.integers(0, 30, (n, 4), "int32"),
    }


def list_data(n, seed):
    rng = np.random.default_rng(seed)
    return [
        rng.normal(size=(n, 8)).astype("float32"),
        rng.integers(0, 50, (n, 3), "int32"),
        rng.integers(0, 20, (n, 5), "int32"),
    ]


@pytest.mark.parametrize("quantization, io_dtype", MODES)
def test_token_id_model_matches_keras_in_every_mode(
    quantization, io_dtype, tmp_path
):
    model = token_model()
    path = tmp_path / "m.tflite"
    report = export_tflite(
        model,
        path,
        quantization=quantization,
        io_dtype=io_dtype,
        representative_data=(
            token_data(48, 1) if quantization == "int8" else None
        ),
        verbose=False,
    )
    info = inspect_tflite(path)
    assert [(t.name, t.dtype) for t in info.inputs] == [("ids", "int32")]
    assert info.builtin_only
    if quantization is None:
        # No data given: ids drawn below the Embedding's input_dim.
        assert report.sample_source == "random inputs"
    x = token_data(9, 7)
    expected = keras_logits(model, x)
    for batch in (1, 9):
        got = run_litert_by_name(path, {"ids": x[:batch]})
        assert got.shape == expected[:batch].shape
        assert relative_error(got, expected[:batch]) <= BOUNDS[quantization]
    assert report.relative_error <= BOUNDS[quantization]


@pytest.mark.parametrize("quantization, io_dtype", MODES)
def test_dict_inputs_of_mixed_dtypes_match_keras_in_every_mode(
    quantization, io_dtype, tmp_path
):
    model = dict_model()
    path = tmp_path / "m.tflite"
    report = export_tflite(
        model,
        path,
        quantization=quantization,
        io_dtype=io_dtype,
        representative_data=(
            dict_data(48, 1) if quantization == "int8" else None
        ),
        verbose=False,
    )
    dtypes = {t.name: t.dtype for t in inspect_tflite(path).inputs}
    assert dtypes["ids"] == "int32"
    assert dtypes["feat"] == ("int8" if io_dtype == "int8" else "float32")
    x = dict_data(7, 5)
    expected = keras_logits(model, x)
    assert (
        relative_error(run_litert_by_name(path, x), expected)
        <= (BOUNDS[quantization])
    )
    assert report.relative_error <= BOUNDS[quantization]


@pytest.mark.parametrize("quantization, io_dtype", MODES)
def test_list_of_three_inputs_matches_keras_in_every_mode(
    quantization, io_dtype, tmp_path
):
    model = list_model()
    path = tmp_path / "m.tflite"
    export_tflite(
        model,
        path,
        quantization=quantization,
        io_dtype=io_dtype,
        representative_data=(
            list_data(48, 1) if quantization == "int8" else None
        ),
        verbose=False,
    )
    x = list_data(6, 3)
    expected = keras_logits(model, x)
    got = run_litert_by_name(path, dict(zip(["feat", "word", "char"], x)))
    assert relative_error(got, expected) <= BOUNDS[quantization]


DATA_FORMS = {
    # One set of samples, each used as a batch of one.
    "dict": lambda d: d,
    "list": lambda d: [d["feat"], d["ids"]],  # in model.inputs order
    # Iterables of batches.
    "batches_of_dicts": lambda d: [d],
    "batches_of_lists": lambda d: (
        [d["feat"][i : i + 4], d["ids"][i : i + 4]] for i in range(0, 16, 4)
    ),
}


@pytest.mark.parametrize("form", sorted(DATA_FORMS))
def test_data_as_dict_list_or_batches(form, tmp_path):
    model = dict_model()
    assert [t.name for t in model.inputs] == ["feat", "ids"]
    data = dict_data(16, 4)
    as_given = DATA_FORMS[form]
    samples = form in ("dict", "list")
    report = export_tflite(
        model,
        tmp_path / "m.tflite",
        quantization="int8",
        representative_data=as_given(data),
        validation_data=as_given(data) if samples else None,
        verbose=False,
    )
    assert report.num_samples == 16
    assert report.sample_source == (
        "validation_data" if samples else "representative_data"
    )
    assert report.relative_error <= BOUNDS["int8"]


def test_validation_data_with_labels_for_a_token_model(tmp_path):
    model = token_model()
    x = token_data(20, 2)
    labels = np.argmax(keras_logits(model, x), -1)
    report = export_tflite(
        model,
        tmp_path / "m.tflite",
        validation_data=(x, labels),
        verbose=False,
    )
    assert report.keras_accuracy == 1.0
    assert report.tflite_accuracy == 1.0


def test_integer_input_without_a_lookup_table_needs_data(tmp_path):
    keras.utils.set_random_seed(0)
    counts = keras.Input((4,), dtype="int32", name="counts")
    x = keras.layers.Dense(3)(keras.ops.cast(counts, "float32"))
    model = keras.Model(counts, x)
    path = tmp_path / "m.tflite"
    with pytest.raises(
        ValueError,
        match=(
            r"`validation_data`.*integer input 'counts' \(shape \(None, 4\), "
            r"int32\), which feeds no lookup table.*Pass `validation_data` "
            r"or `representative_data`"
        ),
    ):
        export_tflite(model, path, verbose=False)
    assert os.listdir(tmp_path) == []

    x = np.arange(40, dtype="int32").reshape(10, 4)
    report = export_tflite(model, path, validation_data=x, verbose=False)
    expected = keras_logits(model, x)
    assert relative_error(
        run_litert_by_name(path, {"counts": x}), expected
    ) <= (1e-5)
    assert report.num_samples == 10


def test_ids_are_drawn_below_the_smallest_table(tmp_path):
    # Two tables read the same ids: ids of the larger one would index the
    # smaller one out of bounds.
    keras.utils.set_random_seed(0)
    ids = keras.Input((5,), dtype="int32", name="ids")
    big = keras.layers.Flatten()(keras.layers.Embedding(1000, 2)(ids))
    small = keras.layers.Flatten()(keras.layers.Embedding(3, 2)(ids))
    model = keras.Model(ids, keras.layers.Concatenate()([big, small]))
    report = export_tflite(model, tmp_path / "m.tflite", verbose=False)
    assert report.relative_error <= 1e-5


def test_runner_never_scales_integer_inputs(tmp_path):
    model = dict_model()
    path = tmp_path / "m.tflite"
    export_tflite(
        model,
        path,
        quantization="int8",
        io_dtype="int8",
        representative_data=dict_data(48, 1),
        verbose=False,
    )
    x = dict_data(5, 9)
    runner = TFLiteRunner(path)
    got = runner(x)  # a dict keyed by input name
    expected = keras_logits(model, x)
    assert relative_error(got, expected) <= BOUNDS["int8"]
    assert np.array_equal(got, run_litert_by_name(path, x))
    with pytest.raises(ValueError, match=r"Received keys: \['feat'\]"):
        runner({"feat": x["feat"]})


@pytest.mark.parametrize(
    "data, message",
    [
        (
            {"feat": np.zeros((4, 12), "float32")},
            r"`representative_data`.*no entry for input 'ids'",
        ),
        (
            {
                "feat": np.zeros((4, 12), "float32"),
                "ids": np.zeros((4, 4), "int32"),
                "extra": np.zeros((4, 1)),
            },
            r"`representative_data`.*unknown keys: \['extra'\]",
        ),
        (
            {
                "feat": np.zeros((4, 12), "float32"),
                "ids": np.full((4, 4), 0.5),
            },
            r"expected integers for the integer input 'ids'.*0\.5",
        ),
        (
            {
                "feat": np.zeros((4, 12), "float32"),
                "ids": np.zeros((3, 4), "int32"),
            },
            r"same number of samples.*4 for 'feat', 3 for 'ids'",
        ),
        (
            [np.zeros((4, 12), "float32")],
            r"expected 2 arrays \(one per model input \['feat', 'ids'\]",
        ),
    ],
    ids=["missing", "extra", "fractional_ids", "counts", "too_few"],
)
def test_bad_data_for_several_inputs_is_refused_before_conversion(
    data, message, tmp_path
):
    path = tmp_path / "m.tflite"
    path.write_bytes(b"previous file")
    with pytest.raises(ValueError, match=message):
        export_tflite(
            dict_model(),
            path,
            quantization="int8",
            representative_data=data,
            verbose=False,
        )
    assert path.read_bytes() == b"previous file"
    assert os.listdir(tmp_path) == ["m.tflite"]
