"""Small real data sets for the examples, benchmarks and tests.

Every loader looks for its files in the same places, in this order: the
``path`` argument; the folder named by its environment variable
(``KERAS_TT_MNIST_DIR``, ``KERAS_TT_FASHION_MNIST_DIR``,
``KERAS_TT_LANGID_DIR``); the user data folder
``~/.keras_tt/data/NAME``; and last ``shared/data/NAME`` in the working
directory, its parent or its grandparent (a source checkout with its data
beside it).
A ``path`` or environment variable that names a folder without the files is
an error, and so is finding nothing: `DataNotFoundError` says which files
are expected and where to put them.
"""

from keras_tt.datasets._paths import DataNotFoundError
from keras_tt.datasets._paths import user_data_dir
from keras_tt.datasets.fashion_mnist import FashionMNISTData
from keras_tt.datasets.fashion_mnist import find_fashion_mnist_dir
from keras_tt.datasets.fashion_mnist import load_fashion_mnist
from keras_tt.datasets.langid import LangIDData
from keras_tt.datasets.langid import find_langid_dir
from keras_tt.datasets.langid import load_langid
from keras_tt.datasets.mnist import MNISTData
from keras_tt.datasets.mnist import find_mnist_dir
from keras_tt.datasets.mnist import load_mnist
from keras_tt.datasets.mnist import read_idx

__all__ = [
    "DataNotFoundError",
    "FashionMNISTData",
    "LangIDData",
    "MNISTData",
    "find_fashion_mnist_dir",
    "find_langid_dir",
    "find_mnist_dir",
    "load_fashion_mnist",
    "load_langid",
    "load_mnist",
    "read_idx",
    "user_data_dir",
]
