"""Shared fixtures: quiet TensorFlow, seeded RNGs, the MNIST data folder."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from keras_tt.datasets import mnist  # noqa: E402


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
