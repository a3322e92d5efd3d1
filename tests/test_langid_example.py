"""End-to-end checks of examples/langid.py in its --quick mode.

The tests of the quick run are marked `slow` (``make test-zoo``): the run
trains four models, fine-tunes one at two rates and exports eight files
(about 30 s of CPU, more on a busy machine); without the data they skip,
saying where to put it (the `langid_dir` fixture). The quick run trains on
14,000 words for one epoch, so its accuracies are only required to be far
above chance (10%); the checks are on the pipeline: the files written, the
parameter counts (against independent formulas), the LiteRT files agreeing
with Keras, and the hashing. The quick run of examples/langid_budget.py
(the recovery arm: data-aware init and distillation against plain fit) is
checked for its rows: the baseline, the recipe, and every configuration
tried with its validation accuracy.
"""

import csv
import importlib.util
import math
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "langid.py"
QUICK_BUCKETS = 2**14
WIDTH = 64


@pytest.fixture(scope="module")
def langid():
    spec = importlib.util.spec_from_file_location("langid_example", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def run_quick(script, langid_dir, out):
    """Run ``script --quick`` in a subprocess; return its stdout."""
    result = subprocess.run(
        [
            sys.executable,
            str(script),
            "--quick",
            "--data",
            str(langid_dir),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def quick_run(langid_dir, tmp_path_factory):
    """Run the script once with --quick in a subprocess; return its folder."""
    out = tmp_path_factory.mktemp("langid_quick")
    run_quick(SCRIPT, langid_dir, out)
    return out


def _rows(out):
    with open(out / "langid_quick.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_quick_run_writes_every_output(quick_run):
    names = sorted(p.name for p in quick_run.iterdir())
    assert names == ["langid_quick.csv", "langid_quick.md", "langid_quick.png"]
    png = (quick_run / "langid_quick.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


@pytest.mark.slow
def test_quick_table_has_every_model_far_above_chance(quick_run, langid):
    rows = _rows(quick_run)
    kinds = [row["kind"] for row in rows]
    assert kinds == (
        ["dense"]
        + ["tt"] * len(langid.QUICK["tt_ranks"])
        + ["tensorize"]
        + ["hashing"] * len(langid.QUICK["small_buckets"])
    )
    for row in rows:
        for key in ("val_accuracy", "test_accuracy", "int8_litert_accuracy"):
            assert 0.3 < float(row[key]) <= 1.0, (row["label"], key)


def _tt_params(row):
    """sum_k r_{k-1} n_k m_k r_k from the modes and ranks in the table."""
    vocab = [int(n) for n in row["vocab_modes"].split("x")]
    embed = [int(m) for m in row["embed_modes"].split("x")]
    ranks = [int(r) for r in row["tt_ranks"].split("-")]
    assert len(vocab) == len(embed) == len(ranks) - 1
    assert ranks[0] == ranks[-1] == 1
    assert math.prod(vocab) >= QUICK_BUCKETS and math.prod(embed) >= WIDTH
    return sum(
        ranks[k] * n * m * ranks[k + 1]
        for k, (n, m) in enumerate(zip(vocab, embed))
    )


@pytest.mark.slow
def test_quick_parameter_counts_match_independent_formulas(quick_run, langid):
    rows = _rows(quick_run)
    classifier = (WIDTH * 64 + 64) + (64 * 10 + 10)
    for row in rows:
        table = int(row["table_params"])
        if row["kind"] in ("dense", "hashing"):
            assert table == int(row["buckets"]) * WIDTH
            assert row["tt_ranks"] == ""
            if row["kind"] == "dense":
                assert int(row["buckets"]) == QUICK_BUCKETS
        else:
            assert table == _tt_params(row), row["label"]
            inner = [int(r) for r in row["tt_ranks"].split("-")[1:-1]]
            assert max(inner) == int(row["rank"])
        assert int(row["model_params"]) == table + classifier
        assert float(row["compression"]) == pytest.approx(
            QUICK_BUCKETS * WIDTH / table, rel=1e-4
        )


@pytest.mark.slow
def test_quick_litert_files_agree_with_keras(quick_run):
    for row in _rows(quick_run):
        keras_acc = float(row["test_accuracy"])
        assert float(row["float32_agreement"]) >= 0.999, row["label"]
        assert float(row["float32_litert_accuracy"]) == pytest.approx(
            keras_acc, abs=0.002
        )
        # int8 flips words near a decision boundary, and a model trained
        # for one epoch on 14,000 words has many: allow 5% of them.
        assert float(row["int8_agreement"]) >= 0.95, row["label"]
        assert abs(float(row["int8_litert_accuracy"]) - keras_acc) < 0.02
        assert int(row["int8_bytes"]) < int(row["float32_bytes"])


@pytest.mark.slow
def test_quick_markdown_table_matches_csv(quick_run):
    text = (quick_run / "langid_quick.md").read_text(encoding="utf-8")
    rows = _rows(quick_run)
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + len(rows)  # header + one line per model
    for line, row in zip(table[1:], rows):
        assert line.startswith(f"| {row['label']} | ")
        assert f"{100 * float(row['test_accuracy']):.2f}" in line
    assert "![test accuracy against table parameters](langid_quick.png)" in (
        text
    )


def test_char_ngrams_of_a_word(langid):
    grams = langid.char_ngrams("der")
    marked = "<der>"
    expected = [
        marked[i : i + n]
        for n in (1, 2, 3, 4)
        for i in range(len(marked) - n + 1)
    ]
    expected = [g for g in expected if g not in ("<", ">")]
    assert grams == expected
    assert grams[:3] == ["d", "e", "r"] and "<der" in grams
    # A word of length n has n + (n + 1) + n + (n - 1) = 4n n-grams.
    assert len(langid.char_ngrams("sprache")) == 4 * 7


def test_hash_is_stable_crc32_and_never_the_padding_id(langid):
    ids = langid.encode_words(["ab", "ab", "ż"], num_buckets=2**18)
    assert ids.dtype == np.int32 and ids.shape == (3, langid.MAX_NGRAMS)
    np.testing.assert_array_equal(ids[0], ids[1])
    expected = [
        1 + zlib.crc32(g.encode("utf-8")) % (2**18 - 1)
        for g in ["a", "b", "<a", "ab", "b>", "<ab", "ab>", "<ab>"]
    ]
    assert ids[0, :8].tolist() == expected
    assert np.all(ids[0, 8:] == 0)
    # "ż" is 2 UTF-8 bytes; its unigram hashes those bytes.
    assert ids[2, 0] == 1 + zlib.crc32("ż".encode()) % (2**18 - 1)
    words = [f"w{i}ord" for i in range(500)]
    all_ids = langid.encode_words(words, num_buckets=7)
    used = all_ids[all_ids > 0]
    assert used.min() >= 1 and used.max() <= 6


def test_long_words_are_truncated_to_max_ngrams(langid):
    long_word = "a" * 40
    assert len(langid.char_ngrams(long_word)) == 4 * 40
    ids = langid.encode_words([long_word], num_buckets=2**10)
    assert np.all(ids > 0)
    assert math.prod(ids.shape) == langid.MAX_NGRAMS


def test_missing_data_folder_says_where(langid, tmp_path):
    with pytest.raises(FileNotFoundError, match="train.tsv"):
        langid.load_data(tmp_path)


# ------------------------------------------- examples/langid_budget.py --quick

BUDGET_SCRIPT = ROOT / "examples" / "langid_budget.py"


@pytest.fixture(scope="module")
def budget_quick_run(langid_dir, tmp_path_factory):
    """Run langid_budget.py once with --quick; return its folder and output."""
    out = tmp_path_factory.mktemp("langid_budget_quick")
    return out, run_quick(BUDGET_SCRIPT, langid_dir, out)


@pytest.fixture(scope="module")
def langid_budget():
    spec = importlib.util.spec_from_file_location(
        "langid_budget_example", BUDGET_SCRIPT
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


@pytest.mark.slow
def test_budget_quick_run_has_the_recovery_rows(
    budget_quick_run, langid_budget
):
    out, stdout = budget_quick_run
    assert sorted(p.name for p in out.iterdir()) == [
        "langid_budget_quick.csv",
        "langid_budget_quick.md",
    ]
    with open(out / "langid_budget_quick.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    kinds = [row["kind"] for row in rows]
    results = [k for k in kinds if k != "tried"]
    assert results[:2] == ["dense", "baseline"]
    assert "recipe_same_epochs" in results or "recipe" in results
    # Every configuration tried is listed once, with its validation score:
    # langid.py's two fine-tuning rates, then the quick configurations.
    tried = [row for row in rows if row["kind"] == "tried"]
    names = {c.name for c in langid_budget.QUICK_CONFIGS}
    assert names <= {row["config"] for row in tried}
    assert len(tried) == len({row["config"] for row in tried})
    for row in rows:
        assert 0.2 < float(row["val_accuracy"]) <= 1.0, row["config"]
        if row["kind"] != "tried":
            assert 0.2 < float(row["test_accuracy"]) <= 1.0, row["label"]
            assert int(row["table_params"]) == (
                QUICK_BUCKETS * WIDTH
                if row["kind"] == "dense"
                else 2 * 128 * 8 * langid_budget.QUICK["tensorize_rank"]
            )
        if row["kind"] in ("baseline", "recipe", "recipe_same_epochs"):
            # The pick is the best of its candidates on validation.
            same = [t for t in tried if t["config"] == row["config"]]
            assert len(same) == 1
            assert float(same[0]["val_accuracy"]) == float(row["val_accuracy"])
    baseline = next(r for r in rows if r["kind"] == "baseline")
    assert "svd, fit (labels)" in baseline["config"]
    text = (out / "langid_budget_quick.md").read_text(encoding="utf-8")
    for row in rows:
        if row["kind"] != "tried":
            line = f"| {row['label']} | "
            assert line in text
            assert f"{100 * float(row['test_accuracy']):.2f}" in text
        assert f"| {row['config']} |" in text or row["kind"] == "dense"
    assert "frequency-weighted" in stdout
