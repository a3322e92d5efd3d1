"""`keras-tt tensorize --model-ratio` with calibration data."""

import keras
import numpy as np
import pytest

import keras_tt  # noqa: F401 - registers the TT layers for loading
from keras_tt.cli import main


def test_model_ratio_with_calibration_and_data_aware_init(tmp_path, capsys):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((256,)),
            keras.layers.Dense(256, activation="relu", name="fc1"),
            keras.layers.Dense(10, name="head"),
        ]
    )
    source, target = tmp_path / "in.keras", tmp_path / "out.keras"
    model.save(source)
    x = np.random.default_rng(0).normal(size=(64, 256)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    code = main(
        [
            "tensorize",
            str(source),
            str(target),
            "--model-ratio",
            "8",
            "--calibration",
            str(tmp_path / "x.npy"),
            "--data-aware",
            "--quiet",
        ]
    )
    assert code in (0, None)
    out = capsys.readouterr().out
    assert "allocation=auto" in out and "data-aware fc1" in out
    assert "kept (whole-model output change: greedy" in out
    loaded = keras.saving.load_model(target)
    assert model.count_params() / loaded.count_params() >= 8


def test_data_aware_without_calibration_is_refused(tmp_path, capsys):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.save(tmp_path / "in.keras")
    code = main(
        [
            "tensorize",
            str(tmp_path / "in.keras"),
            str(tmp_path / "out.keras"),
            "--model-ratio",
            "2",
            "--data-aware",
        ]
    )
    assert code == 2
    assert "--data-aware needs --calibration" in capsys.readouterr().err
    assert not (tmp_path / "out.keras").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--tt-rank", "2", "--calibration", "CAL"], "--calibration is read"),
        (["--tt-rank", "2", "--allocation", "greedy"], "--allocation needs"),
    ],
)
def test_budget_flags_without_model_ratio_are_refused(
    tmp_path, capsys, extra, message
):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.save(tmp_path / "in.keras")
    np.save(tmp_path / "cal.npy", np.zeros((3, 4), "float32"))
    extra = [str(tmp_path / "cal.npy") if a == "CAL" else a for a in extra]
    code = main(
        ["tensorize", str(tmp_path / "in.keras"), str(tmp_path / "out.keras")]
        + extra
    )
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out.keras").exists()
