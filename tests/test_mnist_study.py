"""The study's low-rank baseline layer, and the study run as a script.

The layer is imported from keras_tt; the example runs in a separate process
in its --quick mode. The quick run checks the pipeline (files, table rows,
plot, parameter counts), not the accuracy figures, which one epoch on 1,000
images does not make meaningful.
"""

import csv
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_tt.layers import LowRankDense

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "examples", "mnist_study.py")
WIDTH = 1024


# ------------------------------------------------------------ LowRankDense


@pytest.mark.multibackend
def test_low_rank_dense_computes_x_u_v_plus_bias(rng):
    layer = LowRankDense(6, rank=2, activation="relu")
    x = rng.standard_normal((3, 4, 5)).astype("float32")
    layer.build(x.shape)
    u = rng.standard_normal((5, 2)).astype("float32")
    v = rng.standard_normal((2, 6)).astype("float32")
    b = rng.standard_normal(6).astype("float32")
    layer.set_weights([u, v, b])
    expected = np.maximum(np.einsum("abi,ir,rj->abj", x, u, v) + b, 0.0)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(x)), expected, rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(layer.full_kernel(), u @ v, rtol=1e-6)
    assert layer.compute_output_shape((None, 4, 5)) == (None, 4, 6)


@pytest.mark.multibackend
def test_low_rank_dense_has_glorot_variance_and_rank():
    keras.utils.set_random_seed(0)
    layer = LowRankDense(WIDTH, 4)
    layer.build((None, WIDTH))
    assert layer.num_factor_params == 2 * WIDTH * 4
    w = layer.full_kernel()
    assert np.linalg.matrix_rank(w) == 4
    assert np.var(w) == pytest.approx(2.0 / (2 * WIDTH), rel=0.15)


@pytest.mark.multibackend
def test_low_rank_dense_saves_and_reloads(tmp_path, rng):
    model = keras.Sequential(
        [
            keras.Input((8,)),
            LowRankDense(5, 3, activation="tanh", use_bias=False, name="lr"),
        ]
    )
    x = rng.standard_normal((4, 8)).astype("float32")
    path = tmp_path / "m.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    layer = reloaded.get_layer("lr")
    assert type(layer) is LowRankDense
    assert (layer.units, layer.rank, layer.use_bias) == (5, 3, False)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(reloaded(x)),
        keras.ops.convert_to_numpy(model(x)),
        rtol=1e-6,
    )
    config = model.get_layer("lr").get_config()
    assert LowRankDense.from_config(config).get_config() == config


@pytest.mark.multibackend
def test_low_rank_dense_trains():
    keras.utils.set_random_seed(1)
    x = np.random.default_rng(1).standard_normal((64, 8)).astype("float32")
    y = x @ np.ones((8, 1), "float32")
    model = keras.Sequential([keras.Input((8,)), LowRankDense(1, 1)])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    first = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=30, batch_size=16, verbose=0)
    assert model.evaluate(x, y, verbose=0) < 0.1 * first


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"units": 0, "rank": 2}, ValueError, "Received: units=0"),
        ({"units": 4, "rank": 0}, ValueError, "Received: rank=0"),
        ({"units": 4, "rank": True}, ValueError, "Received: rank=True"),
        ({"units": 4.0, "rank": 2}, ValueError, "Received: units=4.0"),
        (
            {"units": 4, "rank": 2, "use_bias": "yes"},
            TypeError,
            "Received: use_bias='yes'",
        ),
    ],
)
def test_low_rank_dense_invalid_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        LowRankDense(**kwargs)


def test_low_rank_dense_rejects_a_wrong_input_width():
    layer = LowRankDense(4, 2)
    layer(np.ones((1, 6), "float32"))
    with pytest.raises(ValueError, match="incompatible"):
        layer(np.ones((1, 7), "float32"))


# --------------------------------------------------- the study, --quick


@pytest.fixture(scope="module")
def quick_run(mnist_dir, tmp_path_factory):
    """Run the example once with --quick in its own process."""
    out = tmp_path_factory.mktemp("mnist_quick")
    completed = subprocess.run(
        [
            sys.executable,
            SCRIPT,
            "--quick",
            "--data",
            str(mnist_dir),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return out


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _modes(shape_name):
    """Modes of one side from a shape name: "4x8x8x4" or "2^10"."""
    if "^" in shape_name:
        base, power = shape_name.split("^")
        return [int(base)] * int(power)
    return [int(m) for m in shape_name.split("x")]


def _tt_ranks(modes, rank):
    """TT-ranks a square TT-matrix with these modes can use at ``rank``."""
    sizes = [m * m for m in modes]
    inner = [
        min(rank, math.prod(sizes[:k]), math.prod(sizes[k:]))
        for k in range(1, len(sizes))
    ]
    return [1, *inner, 1]


def _expected_params(row):
    kind, rank = row["kind"], row["rank"]
    if kind == "dense":
        return WIDTH * WIDTH
    if kind == "lowrank":
        return 2 * WIDTH * int(rank)
    modes = _modes(row["shape"])
    ranks = _tt_ranks(modes, int(rank))
    return sum(ranks[k] * m * m * ranks[k + 1] for k, m in enumerate(modes))


@pytest.mark.slow
def test_quick_run_writes_every_output(quick_run):
    names = sorted(p.name for p in quick_run.iterdir())
    assert names == [
        "mnist_study_quick.csv",
        "mnist_study_quick.md",
        "mnist_study_quick.png",
        "mnist_study_quick_runs.csv",
    ]


@pytest.mark.slow
def test_quick_table_has_rows_for_every_kind_and_shape(quick_run):
    rows = _read_csv(quick_run / "mnist_study_quick.csv")
    kinds = [row["kind"] for row in rows]
    assert kinds == ["dense"] + ["tt"] * 4 + ["lowrank"] * 2
    tt_shapes = {row["shape"] for row in rows if row["kind"] == "tt"}
    assert tt_shapes == {"32x32", "4x8x8x4", "4x4x4x4x4", "2^10"}
    runs = _read_csv(quick_run / "mnist_study_quick_runs.csv")
    assert len(runs) == len(rows)
    for row in rows:
        assert 0.0 <= float(row["accuracy_mean"]) <= 100.0
        assert float(row["epoch_seconds"]) > 0.0
        assert row["seeds"] == "1" and row["epochs"] == "1"


@pytest.mark.slow
def test_quick_parameter_counts_match_independent_formula(quick_run):
    rows = _read_csv(quick_run / "mnist_study_quick.csv")
    for row in rows:
        expected = _expected_params(row)
        assert int(row["layer_params"]) == expected, row["label"]
        assert float(row["compression"]) == pytest.approx(
            WIDTH * WIDTH / expected, rel=1e-4
        )
        if row["kind"] == "tt":
            ranks = _tt_ranks(_modes(row["shape"]), int(row["rank"]))
            assert row["ranks"] == "-".join(map(str, ranks))


@pytest.mark.slow
def test_quick_markdown_names_the_split(quick_run):
    text = (quick_run / "mnist_study_quick.md").read_text(encoding="utf-8")
    assert "MNIST 10k test set split 1,000/500" in text
    assert "not the 60k training set" in text
    assert "| hidden layer | shape (d) | rank | layer params |" in text
    table_rows = [
        line
        for line in text.splitlines()
        if line.startswith(("| Dense", "| TT", "| Low-rank"))
    ]
    assert len(table_rows) == len(
        _read_csv(quick_run / "mnist_study_quick.csv")
    )
    assert "98.4%" in text
    assert (
        "![held-out error against layer parameters](mnist_study_quick.png)"
        in text
    )


@pytest.mark.slow
def test_quick_plot_is_a_valid_png(quick_run):
    import matplotlib.image

    path = quick_run / "mnist_study_quick.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 500
    assert float(np.std(image)) > 0.01  # not a blank canvas


def test_study_without_data_dies_with_one_line(tmp_path):
    env = dict(os.environ, KERAS_TT_MNIST_DIR=str(tmp_path / "missing"))
    completed = subprocess.run(
        [sys.executable, SCRIPT, "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    lines = [
        line
        for line in completed.stderr.splitlines()
        if line.startswith("mnist_study.py:")
    ]
    assert len(lines) == 1 and "KERAS_TT_MNIST_DIR" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments_are_refused():
    completed = subprocess.run(
        [sys.executable, SCRIPT, "--epochs", "zero"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 2
    assert "expected positive integers" in completed.stderr
