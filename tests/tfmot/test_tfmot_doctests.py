"""The doctests of keras_tt.tf_keras, run in the tfmot process.

The fast suite does not collect them (see the root conftest.py):
they import tf_keras, which must not share a process with it.
"""

import doctest
import importlib

import pytest

pytest.importorskip("tf_keras")

pytestmark = pytest.mark.tfmot


@pytest.mark.parametrize(
    "module",
    [
        "keras_tt.tf_keras.layers",
        "keras_tt.tf_keras._tensorize",
        "keras_tt.tf_keras.export",
        "keras_tt.tf_keras.quantization",
    ],
)
def test_doctests(module):
    result = doctest.testmod(
        importlib.import_module(module), optionflags=doctest.ELLIPSIS
    )
    assert result.failed == 0


def test_layer_docstring_has_examples():
    from keras_tt.tf_keras import layers

    assert doctest.DocTestFinder().find(layers.TTDense)[0].examples
