"""MNIST from local IDX files, with the Keras download as a fallback.

Machines without internet access keep the MNIST files (IDX format, gzipped
or not) in a folder; `load_mnist` reads them from ``path``, from the folder
named by the environment variable ``KERAS_TT_MNIST_DIR``, or from
``../shared/data/mnist`` beside the project checkout, in that order.

When the folder holds only the 10,000-image test set (``t10k-*`` files), it
is split into a training part (the first ``num_train`` images) and a
held-out part (the rest); `MNISTData.description` says so, and every figure
computed from it should repeat that.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

ENV_VAR = "KERAS_TT_MNIST_DIR"
_PROJECT_DATA_DIR = (
    Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"
)
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
    """Read one IDX file (optionally gzipped) into a NumPy array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if (
        len(data) < 4
        or data[0] != 0
        or data[1] != 0
        or data[2] not in _IDX_DTYPES
    ):
        raise ValueError(f"{path} is not an IDX file (bad magic number).")
    ndim = data[3]
    shape = tuple(
        int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)
    )
    array = np.frombuffer(data, dtype=_IDX_DTYPES[data[2]], offset=4 + 4 * ndim)
    return array.reshape(shape)


def _find_file(folder: Path, stem: str):
    for name in (stem, stem + ".gz"):
        if (folder / name).exists():
            return folder / name
    return None


def find_mnist_dir(path=None):
    """The folder holding the MNIST IDX files, or ``None`` if there is none.

    Looks at ``path``, then ``$KERAS_TT_MNIST_DIR``, then
    ``../shared/data/mnist`` beside the project checkout.
    """
    for candidate in (path, os.environ.get(ENV_VAR), _PROJECT_DATA_DIR):
        if candidate and _find_file(Path(candidate), "t10k-images-idx3-ubyte"):
            return Path(candidate)
    if path is not None:
        raise FileNotFoundError(
            f"No MNIST IDX files (t10k-images-idx3-ubyte[.gz]) in {path}."
        )
    return None


def load_mnist(path=None, num_train: int = 8000) -> MNISTData:
    """Load MNIST from local IDX files, or download it with Keras.

    Args:
        path: folder with the IDX files. ``None`` searches as `find_mnist_dir`
            does and, when nothing is found, falls back to
            `keras.datasets.mnist.load_data()` (needs internet).
        num_train: when the folder holds only the 10,000-image test set, the
            first ``num_train`` images are the training part and the rest the
            held-out part.

    Returns:
        `MNISTData` with the two parts and a one-line description of where
        they came from.
    """
    folder = find_mnist_dir(path)
    if folder is None:
        import keras

        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
        return MNISTData(
            x_train,
            y_train,
            x_test,
            y_test,
            "full MNIST (60,000 train / 10,000 test, Keras download)",
        )
    train_images = _find_file(folder, "train-images-idx3-ubyte")
    if train_images is not None:
        return MNISTData(
            read_idx(train_images),
            read_idx(_find_file(folder, "train-labels-idx1-ubyte")),
            read_idx(_find_file(folder, "t10k-images-idx3-ubyte")),
            read_idx(_find_file(folder, "t10k-labels-idx1-ubyte")),
            f"full MNIST from {folder}",
        )
    images = read_idx(_find_file(folder, "t10k-images-idx3-ubyte"))
    labels = read_idx(_find_file(folder, "t10k-labels-idx1-ubyte"))
    if not 0 < num_train < len(images):
        raise ValueError(
            "Received an invalid value for `num_train`, expected an integer "
            f"between 1 and {len(images) - 1}. Received: num_train={num_train}"
        )
    return MNISTData(
        images[:num_train],
        labels[:num_train],
        images[num_train:],
        labels[num_train:],
        f"MNIST test set split {num_train:,}/{len(images) - num_train:,} "
        "(not the 60k training set)",
    )
