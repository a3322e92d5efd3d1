"""End-to-end checks of examples/mnist_study.py in its --quick mode.

These check the pipeline (files, table rows, plot, parameter counts), not the
accuracy figures, which one epoch on 1,000 images does not make meaningful.
"""

import csv
import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "mnist_study.py"
WIDTH = 1024


@pytest.fixture(scope="module")
def study():
    spec = importlib.util.spec_from_file_location("mnist_study", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


@pytest.fixture(scope="module")
def quick_run(study, mnist_dir, tmp_path_factory):
    """Run the CLI once with --quick; return the output folder and stdout."""
    out = tmp_path_factory.mktemp("mnist_quick")
    assert (
        study.main(["--quick", "--data", str(mnist_dir), "--out", str(out)])
        == 0
    )
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


def test_quick_run_writes_every_output(quick_run):
    names = sorted(p.name for p in quick_run.iterdir())
    assert names == [
        "mnist_study_quick.csv",
        "mnist_study_quick.md",
        "mnist_study_quick.png",
        "mnist_study_quick_runs.csv",
    ]


def test_quick_table_has_rows_for_every_kind_and_shape(quick_run, study):
    rows = _read_csv(quick_run / "mnist_study_quick.csv")
    kinds = [row["kind"] for row in rows]
    assert kinds.count("dense") == 1
    assert kinds.count("lowrank") == len(study.QUICK_LOW_RANKS)
    tt_shapes = {row["shape"] for row in rows if row["kind"] == "tt"}
    assert tt_shapes == {"32x32", "4x8x8x4", "4x4x4x4x4", "2^10"}
    runs = _read_csv(quick_run / "mnist_study_quick_runs.csv")
    assert len(runs) == len(rows)
    for row in rows:
        assert 0.0 <= float(row["accuracy_mean"]) <= 100.0
        assert float(row["epoch_seconds"]) > 0.0
        assert row["seeds"] == "1" and row["epochs"] == "1"


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


def test_quick_plot_is_a_valid_png(quick_run):
    import matplotlib.image

    path = quick_run / "mnist_study_quick.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 500
    assert float(np.std(image)) > 0.01  # not a blank canvas


def test_effective_tt_ranks_are_clamped_at_the_ends_of_2_pow_10(study):
    assert study.effective_tt_ranks("2^10", 8) == (
        1,
        4,
        8,
        8,
        8,
        8,
        8,
        8,
        8,
        4,
        1,
    )
    assert study.effective_tt_ranks("32x32", 8) == (1, 8, 1)


def test_low_rank_layer_has_glorot_variance_and_rank(study):
    import keras

    keras.utils.set_random_seed(0)
    layer = study.LowRankDense(WIDTH, 4)
    layer.build((None, WIDTH))
    assert study.weight_matrix_params(layer) == 2 * WIDTH * 4
    w = layer.u.numpy() @ layer.v.numpy()
    assert np.linalg.matrix_rank(w) == 4
    assert np.var(w) == pytest.approx(2.0 / (2 * WIDTH), rel=0.15)


def test_invalid_arguments_echo_the_value(study, tmp_path):
    with pytest.raises(ValueError, match=r"Received: seeds=0"):
        study.run_study(out_dir=tmp_path, seeds=0)
    with pytest.raises(ValueError, match=r"Received: rank=0"):
        study.LowRankDense(8, 0)
    with pytest.raises(SystemExit):
        study.main(["--epochs", "zero"])
