# Two commands for a fresh machine:
#   make demo   creates .venv, installs keras_tt, runs examples/quickstart.py
#   make test   creates .venv, installs keras_tt with test extras, runs pytest
# Slower suites have their own targets; `make ci` runs everything CI runs.
#   make docs      builds the documentation site into site/ (strict), checks
#                  its links and renders it in headless Chromium
#   make test-docs runs every python block of README.md and docs/
#   make package   builds wheel and sdist, checks and installs them
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST := $(PY) -m pytest
# The slow suites: no doctests, their marker only.
PYTEST_MARKED := $(PYTEST) -o addopts=-ra
STAMP := $(VENV)/.keras_tt-installed
EXTRAS_STAMP := $(VENV)/.keras_tt-extras-installed
DOCS_STAMP := $(VENV)/.keras_tt-docs-installed

.PHONY: demo test lint format test-zoo test-backends test-tfmot verify-arm64 \
	bench docs test-docs package ci clean

$(STAMP): setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,examples]"
	touch $(STAMP)

# JAX, PyTorch (CPU build), tf_keras + tfmot and keras-hub for the slow suites.
$(EXTRAS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[test,examples,backends,tfmot,zoo]"
	touch $(EXTRAS_STAMP)

# MkDocs (material, mkdocstrings), build and twine, on top of the extras
# (the tfmot guide's code runs too).
$(DOCS_STAMP): $(EXTRAS_STAMP)
	$(PY) -m pip install --quiet -e ".[test,examples,backends,tfmot,zoo,docs,release]"
	touch $(DOCS_STAMP)

demo: $(STAMP)
	$(PY) examples/quickstart.py

test: $(STAMP)
	$(PYTEST)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

# Whole architectures (keras.applications, keras_hub backbones, ...) and
# the slow tests (distributed training, full example runs).
test-zoo: $(EXTRAS_STAMP)
	$(PYTEST_MARKED) -m "zoo or slow" tests

# The layer tests on the JAX and PyTorch backends, one process each.
test-backends: $(EXTRAS_STAMP)
	KERAS_BACKEND=jax $(PYTEST_MARKED) -m multibackend tests
	KERAS_BACKEND=torch $(PYTEST_MARKED) -m multibackend tests

# tf_keras layers and tensorflow-model-optimization, in their own process.
test-tfmot: $(EXTRAS_STAMP)
	$(PYTEST_MARKED) -m tfmot tests

# Exported files on ARM64 LiteRT kernels under qemu user-mode emulation. The
# aarch64 runtime (about 400 MB) is cached outside the checkout, so fresh
# clones on the same machine reuse it.
KERAS_TT_ARM64_CACHE ?= $(HOME)/.cache/keras_tt/arm64
export KERAS_TT_ARM64_CACHE
verify-arm64: $(STAMP)
	bash tools/verify_arm64.sh --exports

bench: $(STAMP)
	$(PY) benchmarks/layer_speed.py

# The site, offline, warnings as errors; then links, rendering in headless
# Chromium (skipped with a message when none is installed) and a
# screenshot of the home page, site/screenshot-home.png.
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir site
	$(PY) tools/check_docs_site.py site

# Every ```python block of README.md and docs/, page by page, and the
# built site's links and rendering.
test-docs: $(DOCS_STAMP)
	$(PYTEST_MARKED) -m docs tests/test_docs.py

# Wheel and sdist: build, twine check, clean installs, the Quickstart
# outside the source tree, the sdist's own tests (a subset).
package: $(DOCS_STAMP)
	bash tools/check_package.sh $(PY)

# Everything CI runs (.ci/run), fastest first.
ci: lint test test-backends test-tfmot verify-arm64 test-zoo docs test-docs \
	package

clean:
	rm -rf $(VENV) build dist site *.egg-info
