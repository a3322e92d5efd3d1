"""The keras-tt command line, in-process and as a separate process."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import keras_tt
from keras_tt import cli
from keras_tt.cli import main
from keras_tt.tensorize import DEFAULT_MIN_PARAMS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
        (["--min-params", "-1"], "expected a non-negative integer"),
        (["--tt-rank", "2.5"], "expected a positive integer"),
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


# ----------------------------------------------- the command as a process


def _run_as_command(argv, env=None):
    """Start ``keras-tt ARGV`` as the console script does; report the outcome.

    The child imports ``keras_tt.cli`` with ``sys.argv[0] == "keras-tt"``
    (what the installed script does) and reports its exit status and which
    heavy modules were imported by then.
    """
    code = textwrap.dedent(
        f"""
        import json, sys
        sys.argv = ["keras-tt", *{list(argv)!r}]
        status = 0
        try:
            from keras_tt.cli import main
            status = main()
        except SystemExit as exit:
            status = exit.code
        loaded = sorted(
            name for name in ("tensorflow", "keras", "numpy")
            if name in sys.modules
        )
        print("RESULT=" + json.dumps({{"status": status, "loaded": loaded}}))
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )
    lines = [
        line
        for line in completed.stdout.splitlines()
        if line.startswith("RESULT=")
    ]
    assert lines, completed.stdout + completed.stderr
    result = json.loads(lines[-1][len("RESULT=") :])
    return result, completed.stdout, completed.stderr


@pytest.mark.parametrize(
    "argv, status, stream, expected",
    [
        (["--help"], 0, "out", "usage: keras-tt"),
        (["tensorize", "--help"], 0, "out", "usage: keras-tt tensorize"),
        (["export", "--help"], 0, "out", "--representative"),
        (["inspect", "--help"], 0, "out", "a .keras or .tflite file"),
        ([], 2, "err", "the following arguments are required"),
        (["compress"], 2, "err", "invalid choice: 'compress'"),
        (
            ["tensorize", "a.keras", "b.keras", "--tt-rank", "0"],
            2,
            "err",
            "expected a positive integer, received '0'",
        ),
        (
            ["inspect", "missing.keras"],
            2,
            "err",
            "No model file at 'missing.keras'",
        ),
    ],
)
def test_help_and_argument_errors_do_not_import_tensorflow(
    argv, status, stream, expected
):
    result, out, err = _run_as_command(argv)
    assert result["status"] == status
    assert expected in (out if stream == "out" else err)
    assert "tensorflow" not in result["loaded"]
    assert "keras" not in result["loaded"]
    if status == 2:
        assert "Traceback" not in err
        assert len(err.strip().splitlines()) == 1


def test_python_dash_m_keras_tt_runs_the_command():
    completed = subprocess.run(
        [sys.executable, "-m", "keras_tt", "inspect", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("usage: keras-tt inspect")


def test_a_normal_run_prints_no_tensorflow_start_up_lines(tmp_path):
    model = keras.Sequential(
        [keras.Input((16,)), keras_tt.TTDense(16, tt_rank=2, name="tt_fc")]
    )
    path = tmp_path / "m.keras"
    model.save(path)
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result, out, err = _run_as_command(["inspect", str(path)], env=env)
    assert result["status"] == 0, err
    assert "tensorflow" in result["loaded"]  # the command did load it
    assert "tt_fc" in out
    for marker in ("I0000", "oneDNN", "cuda", "absl::InitializeLog"):
        assert marker not in err, err


def test_a_log_level_chosen_by_the_user_is_kept(monkeypatch):
    monkeypatch.setattr(cli, "_we_set_log_level", False)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "1")
    assert cli._silence_tensorflow() is False
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "1"
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL")
    assert cli._silence_tensorflow() is True
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"


@pytest.mark.parametrize(
    "line, dropped",
    [
        (
            b"WARNING: All log messages before absl::InitializeLog() is "
            b"called are written to STDERR\n",
            True,
        ),
        (
            b"I0000 00:00:1795763586.569077    5323 port.cc:153] oneDNN "
            b"custom operations are on.\n",
            True,
        ),
        (
            b"I0000 00:00:1795763586.569390    5323 cudart_stub.cc:31] Could "
            b"not find cuda drivers on your machine, GPU will not be used.\n",
            True,
        ),
        (b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n", True),
        (b"fully_quantize: 0, inference_type: 6\n", True),
        (b"E0000 00:00:1795763586.5 5323 op.cc:1] a real error\n", False),
        (b"UserWarning: something the user should see\n", False),
        (b"Traceback (most recent call last):\n", False),
    ],
)
def test_only_start_up_notices_are_filtered(line, dropped):
    assert bool(cli._TF_NOISE.match(line)) is dropped


# ------------------------------------------------ files are checked first


@pytest.fixture
def text_file_named_keras(tmp_path):
    (tmp_path / "folder.keras").mkdir()
    path = tmp_path / "notes.keras"
    path.write_text("not a model\n")
    return path


@pytest.mark.parametrize(
    "make_argv, message",
    [
        (
            lambda d, t: ["inspect", str(t)],
            "is not a valid .keras file",
        ),
        (
            lambda d, t: ["export", str(t), str(d.parent / "o.tflite")],
            "is not a valid .keras file",
        ),
        (
            lambda d, t: ["inspect", str(d.parent / "m.h5")],
            "No model file at",
        ),
        (
            lambda d, t: ["inspect", str(d.parent / "folder.keras")],
            "found a directory",
        ),
        (
            lambda d, t: ["inspect", str(d.with_suffix(".txt"))],
            "Expected a model saved as .keras",
        ),
        (
            lambda d, t: ["inspect", str(t.with_suffix(".tflite"))],
            "No .tflite file at",
        ),
        (
            lambda d, t: [
                "tensorize",
                str(d),
                str(d.parent / "o.h5"),
                "--tt-rank",
                "2",
            ],
            "Expected an output path ending in .keras",
        ),
        (
            lambda d, t: [
                "tensorize",
                str(d),
                str(d.parent / "no" / "o.keras"),
                "--tt-rank",
                "2",
            ],
            "does not exist",
        ),
        (
            lambda d, t: ["tensorize", str(d), str(d.parent / "o.keras")],
            "--tt-rank, --rel-error or --target-ratio",
        ),
        (
            lambda d, t: [
                "export",
                str(d),
                str(d.parent / "o.tflite"),
                "--quantization",
                "int8",
            ],
            "--quantization int8 needs --representative",
        ),
        (
            lambda d, t: [
                "export",
                str(d),
                str(d.parent / "o.tflite"),
                "--representative",
                str(t),
            ],
            "--representative expects a .npy file",
        ),
        (
            lambda d, t: [
                "export",
                str(d),
                str(d.parent / "o.tflite"),
                "--representative",
                str(d.parent / "x.npy"),
            ],
            "No --representative file at",
        ),
    ],
)
def test_bad_files_give_one_line_and_status_2(
    dense_model_path, text_file_named_keras, capsys, make_argv, message
):
    argv = make_argv(dense_model_path, text_file_named_keras)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith(f"keras-tt {argv[0]}: error:")
    assert not (dense_model_path.parent / "o.tflite").exists()
    assert not (dense_model_path.parent / "o.keras").exists()


def test_a_text_file_named_tflite_is_not_a_tflite_file(tmp_path, capsys):
    path = tmp_path / "m.tflite"
    path.write_bytes(b"hello world, not a flatbuffer")
    assert main(["inspect", str(path)]) == 2
    assert "is not a valid .tflite file" in capsys.readouterr().err


# ------------------------------------------- no command overwrites an input


def _alias(kind, target, link):
    if kind == "symlink":
        os.symlink(target, link)
    elif kind == "hardlink":
        os.link(target, link)
    else:
        link = target.parent / ".." / target.parent.name / target.name
    return link


@pytest.mark.parametrize("kind", ["same", "symlink", "hardlink", "dotdot"])
@pytest.mark.parametrize("command", ["tensorize", "export"])
def test_no_command_writes_over_its_input(
    dense_model_path, tmp_path, capsys, kind, command
):
    before = dense_model_path.read_bytes()
    if kind == "same":
        output = dense_model_path
    else:
        output = _alias(kind, dense_model_path, tmp_path / "alias.keras")
    argv = [command, str(dense_model_path), str(output)]
    if command == "tensorize":
        argv += ["--tt-rank", "4"]
    assert main(argv) == 2
    assert "must differ from the input path" in capsys.readouterr().err
    assert dense_model_path.read_bytes() == before


def test_export_does_not_write_over_the_representative_file(
    dense_model_path, tmp_path, capsys
):
    samples = tmp_path / "x.npy"
    np.save(samples, np.zeros((4, 64), "float32"))
    before = samples.read_bytes()
    link = tmp_path / "x.tflite"
    os.symlink(samples, link)
    argv = ["export", str(dense_model_path), str(link)]
    assert main([*argv, "--representative", str(samples)]) == 2
    assert "must differ from the --representative path" in (
        capsys.readouterr().err
    )
    assert samples.read_bytes() == before


def test_min_params_defaults_to_the_library_constant(tmp_path, capsys):
    side = int(DEFAULT_MIN_PARAMS**0.5)
    assert side * side == DEFAULT_MIN_PARAMS
    model = keras.Sequential(
        [
            keras.Input((side,)),
            keras.layers.Dense(side, name="at_threshold"),
            keras.layers.Dense(side - 1, name="below_threshold"),
        ]
    )
    path, out = tmp_path / "m.keras", tmp_path / "tt.keras"
    model.save(path)
    argv = ["tensorize", str(path), str(out), "--tt-rank", "2", "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "at_threshold" in printed and "below_threshold" not in printed
    layers = keras.saving.load_model(out).layers
    assert [type(layer).__name__ for layer in layers] == ["TTDense", "Dense"]


def test_min_params_zero_replaces_every_dense_layer(
    dense_model_path, tmp_path, capsys
):
    out = tmp_path / "tt.keras"
    argv = ["tensorize", str(dense_model_path), str(out), "--tt-rank", "2"]
    assert main([*argv, "--min-params", "0", "--quiet"]) == 0
    layers = keras.saving.load_model(out).layers
    assert [type(layer).__name__ for layer in layers[1:]] == ["TTDense"] * 2


def test_modes_fast_gives_two_core_layers_matching_at_full_rank(
    dense_model_path, tmp_path, capsys, rng
):
    out = tmp_path / "tt.keras"
    argv = ["tensorize", str(dense_model_path), str(out), "--tt-rank", "64"]
    assert main([*argv, "--min-params", "0", "--modes", "fast", "--quiet"]) == 0
    tt_model = keras.saving.load_model(out)
    fc1 = tt_model.get_layer("fc1")
    assert (fc1.in_modes, fc1.out_modes) == keras_tt.fast_modes(64, 48)
    x = rng.standard_normal((5, 64)).astype("float32")
    original = keras.saving.load_model(dense_model_path)
    np.testing.assert_allclose(
        tt_model.predict(x, verbose=0),
        original.predict(x, verbose=0),
        rtol=1e-4,
        atol=1e-4,
    )
    with pytest.raises(SystemExit) as info:
        main([*argv, "--modes", "slow"])
    assert info.value.code == 2
    assert "--modes" in capsys.readouterr().err
