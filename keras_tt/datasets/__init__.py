"""Small dataset loaders used by the examples, benchmarks and tests."""

from keras_tt.datasets.mnist import MNISTData
from keras_tt.datasets.mnist import find_mnist_dir
from keras_tt.datasets.mnist import load_mnist
from keras_tt.datasets.mnist import read_idx

__all__ = ["MNISTData", "find_mnist_dir", "load_mnist", "read_idx"]
