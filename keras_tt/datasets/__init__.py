"""Small dataset loaders used by the examples, benchmarks and tests."""

from keras_tt.datasets.mnist import MNISTData, find_mnist_dir, load_mnist, read_idx

__all__ = ["MNISTData", "find_mnist_dir", "load_mnist", "read_idx"]
