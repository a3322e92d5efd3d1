"""examples/budget_cnn.py end to end on a tiny subset of Fashion-MNIST.

Marked `slow`: it trains the ResNet for one epoch on 128 images, then three
compressed copies at 50x; the budget's rank sweep on the calibration
sample takes most of the time. Skipped without the data. The accuracies
of so short a run mean nothing; the checks are on the pipeline: the rows,
the whole-model sizes against the parameter count of a built network, the
uniform rank against the ratio, the two recoveries from one starting
point, and the files written.
"""

import csv
import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "budget_cnn.py"


@pytest.fixture(scope="module")
def fashion_mnist_dir():
    from keras_tt.datasets import find_fashion_mnist_dir

    folder = find_fashion_mnist_dir()
    if folder is None:
        pytest.skip(
            "Fashion-MNIST IDX files not found: place them in "
            "../shared/data/fashion-mnist beside the checkout."
        )
    return folder


@pytest.fixture(scope="module")
def example():
    sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("budget_cnn_example", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)
    sys.path.remove(str(SCRIPT.parent))


@pytest.mark.slow
def test_quick_run_compares_uniform_rank_and_budget(
    example, fashion_mnist_dir, tmp_path
):
    results = example.run(
        fashion_mnist_dir,
        num_train=128,
        epochs=1,
        finetune_epochs=1,
        ratios=(50,),
        calibration_size=16,
        validation_size=64,
        test_size=64,
        batch_size=64,
        verbose=0,
    )
    dense, uniform, budget_fit, budget = results["rows"]
    # The dense count, from the weights of a freshly built network.
    built = example.cnn.build_resnet()
    assert dense["params"] == sum(int(np.prod(w.shape)) for w in built.weights)
    assert dense["params"] == 290_730
    selected = [layer.name for layer in example.cnn._selected(built)]
    for row in (uniform, budget_fit, budget):
        assert row["target"] == 50
        assert row["compression"] >= 50
        assert row["compression"] == pytest.approx(
            dense["params"] / row["params"]
        )
        assert sorted(row["ranks"]) == sorted(selected)
        for key in ("accuracy", "val_accuracy", "accuracy_before_finetuning"):
            assert 0 <= row[key] <= 1
    # One rank for every layer, the largest that meets the ratio.
    [rank] = set(uniform["ranks"].values())
    assert uniform["model"] == f"uniform TT-rank {rank} + fit"
    assert example.cnn.rank_for_model_ratio(built, 50) == rank
    assert (
        dense["params"]
        / example.cnn._params_at_rank(built, rank + 1, tucker=False)
        < 50
    )
    # Data-aware init was measured on validation and used only if it helped.
    [log] = results["data_aware"]
    assert log["used"] == (
        log["val_accuracy_data_aware"] > log["val_accuracy_plain_cores"]
    )
    assert ("data-aware" in budget["model"]) == log["used"]
    # Plain fit and distillation start from the same compressed model.
    assert budget_fit["model"].endswith(" + fit")
    assert budget["model"].endswith(" + distill")
    assert (
        budget_fit["model"][: -len(" + fit")]
        == (budget["model"][: -len(" + distill")])
    )
    assert budget_fit["ranks"] == budget["ranks"]
    assert budget_fit["params"] == budget["params"]
    assert (
        budget_fit["accuracy_before_finetuning"]
        == (budget["accuracy_before_finetuning"])
    )
    assert [layer["name"] for layer in log["layers"]] == ["head"]

    example.write(results, tmp_path, "budget_cnn_quick")
    stored = json.loads((tmp_path / "budget_cnn_quick.json").read_text())
    assert stored["rows"][1]["params"] == uniform["params"]
    with open(tmp_path / "budget_cnn_quick.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["params"]) for r in rows] == [
        r["params"] for r in results["rows"]
    ]
    table = (tmp_path / "budget_cnn_quick.md").read_text()
    assert f"| 50x: {uniform['model']} | {uniform['params']:,} |" in table
    assert f"{budget['compression']:.1f}x" in table
    # Both allocations were measured; the one with the smaller change kept.
    tried = budget["allocation_candidates"]
    kept = min(tried, key=tried.get)
    assert budget["model"].startswith(f"budget ({kept} kept)")
    line = (
        f"| 50x | {tried['greedy']:.4f} | {tried['threshold']:.4f} | {kept} |"
    )
    assert table.count(line) == 1
    assert math.isfinite(budget["allocation_seconds"])
