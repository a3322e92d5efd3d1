"""Release hygiene: version, licence, metadata, sdist contents, quiet start.

The slow checks (building wheel and sdist, clean installs, the Quickstart
outside the source tree) are ``make package`` (tools/check_package.sh).
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import keras_tt
from keras_tt import cli

REPO = Path(__file__).resolve().parents[1]


def _pyproject() -> str:
    return (REPO / "pyproject.toml").read_text(encoding="utf-8")


def test_version_is_0_2_0_and_the_changelog_has_its_release_section():
    assert keras_tt.__version__ == "0.2.0"
    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## \[([^\]]+)\](.*)$", changelog, re.M)
    # Keep a Changelog: an Unreleased section on top, then the releases,
    # newest first, each with its date.
    assert headings[0] == ("Unreleased", "")
    assert headings[1][0] == keras_tt.__version__
    assert re.fullmatch(r" - \d{4}-\d{2}-\d{2}", headings[1][1])
    assert [name for name, _ in headings[1:]] == ["0.2.0", "0.1.0"]


def test_the_licence_is_the_apache_2_0_text():
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert text.count("\n") > 150  # the full text, not a notice
    assert 'license = "Apache-2.0"' in _pyproject()


def test_project_urls_are_declared():
    urls = _pyproject().split("[project.urls]", 1)[1].split("\n[", 1)[0]
    names = dict(re.findall(r'^(\w+) = "(https://[^"]+)"$', urls, re.M))
    assert {"Homepage", "Documentation", "Repository", "Changelog"} <= set(
        names
    )


def test_the_sdist_manifest_carries_what_the_tests_need():
    manifest = (REPO / "MANIFEST.in").read_text(encoding="utf-8")
    for needed in ("conftest.py", "pytest.ini", "LICENSE"):
        assert needed in manifest
    assert "graft tests" in manifest  # tt_reference.py, distributed_scripts
    assert (REPO / "tests" / "tt_reference.py").exists()
    assert (REPO / "tests" / "distributed_scripts.py").exists()


def test_version_flag_prints_the_version(capsys):
    parser = cli.build_parser()
    try:
        parser.parse_args(["--version"])
    except SystemExit as stop:
        assert stop.code == 0
    else:
        raise AssertionError("--version did not exit")
    assert capsys.readouterr().out.strip() == f"keras-tt {keras_tt.__version__}"


def test_version_is_answered_without_importing_tensorflow():
    completed = subprocess.run(
        [sys.executable, "-m", "keras_tt", "--version"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == f"keras-tt {keras_tt.__version__}"
    # TensorFlow prints start-up lines when it loads: none here.
    assert "absl::InitializeLog" not in completed.stderr


def test_help_names_every_layer_kind(capsys):
    for argv in (["--help"], ["tensorize", "--help"]):
        try:
            cli.build_parser().parse_args(argv)
        except SystemExit:
            pass
        out = capsys.readouterr().out
        for kind in (
            "TTDense",
            "TTEinsumDense",
            "TTEmbedding",
            "TT attention",
            "TTConv2D",
            "TTConv1D",
        ):
            assert kind in out, (argv, kind)


def _level_after_import(env_level, import_tensorflow_first=False):
    code = (
        ("import tensorflow\n" if import_tensorflow_first else "")
        + "import os, keras_tt\n"
        "print(os.environ.get('TF_CPP_MIN_LOG_LEVEL', 'unset'),"
        " keras_tt._quiet.set_by_keras_tt)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    if env_level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = env_level
    completed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout.strip(), completed.stderr


def test_import_hides_info_notices_only_when_the_user_has_not_chosen():
    level, stderr = _level_after_import(None)
    assert level == "1 True"
    # The CPU-feature notice is an INFO line written after TensorFlow reads
    # the level: gone.
    assert "cpu_feature_guard" not in stderr
    level, stderr = _level_after_import("0")
    assert level == "0 False"  # the user's choice is kept
    assert "cpu_feature_guard" in stderr
    # TensorFlow already loaded: setting the level would do nothing, and
    # keras_tt leaves it alone.
    level, _ = _level_after_import(None, import_tensorflow_first=True)
    assert level.endswith(" False")
