"""The documentation runs as written, and the built site holds together.

Every ```python block of README.md and of every page under docs/ (found by
globbing, so new pages are picked up) runs: per page, the blocks in order
in one namespace, in one fresh Python process, in an empty temporary
working directory, on the TensorFlow backend (``make test-docs``, marker
``docs``). Blocks in other fences (```text, ```bash, ```kotlin, bare ```)
are not run. The fast checks (every block parses, every public name has its
line in the API reference, the link checker finds what it should) run in
the default suite.

The pages that load MNIST (``keras_tt.datasets.load_mnist``) get the local
IDX files through ``KERAS_TT_MNIST_DIR``; the others make their own data.
"""

import ast
import importlib
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
sys.path.insert(0, str(REPO / "tools"))

import check_docs_site  # noqa: E402

FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```python[ \t]*\n(?P<code>.*?)^(?P=indent)```[ \t]*$",
    re.M | re.S,
)
# A page runs in at most this many seconds (~60 s on 2 loaded cores is the
# aim; this bound only stops a hung page).
PAGE_TIMEOUT = 600


def doc_pages() -> list[Path]:
    """README.md and every Markdown page under docs/, in a fixed order."""
    return [REPO / "README.md", *sorted(DOCS.rglob("*.md"))]


def python_blocks(page: Path) -> list[tuple[int, str]]:
    """``(line, code)`` of every ```python block of ``page``, dedented."""
    text = page.read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start("code")) + 1
        blocks.append((line, textwrap.dedent(match.group("code"))))
    return blocks


def _page_id(page: Path) -> str:
    return page.relative_to(REPO).as_posix()


RUNNABLE_PAGES = [page for page in doc_pages() if python_blocks(page)]


def test_pages_are_found_and_have_runnable_blocks():
    pages = {_page_id(page) for page in doc_pages()}
    assert {"README.md", "docs/index.md", "docs/pypi.md"} <= pages
    assert {"docs/guides/compressing.md", "docs/guides/tfmot.md"} <= pages
    runnable = {_page_id(page) for page in RUNNABLE_PAGES}
    assert {"README.md", "docs/pypi.md", "docs/getting-started.md"} <= runnable


def test_the_fence_pattern_takes_python_blocks_only():
    text = (
        "x\n```python\na = 1\n```\n```text\nnot run\n```\n"
        "- item\n\n  ```python\n  b = a\n  ```\n```bash\nls\n```\n"
    )
    found = [textwrap.dedent(m.group("code")) for m in FENCE.finditer(text)]
    assert found == ["a = 1\n", "b = a\n"]


@pytest.mark.parametrize("page", doc_pages(), ids=_page_id)
def test_every_python_block_parses(page):
    for line, code in python_blocks(page):
        ast.parse(code, filename=f"{_page_id(page)}:{line}")


def _public_names():
    """``(module, name)`` for every public name the reference documents."""
    import keras_tt

    names = [("keras_tt", name) for name in keras_tt.__all__]
    subpackages = ("keras_tt.export", "keras_tt.datasets", "keras_tt.tensorize")
    for module in subpackages:
        imported = importlib.import_module(module)
        names += [(module, name) for name in imported.__all__]
    return names


def test_the_api_reference_has_a_line_for_every_public_name():
    text = "\n".join(
        path.read_text(encoding="utf-8")
        for path in sorted((DOCS / "api").glob("*.md"))
    )
    documented = set(re.findall(r"^::: ([\w.]+)$", text, re.M))
    documented_names = {target.rsplit(".", 1)[-1] for target in documented}
    missing = []
    for module, name in _public_names():
        if f"{module}.{name}" in documented:
            continue
        # A name re-exported by keras_tt may be documented there instead.
        if module != "keras_tt" and f"keras_tt.{name}" in documented:
            continue
        missing.append(f"{module}.{name}")
    assert not missing, f"add '::: NAME' lines to docs/api/: {missing}"
    # The tf_keras names are loaded lazily: each has its defining module's
    # line (register_tfmot is documented under its own heading).
    tf_keras_init = (REPO / "keras_tt/tf_keras/__init__.py").read_text()
    lazy = re.findall(r'^    "(\w+)": "keras_tt\.tf_keras', tf_keras_init, re.M)
    assert lazy
    undocumented = [
        name
        for name in lazy
        if name not in documented_names and f"heading: {name}" not in text
    ]
    assert not undocumented, undocumented


# ----------------------------------------------------------- running pages

_RUNNER = textwrap.dedent(
    """
    import json, sys, time, traceback

    blocks = json.load(open(sys.argv[1]))
    namespace = {"__name__": "__main__"}
    for name, line, code in blocks:
        start = time.perf_counter()
        try:
            exec(compile(code, f"{name}:{line}", "exec"), namespace)
        except BaseException:
            traceback.print_exc()
            print(f"FAILED {name}:{line}", file=sys.stderr)
            sys.exit(1)
        took = time.perf_counter() - start
        print(f"{name}:{line} ran in {took:.1f} s", flush=True)
    """
)


def run_page(page: Path, tmp_path: Path, env_extra=None):
    name = _page_id(page)
    blocks = [(name, line, code) for line, code in python_blocks(page)]
    (tmp_path / "blocks.json").write_text(json.dumps(blocks))
    (tmp_path / "runner.py").write_text(_RUNNER)
    work = tmp_path / "work"
    work.mkdir()
    env = dict(os.environ)
    env.update(
        KERAS_BACKEND="tensorflow",
        TF_CPP_MIN_LOG_LEVEL="3",
        MPLBACKEND="Agg",
        # This checkout's keras_tt, whatever is installed.
        PYTHONPATH=os.pathsep.join(
            [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
    )
    env.update(env_extra or {})
    completed = subprocess.run(
        [sys.executable, str(tmp_path / "runner.py"), "../blocks.json"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=PAGE_TIMEOUT,
    )
    return blocks, completed


@pytest.mark.docs
@pytest.mark.parametrize("page", RUNNABLE_PAGES, ids=_page_id)
def test_page_runs_as_written(page, tmp_path, request):
    code = "\n".join(code for _, code in python_blocks(page))
    env = {}
    if "load_mnist(" in code:
        env["KERAS_TT_MNIST_DIR"] = str(request.getfixturevalue("mnist_dir"))
    if "ai_edge_litert" in code or "export_tflite" in code:
        pytest.importorskip("ai_edge_litert")
    if "tensorflow_model_optimization" in code:
        pytest.importorskip("tensorflow_model_optimization")
    blocks, completed = run_page(page, tmp_path, env)
    print(completed.stdout)
    assert completed.returncode == 0, completed.stderr[-6000:]
    for name, line, _ in blocks:
        assert f"{name}:{line} ran in" in completed.stdout


def test_a_failing_block_fails_the_page(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```python\nx = 1\n```\n\n```python\nassert x == 2\n```\n")
    blocks, completed = run_page_outside_repo(page, tmp_path)
    assert completed.returncode == 1
    assert "AssertionError" in completed.stderr


def run_page_outside_repo(page, tmp_path):
    """`run_page` for a page outside the checkout (named by its file name)."""
    blocks = [(page.name, line, code) for line, code in python_blocks(page)]
    (tmp_path / "blocks.json").write_text(json.dumps(blocks))
    (tmp_path / "runner.py").write_text(_RUNNER)
    work = tmp_path / "work"
    work.mkdir()
    completed = subprocess.run(
        [sys.executable, str(tmp_path / "runner.py"), "../blocks.json"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return blocks, completed


# -------------------------------------------------------------- the site


def test_the_link_checker_finds_broken_links_and_anchors(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "index.html").write_text(
        '<h1 id="top">x</h1><a href="a/page.html#there">ok</a>'
        '<a href="missing.html">broken</a><a href="#nowhere">bad anchor</a>'
        '<a href="https://example.org/">external</a><img src="a/pic.png">'
    )
    (tmp_path / "a" / "page.html").write_text(
        '<p id="there"></p><a href="../index.html#top">up</a>'
    )
    problems = check_docs_site.check_links(tmp_path)
    assert len(problems) == 3, problems
    assert any("missing.html" in p for p in problems)
    assert any("#nowhere" in p for p in problems)
    assert any("a/pic.png" in p for p in problems)


@pytest.fixture(scope="module")
def built_site(tmp_path_factory):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    site = tmp_path_factory.mktemp("site")
    completed = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=REPO,
        env=dict(os.environ, NO_MKDOCS_2_WARNING="1"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-6000:]
    return site


@pytest.mark.docs
def test_the_site_builds_strict_and_has_no_broken_links(built_site):
    assert (built_site / "index.html").exists()
    assert (built_site / "api" / "layers.html").exists()
    assert "TTDense" in (built_site / "api" / "layers.html").read_text()
    assert not (built_site / "pypi.html").exists()
    problems = check_docs_site.check_links(built_site)
    assert not problems, "\n".join(problems)


@pytest.mark.docs
def test_the_site_renders_in_a_headless_browser(built_site):
    browser = check_docs_site.find_browser()
    if browser is None:
        pytest.skip("no Chromium found: apt-get install chromium")
    screenshot = built_site / "screenshot-home.png"
    problems = check_docs_site.check_in_browser(
        built_site, browser, screenshot=screenshot
    )
    assert not problems, "\n".join(problems)
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_pypi_description_stands_alone():
    text = (DOCS / "pypi.md").read_text(encoding="utf-8")
    assert "../shared" not in text and "make " not in text
    # Relative links and images would break on PyPI.
    for target in re.findall(r"\]\(([^)]+)\)", text):
        assert target.startswith("https://"), target
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert 'readme = "docs/pypi.md"' in pyproject


def test_docs_tools_are_where_the_site_config_says():
    config = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    paths = re.findall(r"(tools/[\w/]+\.py)", config)
    assert paths
    for path in paths:
        assert (REPO / path).exists(), path
