"""Installation script for keras_tt.

The metadata (name, version, dependencies, extras, the ``keras-tt``
command) lives in ``pyproject.toml``; this file lets tools that still call
``python setup.py`` or ``pip install -e .`` on older setups find it.
"""

from setuptools import setup

setup()
