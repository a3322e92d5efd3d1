"""Shared fixtures: quiet TensorFlow, seeded RNGs, the data folders.

Doctests that need the LiteRT runtime are skipped, with the install command,
where ``ai-edge-litert`` is missing (a plain ``pip install -e .``).
"""

import importlib.util
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from keras_tt.datasets import mnist  # noqa: E402

# keras_tt.tf_keras imports tf_keras (and tfmot): its doctests run in their
# own process (make test-tfmot), never in a Keras 3 test process.
collect_ignore_glob = ["keras_tt/tf_keras/*.py"]


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def mnist_dir():
    """Folder with the real MNIST IDX files; skips the test when absent."""
    folder = mnist.find_mnist_dir()
    if folder is None:
        pytest.skip(
            "MNIST IDX files not found: set KERAS_TT_MNIST_DIR to a folder "
            "holding t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz "
            "(or place them in ../shared/data/mnist beside the checkout)."
        )
    return folder


@pytest.fixture(scope="session")
def langid_dir():
    """Folder with the langid TSV files; skips the test when absent."""
    from keras_tt.datasets import find_langid_dir

    folder = find_langid_dir()
    if folder is None:
        pytest.skip(
            "langid files not found: set KERAS_TT_LANGID_DIR to a folder "
            "holding train.tsv.gz and test.tsv.gz (or place them in "
            "../shared/data/langid beside the checkout)."
        )
    return folder


_LITERT_NAMES = (
    "export_tflite",
    "inspect_tflite",
    "evaluate_tflite",
    "TFLiteRunner",
    "export_keras_file",
)


def _has_litert() -> bool:
    try:
        return importlib.util.find_spec("ai_edge_litert") is not None
    except (ImportError, ValueError):
        return False


def pytest_collection_modifyitems(config, items):
    """Skip doctests that need LiteRT when ai-edge-litert is missing."""
    if _has_litert():
        return
    skip = pytest.mark.skip(
        reason="needs the LiteRT runtime: pip install -e '.[export]'"
    )
    for item in items:
        if not isinstance(item, pytest.DoctestItem):
            continue
        source = "".join(example.source for example in item.dtest.examples)
        if any(name in source for name in _LITERT_NAMES):
            item.add_marker(skip)
