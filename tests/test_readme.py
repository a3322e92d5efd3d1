"""The README's Python snippets run as written.

Every ```python block of README.md runs, in order, in one fresh Python
process (later snippets use the names earlier ones define, as a reader
following the README would), in an empty working directory. A block that is
not meant to run (a signature, a fragment) is preceded by the line
``<!-- not-run: REASON -->``.

The one file the README assumes the reader has, ``trained.keras`` ("a
trained model"), is written before the snippets run: a small Dense MLP
trained briefly on the same MNIST data.
"""

import ast
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
NOT_RUN = re.compile(r"^<!--\s*not-run\b.*-->$")
FENCE = re.compile(r"^```python\s*\n(.*?)^```\s*$", re.M | re.S)


def readme_blocks():
    """``(line, code, runnable)`` for every ```python block of the README."""
    text = README.read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").splitlines()
        previous = before[-1].strip() if before else ""
        line = text.count("\n", 0, match.start()) + 1
        blocks.append((line, match.group(1), not NOT_RUN.match(previous)))
    return blocks


def test_the_readme_has_runnable_and_marked_blocks():
    blocks = readme_blocks()
    assert any(runnable for _, _, runnable in blocks)
    for line, code, _ in blocks:
        ast.parse(code, filename=f"README.md:{line}")  # every block parses


def test_marker_convention_is_recognised(tmp_path):
    assert NOT_RUN.match("<!-- not-run: signature -->")
    assert NOT_RUN.match("<!-- not-run -->")
    assert not NOT_RUN.match("<!-- run -->")
    assert not NOT_RUN.match("Some text <!-- not-run -->")


_RUNNER = textwrap.dedent(
    """
    import json, sys, time

    import keras
    from keras_tt.datasets import load_mnist

    # The "trained model" the README's compression snippet starts from.
    keras.utils.set_random_seed(0)
    data = load_mnist()
    trained = keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(1024, activation="relu", name="fc1"),
            keras.layers.Dense(10, activation="softmax", name="fc2"),
        ]
    )
    trained.compile(
        optimizer="adam", loss="sparse_categorical_crossentropy"
    )
    trained.fit(
        data.x_train.reshape(-1, 784) / 255, data.y_train, epochs=1,
        verbose=0,
    )
    trained.save("trained.keras")

    blocks = json.load(open(sys.argv[1]))
    namespace = {"__name__": "__readme__"}
    for line, code in blocks:
        start = time.perf_counter()
        exec(compile(code, f"README.md:{line}", "exec"), namespace)
        print(f"README.md:{line} ran in {time.perf_counter() - start:.1f} s")
    """
)


@pytest.mark.zoo
def test_readme_snippets_run_as_written(mnist_dir, tmp_path):
    pytest.importorskip("ai_edge_litert")
    runnable = [(line, code) for line, code, run in readme_blocks() if run]
    (tmp_path / "blocks.json").write_text(json.dumps(runnable))
    (tmp_path / "runner.py").write_text(_RUNNER)
    work = tmp_path / "work"
    work.mkdir()
    env = dict(os.environ, KERAS_TT_MNIST_DIR=str(mnist_dir))
    completed = subprocess.run(
        [sys.executable, str(tmp_path / "runner.py"), "../blocks.json"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    for line, _ in runnable:
        assert f"README.md:{line} ran in" in completed.stdout
    assert (work / "m.keras").exists()
