"""Fashion-MNIST from local IDX files, with the Keras download as a fallback.

Fashion-MNIST (Zalando, MIT licence) has the layout of MNIST: 60,000
training and 10,000 test images of 28x28 grey pixels, in 10 classes of
clothing, as IDX files (gzipped or not). `load_fashion_mnist` looks for the
folder where every loader of `keras_tt.datasets` looks: the ``path``
argument, the folder named by the environment variable
``KERAS_TT_FASHION_MNIST_DIR``, ``~/.keras_tt/data/fashion-mnist``, then
``shared/data/fashion-mnist`` in the working directory, its parent or its
grandparent.

It returns the official split; hold out part of the training images for
validation (``validation_size``) and report figures on the test set.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from keras_tt.datasets import _paths
from keras_tt.datasets._paths import DataNotFoundError
from keras_tt.datasets.mnist import read_idx
from keras_tt.modes import is_positive_int

ENV_VAR = "KERAS_TT_FASHION_MNIST_DIR"
NAME = "fashion-mnist"
TITLE = "Fashion-MNIST"
TRAIN_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
TEST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


class FashionMNISTData(NamedTuple):
    """Images as uint8 ``(n, 28, 28)``, labels as uint8 ``(n,)``.

    ``x_val`` / ``y_val`` are the training images held out for validation
    (empty when ``validation_size`` is 0).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    description: str


def find_fashion_mnist_dir(path=None):
    """The folder holding the Fashion-MNIST IDX files, or ``None``.

    The folder needs all four files (training and test set). Looks where
    `keras_tt.datasets.find_mnist_dir` looks, with the name
    ``fashion-mnist`` and ``$KERAS_TT_FASHION_MNIST_DIR``.

    Raises:
        DataNotFoundError: ``path`` or ``$KERAS_TT_FASHION_MNIST_DIR`` is
            given but does not hold those files.
    """
    return _paths.find_data_dir(
        NAME, ENV_VAR, TRAIN_FILES + TEST_FILES, path, TITLE
    )


def _download(why: str):
    import keras

    try:
        return keras.datasets.fashion_mnist.load_data()
    except Exception as error:  # Keras raises a bare Exception offline.
        raise DataNotFoundError(
            _paths.not_found_message(
                NAME, ENV_VAR, TRAIN_FILES + TEST_FILES, TITLE
            )
            + f" {why}; the Keras download failed too ({error})."
        ) from None


def load_fashion_mnist(
    path=None,
    validation_size: int = 5000,
    num_train: int | None = None,
    seed: int = 0,
    download: bool = True,
) -> FashionMNISTData:
    """Load Fashion-MNIST (official split) from local files or by download.

    Args:
        path: folder with the IDX files. ``None`` searches as
            `find_fashion_mnist_dir` does and, when nothing is found and
            ``download`` is true, falls back to
            `keras.datasets.fashion_mnist.load_data()` (needs internet).
        validation_size: training images held out for validation (drawn at
            random with ``seed``); 0 for none.
        num_train: keep only this many of the remaining training images
            (the first after the shuffle); ``None`` keeps them all.
        seed: seed of the shuffle of the training set.
        download: allow the Keras download when no folder is found.

    Returns:
        `FashionMNISTData` with the three parts and a one-line description
        of the split.

    Raises:
        DataNotFoundError: no files were found (and the download was not
            allowed or failed); the message says where to put them.

    Example:

    >>> data = load_fashion_mnist(validation_size=5000)  # doctest: +SKIP
    >>> data.x_train.shape, data.x_val.shape, data.x_test.shape
    ... # doctest: +SKIP
    ((55000, 28, 28), (5000, 28, 28), (10000, 28, 28))
    """
    if not (is_positive_int(validation_size) or validation_size == 0):
        raise ValueError(
            "Received an invalid value for `validation_size`, expected a "
            f"non-negative integer. Received: validation_size="
            f"{validation_size!r}"
        )
    if num_train is not None and not is_positive_int(num_train):
        raise ValueError(
            "Received an invalid value for `num_train`, expected None or a "
            f"positive integer. Received: num_train={num_train!r}"
        )
    if not (is_positive_int(seed) or seed == 0):
        raise ValueError(
            "Received an invalid value for `seed`, expected a non-negative "
            f"integer. Received: seed={seed!r}"
        )
    folder = find_fashion_mnist_dir(path)
    if folder is None:
        if not download:
            raise DataNotFoundError(
                _paths.not_found_message(
                    NAME, ENV_VAR, TRAIN_FILES + TEST_FILES, TITLE
                )
            )
        (x_train, y_train), (x_test, y_test) = _download(
            "No local copy was found"
        )
        source = "Keras download"
    else:
        x_train, y_train, x_test, y_test = (
            read_idx(_paths.find_file(folder, name))
            for name in TRAIN_FILES + TEST_FILES
        )
        source = str(folder)
    for part, images, labels in (
        ("training", x_train, y_train),
        ("test", x_test, y_test),
    ):
        if len(images) != len(labels):
            raise ValueError(
                f"The Fashion-MNIST {part} files in {source} disagree: "
                f"{len(images):,} images but {len(labels):,} labels."
            )
    if not validation_size < len(x_train):
        raise ValueError(
            "Received an invalid value for `validation_size`, expected an "
            f"integer below {len(x_train)}. "
            f"Received: validation_size={validation_size}"
        )
    order = np.random.default_rng(seed).permutation(len(x_train))
    val, train = order[:validation_size], order[validation_size:]
    if num_train is not None:
        train = train[:num_train]
    return FashionMNISTData(
        x_train[train],
        y_train[train],
        x_train[val],
        y_train[val],
        x_test,
        y_test,
        f"Fashion-MNIST from {source}: {len(train):,} train / "
        f"{validation_size:,} validation (held out of the 60,000 training "
        f"images, seed {seed}) / {len(x_test):,} test (official test set)",
    )
