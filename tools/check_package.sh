#!/usr/bin/env bash
# Release checks: build the wheel and the sdist, check them, install each
# in a clean virtual environment and use it from outside the source tree.
#
#   bash tools/check_package.sh [PYTHON]
#
# PYTHON (default .venv/bin/python) must have build, twine and the
# project's dependencies (make package installs them). The clean
# environments reuse that interpreter's installed packages through a .pth
# file (TensorFlow is too large to install again), so they run offline;
# keras_tt itself comes only from the wheel or the sdist under test.
#
# 1. python -m build: wheel and sdist; twine check on both.
# 2. Wheel: installed with --no-deps into a fresh venv; from an empty
#    folder, `keras-tt --version` and the README's Quickstart run, and
#    keras_tt is imported from that venv, not from the checkout.
# 3. Sdist: unpacked; it must hold the tests and their configuration and
#    helpers; `pip install ./keras_tt-X[test]` into a fresh venv, then a
#    subset of its tests run from the unpacked folder.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PYTHON=${1:-${PYTHON:-.venv/bin/python}}
PYTHON=$(cd "$(dirname "$PYTHON")" && pwd)/$(basename "$PYTHON")
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-3}
export PIP_DISABLE_PIP_VERSION_CHECK=1
WORK=$(mktemp -d "${TMPDIR:-/tmp}/keras_tt_package.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
start=$SECONDS
step() { echo "== check_package: $* ($((SECONDS - start)) s)"; }

step "building wheel and sdist"
# No build isolation: setuptools and wheel come from PYTHON (offline).
"$PYTHON" -m build --no-isolation --outdir "$WORK/dist" . > "$WORK/build.log" 2>&1 \
    || { tail -40 "$WORK/build.log"; exit 1; }
WHEEL=$(ls "$WORK"/dist/keras_tt-*.whl)
SDIST=$(ls "$WORK"/dist/keras_tt-*.tar.gz)
VERSION=$("$PYTHON" -c "import ast,sys; t=open('keras_tt/__init__.py').read(); \
print([n.value.value for n in ast.parse(t).body if isinstance(n, ast.Assign) \
and n.targets[0].id == '__version__'][0])")
echo "built $(basename "$WHEEL") and $(basename "$SDIST") (version $VERSION)"
case "$WHEEL" in *"keras_tt-$VERSION-"*) ;; *)
    echo "FAIL: wheel name does not carry version $VERSION"; exit 1;; esac

step "twine check"
"$PYTHON" -m twine check --strict "$WHEEL" "$SDIST"

# A fresh venv that sees PYTHON's installed packages through a .pth file.
linked_venv() {
    local venv=$1
    "$PYTHON" -m venv --without-pip "$venv"
    local site_dir
    site_dir=$("$venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    "$PYTHON" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" \
        > "$site_dir/_keras_tt_check_deps.pth"
}

step "wheel: install into a clean venv"
linked_venv "$WORK/wheel_venv"
"$PYTHON" -m pip --python "$WORK/wheel_venv/bin/python" install --quiet \
    --no-deps --no-index "$WHEEL"
mkdir "$WORK/outside"
cd "$WORK/outside"
VENV_PY=$WORK/wheel_venv/bin/python
"$VENV_PY" - "$WORK/wheel_venv" <<'PY'
import sys
import keras_tt
assert keras_tt.__file__.startswith(sys.argv[1]), keras_tt.__file__
print("keras_tt", keras_tt.__version__, "from", keras_tt.__file__)
PY
got=$("$WORK/wheel_venv/bin/keras-tt" --version)
echo "$got"
[ "$got" = "keras-tt $VERSION" ] || { echo "FAIL: keras-tt --version: $got"; exit 1; }
"$WORK/wheel_venv/bin/keras-tt" --help | grep -q TTEmbedding \
    || { echo "FAIL: keras-tt --help does not name TTEmbedding"; exit 1; }

step "wheel: the README's Quickstart and the PyPI example, outside the tree"
"$PYTHON" "$REPO/tools/doc_blocks.py" "$REPO/README.md" > quickstart.py
"$PYTHON" "$REPO/tools/doc_blocks.py" "$REPO/docs/pypi.md" > pypi_example.py
if [ -z "${KERAS_TT_MNIST_DIR:-}" ] && [ -d "$REPO/../shared/data/mnist" ]; then
    export KERAS_TT_MNIST_DIR=$REPO/../shared/data/mnist
fi
env -u PYTHONPATH "$VENV_PY" pypi_example.py > pypi_example.log 2>&1 \
    || { tail -30 pypi_example.log; exit 1; }
env -u PYTHONPATH "$VENV_PY" quickstart.py > quickstart.log 2>&1 \
    || { tail -30 quickstart.log; exit 1; }
tail -3 quickstart.log
cd "$REPO"

step "sdist: contents"
mkdir "$WORK/sdist"
tar -xzf "$SDIST" -C "$WORK/sdist"
SRC=$WORK/sdist/keras_tt-$VERSION
for path in LICENSE conftest.py pytest.ini tests/tt_reference.py \
        tests/distributed_scripts.py tests/test_tt_dense.py docs/pypi.md; do
    [ -e "$SRC/$path" ] || { echo "FAIL: the sdist lacks $path"; exit 1; }
done
echo "the sdist holds the tests, their configuration and helpers"

step "sdist: pip install ./keras_tt-$VERSION[test] into a clean venv"
linked_venv "$WORK/sdist_venv"
"$PYTHON" -m pip --python "$WORK/sdist_venv/bin/python" install --quiet \
    --no-build-isolation --no-index "$SRC[test]"

step "sdist: a subset of its tests"
cd "$SRC"
env -u PYTHONPATH "$WORK/sdist_venv/bin/python" -m pytest -q -x \
    -p no:cacheprovider tests/test_tt_dense.py tests/test_decomposition.py \
    tests/test_cli.py 2>&1 | tail -3
cd "$REPO"
step "all package checks passed"
