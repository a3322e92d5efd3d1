"""Word-level language identification: 200,000 words in 10 languages.

The data set is two gzipped TSV files, ``train.tsv.gz`` (160,000 rows) and
``test.tsv.gz`` (40,000 rows, disjoint words), one ``word<TAB>lang`` row per
line, both shuffled. `load_langid` looks for their folder where every loader
of `keras_tt.datasets` looks: the ``path`` argument, the folder named by the
environment variable ``KERAS_TT_LANGID_DIR``, ``~/.keras_tt/data/langid``,
then ``shared/data/langid`` in the working directory, its parent or its
grandparent.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import NamedTuple

import numpy as np

from keras_tt.datasets import _paths
from keras_tt.datasets._paths import DataNotFoundError
from keras_tt.modes import is_positive_int

ENV_VAR = "KERAS_TT_LANGID_DIR"
NAME = "langid"
FILES = ("train.tsv", "test.tsv")


class LangIDData(NamedTuple):
    """Words and integer labels; ``languages[label]`` is the language code.

    ``x_train`` and ``x_test`` are NumPy arrays of Python strings,
    ``y_train`` and ``y_test`` int32 arrays of indices into ``languages``
    (the codes in alphabetical order).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    languages: tuple
    description: str


def find_langid_dir(path=None) -> Path | None:
    """The folder holding ``train.tsv[.gz]`` and ``test.tsv[.gz]``, or None.

    Looks at ``path``, then ``$KERAS_TT_LANGID_DIR``, then
    ``~/.keras_tt/data/langid``, then ``shared/data/langid`` in the working
    directory, its parent or its grandparent.

    Raises:
        DataNotFoundError: ``path`` or ``$KERAS_TT_LANGID_DIR`` is given but
            does not hold the files.
    """
    return _paths.find_data_dir(NAME, ENV_VAR, FILES, path, "langid")


def _read_tsv(path: Path, limit: int | None):
    words, langs = [], []
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                if limit is not None and len(words) == limit:
                    break
                fields = line.rstrip("\n").split("\t")
                if len(fields) != 2 or not fields[0] or not fields[1]:
                    raise ValueError(
                        f"{path}, line {number}: expected 'word<TAB>lang'. "
                        f"Received: {line.rstrip()!r}"
                    )
                words.append(fields[0])
                langs.append(fields[1])
    except (gzip.BadGzipFile, EOFError, UnicodeDecodeError) as error:
        raise ValueError(
            f"{path} is not a readable UTF-8 TSV file: {error}"
        ) from None
    return words, langs


def _check_limit(name, value):
    if value is not None and not is_positive_int(value):
        raise ValueError(
            f"Received an invalid value for `{name}`, expected None or a "
            f"positive integer. Received: {name}={value!r}"
        )


def load_langid(path=None, num_train=None, num_test=None) -> LangIDData:
    """Load the word-level language identification set.

    Args:
        path: folder with ``train.tsv.gz`` and ``test.tsv.gz``. ``None``
            searches as `find_langid_dir` does.
        num_train: read only the first ``num_train`` training rows (the
            files are shuffled, so this is a random subset); ``None`` reads
            all 160,000.
        num_test: the same for the 40,000 test rows.

    Returns:
        `LangIDData`: words, integer labels, the language codes and a
        one-line description of what was read.

    Raises:
        DataNotFoundError: the files were not found; the message says where
            to put them.
        ValueError: a file is not a ``word<TAB>lang`` TSV file, or the test
            set holds a language the training set does not.

    Example:

    >>> data = load_langid(num_train=1000, num_test=100)  # doctest: +SKIP
    >>> len(data.x_train), data.languages[:3]  # doctest: +SKIP
    (1000, ('da', 'de', 'en'))
    """
    _check_limit("num_train", num_train)
    _check_limit("num_test", num_test)
    folder = find_langid_dir(path)
    if folder is None:
        raise DataNotFoundError(
            _paths.not_found_message(NAME, ENV_VAR, FILES, "langid")
        )
    train_words, train_langs = _read_tsv(
        _paths.find_file(folder, FILES[0]), num_train
    )
    test_words, test_langs = _read_tsv(
        _paths.find_file(folder, FILES[1]), num_test
    )
    languages = tuple(sorted(set(train_langs)))
    unknown = sorted(set(test_langs) - set(languages))
    if unknown:
        raise ValueError(
            f"The langid test set in {folder} holds languages {unknown} that "
            "its training rows do not (read more training rows: "
            f"num_train={num_train!r})."
        )
    index = {lang: i for i, lang in enumerate(languages)}
    return LangIDData(
        np.array(train_words, dtype=str),
        np.array([index[x] for x in train_langs], np.int32),
        np.array(test_words, dtype=str),
        np.array([index[x] for x in test_langs], np.int32),
        languages,
        f"langid words from {folder}: {len(train_words):,} train / "
        f"{len(test_words):,} test, {len(languages)} languages",
    )
