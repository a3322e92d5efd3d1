"""MNIST from local IDX files, with the Keras download as a fallback.

Machines without internet access keep the MNIST files (IDX format, gzipped
or not) in a folder. `load_mnist` looks for it where every loader of
`keras_tt.datasets` looks: the ``path`` argument, the folder named by the
environment variable ``KERAS_TT_MNIST_DIR``, ``~/.keras_tt/data/mnist``,
then ``shared/data/mnist`` in the working directory, its parent or its
grandparent.

When the folder holds only the 10,000-image test set (``t10k-*`` files), it
is split into a training part and a held-out part; `MNISTData.description`
says so, and every figure computed from it should repeat that.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import NamedTuple

import numpy as np

from keras_tt.datasets import _paths
from keras_tt.datasets._paths import DataNotFoundError
from keras_tt.modes import is_positive_int

ENV_VAR = "KERAS_TT_MNIST_DIR"
NAME = "mnist"
TEST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
TRAIN_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
_IDX_DTYPES = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


class MNISTData(NamedTuple):
    """Images as uint8 ``(n, 28, 28)``, labels as uint8 ``(n,)``."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    description: str


def read_idx(path) -> np.ndarray:
    """Read one IDX file (optionally gzipped) into a NumPy array.

    Raises:
        ValueError: the file is not an IDX file, or is shorter than its
            header says.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (gzip.BadGzipFile, EOFError) as error:
        raise ValueError(
            f"{path} is not a readable gzip file: {error}"
        ) from None
    if (
        len(data) < 4
        or data[0] != 0
        or data[1] != 0
        or data[2] not in _IDX_DTYPES
    ):
        raise ValueError(f"{path} is not an IDX file (bad magic number).")
    ndim = data[3]
    offset = 4 + 4 * ndim
    shape = tuple(
        int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)
    )
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(
            f"{path} is truncated or padded: its header announces shape "
            f"{shape} ({expected:,} bytes), the file has {len(data):,} bytes."
        )
    return np.frombuffer(data, dtype=dtype, offset=offset).reshape(shape)


def find_mnist_dir(path=None) -> Path | None:
    """The folder holding the MNIST IDX files, or ``None`` if there is none.

    Looks at ``path``, then ``$KERAS_TT_MNIST_DIR``, then
    ``~/.keras_tt/data/mnist``, then ``shared/data/mnist`` in the working
    directory, its parent or its grandparent. The folder needs at least the
    test set (``t10k-images-idx3-ubyte[.gz]`` and
    ``t10k-labels-idx1-ubyte[.gz]``).

    Raises:
        DataNotFoundError: ``path`` or ``$KERAS_TT_MNIST_DIR`` is given but
            does not hold those files.
    """
    return _paths.find_data_dir(NAME, ENV_VAR, TEST_FILES, path, "MNIST")


def _download(why: str) -> MNISTData:
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as error:  # Keras raises a bare Exception offline.
        raise DataNotFoundError(
            _paths.not_found_message(NAME, ENV_VAR, TEST_FILES, "MNIST")
            + f" {why}; the Keras download failed too ({error})."
        ) from None
    return MNISTData(
        x_train,
        y_train,
        x_test,
        y_test,
        "full MNIST (60,000 train / 10,000 test, Keras download)",
    )


def load_mnist(
    path=None,
    num_train: int = 8000,
    seed: int | None = None,
    test_set_only: bool = False,
    download: bool = True,
) -> MNISTData:
    """Load MNIST from local IDX files, or download it with Keras.

    Args:
        path: folder with the IDX files. ``None`` searches as `find_mnist_dir`
            does and, when nothing is found and ``download`` is true, falls
            back to `keras.datasets.mnist.load_data()` (needs internet).
        num_train: when only the 10,000-image test set is used, the first
            ``num_train`` images (after the shuffle, if any) are the training
            part and the rest the held-out part.
        seed: ``None`` keeps the file order; an integer shuffles the test
            set with ``numpy.random.default_rng(seed)`` before splitting it.
            (The first half of the MNIST test set comes from other writers
            than the second; a shuffle mixes both into each part.)
        test_set_only: split the 10,000-image test set even when the folder
            also holds the 60,000-image training set.
        download: allow the Keras download when no folder is found.

    Returns:
        `MNISTData` with the two parts and a one-line description of where
        they came from.

    Raises:
        DataNotFoundError: no files were found (and the download was not
            allowed or failed); the message says where to put them.

    Example:

    >>> data = load_mnist(num_train=8000, seed=0)  # doctest: +SKIP
    >>> data.x_train.shape, data.x_test.shape  # doctest: +SKIP
    ((8000, 28, 28), (2000, 28, 28))
    """
    if not is_positive_int(num_train):
        raise ValueError(
            "Received an invalid value for `num_train`, expected a positive "
            f"integer. Received: num_train={num_train!r}"
        )
    if seed is not None and not (is_positive_int(seed) or seed == 0):
        raise ValueError(
            "Received an invalid value for `seed`, expected None or a "
            f"non-negative integer. Received: seed={seed!r}"
        )
    folder = find_mnist_dir(path)
    if folder is None:
        if not download:
            raise DataNotFoundError(
                _paths.not_found_message(NAME, ENV_VAR, TEST_FILES, "MNIST")
            )
        data = _download("No local copy was found")
        if not test_set_only and seed is None:
            return data
        images, labels, source = data.x_test, data.y_test, "Keras download"
    else:
        train_images = _paths.find_file(folder, TRAIN_FILES[0])
        train_labels = _paths.find_file(folder, TRAIN_FILES[1])
        images = read_idx(_paths.find_file(folder, TEST_FILES[0]))
        labels = read_idx(_paths.find_file(folder, TEST_FILES[1]))
        source = str(folder)
        if train_images and train_labels and not test_set_only:
            return MNISTData(
                read_idx(train_images),
                read_idx(train_labels),
                images,
                labels,
                f"full MNIST from {folder}",
            )
    if len(images) != len(labels):
        raise ValueError(
            f"The MNIST files in {source} disagree: {len(images):,} images "
            f"but {len(labels):,} labels."
        )
    if not num_train < len(images):
        raise ValueError(
            "Received an invalid value for `num_train`, expected an integer "
            f"between 1 and {len(images) - 1}. Received: num_train={num_train}"
        )
    shuffled = ""
    if seed is not None:
        order = np.random.default_rng(seed).permutation(len(images))
        images, labels = images[order], labels[order]
        shuffled = f", shuffled with seed {seed}"
    return MNISTData(
        images[:num_train],
        labels[:num_train],
        images[num_train:],
        labels[num_train:],
        f"MNIST 10k test set split {num_train:,}/{len(images) - num_train:,} "
        f"(train/held-out{shuffled}), not the 60k training set",
    )
