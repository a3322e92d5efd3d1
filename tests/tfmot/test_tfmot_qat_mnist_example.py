"""examples/qat_mnist.py --quick runs its steps and writes its files."""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.tfmot

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def test_quick_run_writes_int8_files_and_the_table(mnist_dir, tmp_path):
    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "examples", "qat_mnist.py"),
            "--quick",
            "--out",
            str(out),
            "--data",
            str(mnist_dir),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| TT QAT int8 |" in result.stdout
    summary = json.loads((out / "qat_mnist.json").read_text())
    rows = {r["variant"]: r for r in summary["rows"]}
    assert set(rows) == {
        "dense float32",
        "dense PTQ int8",
        "TT float32",
        "TT PTQ int8",
        "TT QAT int8",
        "TT pruned+QAT int8",
    }
    for row in rows.values():
        assert (out / row["file"]).stat().st_size == row["size"]
        assert row["int8_only"] == row["variant"].endswith("int8")
    # Trained networks, not chance: the quick run reaches well above 10%.
    assert rows["TT QAT int8"]["accuracy"] > 0.8
    assert rows["TT PTQ int8"]["size"] < rows["TT float32"]["size"] / 1.5
    assert summary["core_sparsity_after_pruned_qat"] == pytest.approx(
        0.5, abs=0.05
    )
    assert rows["TT pruned+QAT int8"]["zipped"] < rows["TT QAT int8"]["zipped"]
