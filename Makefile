# Two commands for a fresh machine:
#   make demo   creates .venv, installs keras_tt, runs examples/quickstart.py
#   make test   creates .venv, installs keras_tt with test extras, runs pytest
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.keras_tt-installed

.PHONY: demo test bench clean

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,examples]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/quickstart.py

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) benchmarks/layer_speed.py

clean:
	rm -rf $(VENV) build *.egg-info
