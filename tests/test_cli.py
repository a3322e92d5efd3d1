"""The keras-tt command line, run in-process."""

import keras
import numpy as np
import pytest

import keras_tt
from keras_tt.cli import main


@pytest.fixture
def dense_model_path(tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((64,))
    hidden = keras.layers.Dense(48, activation="relu", name="fc1")(inputs)
    outputs = keras.layers.Dense(10, name="fc2")(hidden)
    model = keras.Model(inputs, outputs)
    path = tmp_path / "dense.keras"
    model.save(path)
    return path


def test_tensorize_writes_a_model_matching_the_original_at_full_rank(
    dense_model_path, tmp_path, capsys, rng
):
    out = tmp_path / "tt.keras"
    status = main(
        [
            "tensorize",
            str(dense_model_path),
            str(out),
            "--tt-rank",
            "64",
            "--layers",
            "fc1,fc2",
            "--quiet",
        ]
    )
    assert status == 0
    printed = capsys.readouterr().out
    assert "fc1" in printed and "fc2" in printed and f"Wrote {out}" in printed
    original = keras.saving.load_model(dense_model_path)
    tt_model = keras.saving.load_model(out)
    assert [type(layer) for layer in tt_model.layers[1:]] == [
        keras_tt.TTDense
    ] * 2
    x = rng.standard_normal((5, 64)).astype("float32")
    np.testing.assert_allclose(
        tt_model.predict(x, verbose=0),
        original.predict(x, verbose=0),
        rtol=1e-4,
        atol=1e-4,
    )


def test_inspect_keras_model_lists_modes_ranks_and_compression(
    tmp_path, capsys
):
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras_tt.TTDense(
                64, tt_rank=2, in_modes=(8, 8), out_modes=(8, 8), name="tt_fc"
            ),
        ]
    )
    path = tmp_path / "m.keras"
    model.save(path)
    assert main(["inspect", str(path)]) == 0
    printed = capsys.readouterr().out
    assert "tt_fc" in printed
    assert "8*8 x 8*8" in printed and "1,2,1" in printed
    assert "4,096" in printed and "256" in printed and "16.0x" in printed


def test_export_then_inspect_tflite(tmp_path, capsys):
    pytest.importorskip("ai_edge_litert")
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras_tt.TTDense(32, tt_rank=3, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    model_path, tflite_path = tmp_path / "m.keras", tmp_path / "m.tflite"
    model.save(model_path)
    assert main(["export", str(model_path), str(tflite_path)]) == 0
    assert tflite_path.exists()
    capsys.readouterr()
    assert main(["inspect", str(tflite_path)]) == 0
    printed = capsys.readouterr().out
    assert "FULLY_CONNECTED" in printed
    assert "Builtin ops only: yes" in printed
    assert keras_tt.inspect_tflite(str(tflite_path)).builtin_only


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--tt-rank", "0"], "expected a positive integer, received '0'"),
        (["--layers", " , "], "expected comma-separated layer names"),
    ],
)
def test_bad_arguments_exit_with_usage_error(
    dense_model_path, tmp_path, capsys, argv, message
):
    out = tmp_path / "tt.keras"
    with pytest.raises(SystemExit) as exit_info:
        main(["tensorize", str(dense_model_path), str(out), *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_unknown_layer_name_fails_without_writing(
    dense_model_path, tmp_path, capsys
):
    out = tmp_path / "tt.keras"
    status = main(
        [
            "tensorize",
            str(dense_model_path),
            str(out),
            "--tt-rank",
            "4",
            "--layers",
            "fc9",
        ]
    )
    assert status == 2
    error = capsys.readouterr().err
    assert error.startswith("keras-tt tensorize: error:") and "fc9" in error
    assert not out.exists()


def test_output_must_not_overwrite_the_input(dense_model_path, capsys):
    before = dense_model_path.read_bytes()
    status = main(
        [
            "tensorize",
            str(dense_model_path),
            str(dense_model_path),
            "--tt-rank",
            "4",
        ]
    )
    assert status == 2
    assert "must differ from the input path" in capsys.readouterr().err
    assert dense_model_path.read_bytes() == before


def test_missing_input_file(tmp_path, capsys):
    status = main(["inspect", str(tmp_path / "nothing.keras")])
    assert status == 2
    assert "No model file at" in capsys.readouterr().err
