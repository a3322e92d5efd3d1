"""Where the dataset loaders look for their files.

A dataset folder is looked for, in this order, in

1. the ``path`` argument of the loader;
2. the folder named by the dataset's environment variable (such as
   ``KERAS_TT_MNIST_DIR``);
3. the user data folder ``~/.keras_tt/data/NAME`` (``$KERAS_TT_HOME/data``
   when ``KERAS_TT_HOME`` is set), which an installed copy can always find;
4. last, ``shared/data/NAME`` in the current directory, its parent or its
   grandparent (a source checkout with its data beside it, run from the
   checkout or one of its folders); never further up, where an unrelated
   ``shared`` folder could be picked up.

A folder given explicitly (1 or 2) that does not hold the expected files is
an error: it is never skipped silently.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

HOME_ENV_VAR = "KERAS_TT_HOME"


class DataNotFoundError(FileNotFoundError):
    """A dataset's files are not where they were looked for.

    The message says where keras_tt looked, which files it expects and how
    to point it at them.
    """


def user_data_dir(name: str) -> Path:
    """``~/.keras_tt/data/NAME``, or ``$KERAS_TT_HOME/data/NAME``."""
    home = os.environ.get(HOME_ENV_VAR) or os.path.join("~", ".keras_tt")
    return Path(home).expanduser() / "data" / name


# How far up from the working directory a checkout's shared/data is looked
# for: the checkout itself (its parent holds shared/) and one folder in it.
_CHECKOUT_LEVELS = 2


def checkout_data_dir(name: str, start=None) -> Path | None:
    """``shared/data/NAME`` in ``start`` (default: the working directory),
    its parent or its grandparent, or ``None``."""
    folder = Path(start or os.getcwd()).resolve()
    for candidate in (folder, *folder.parents[:_CHECKOUT_LEVELS]):
        data = candidate / "shared" / "data" / name
        if data.is_dir():
            return data
    return None


def find_file(folder: Path, name: str) -> Path | None:
    """``folder/name`` or ``folder/name.gz``, whichever exists."""
    for candidate in (name, name + ".gz"):
        if (folder / candidate).is_file():
            return folder / candidate
    return None


def _has_all(folder: Path, required: Sequence[str]) -> bool:
    return folder.is_dir() and all(find_file(folder, f) for f in required)


def _expected(required: Sequence[str]) -> str:
    return ", ".join(f"{name}[.gz]" for name in required)


def find_data_dir(
    name: str,
    env_var: str,
    required: Sequence[str],
    path=None,
    title: str | None = None,
) -> Path | None:
    """The folder holding ``required`` files of dataset ``name``, or ``None``.

    Raises:
        DataNotFoundError: ``path``, or the folder named by ``env_var``, does
            not hold the required files.
    """
    title = title or name
    if path is not None:
        folder = Path(path).expanduser()
        if not _has_all(folder, required):
            raise DataNotFoundError(
                f"Received an invalid value for `path`, expected a folder "
                f"with the {title} files {_expected(required)}. "
                f"Received: path={os.fspath(path)!r}"
                + ("" if folder.is_dir() else " (no such folder)")
            )
        return folder
    from_env = os.environ.get(env_var)
    if from_env:
        folder = Path(from_env).expanduser()
        if not _has_all(folder, required):
            raise DataNotFoundError(
                f"The environment variable {env_var}={from_env!r} names "
                + ("a folder without" if folder.is_dir() else "no folder with")
                + f" the {title} files {_expected(required)}. Point it at the "
                f"folder that holds them, or unset it."
            )
        return folder
    for folder in (user_data_dir(name), checkout_data_dir(name)):
        if folder is not None and _has_all(folder, required):
            return folder
    return None


def not_found_message(
    name: str, env_var: str, required: Sequence[str], title: str | None = None
) -> str:
    """One actionable sentence: what is missing and the ways to supply it."""
    title = title or name
    return (
        f"{title} files not found: expected {_expected(required)} in the "
        f"folder given by `path=` (`--data PATH` in the examples), in "
        f"${env_var}, in {user_data_dir(name)}, or in shared/data/{name} "
        "in the working directory, its parent or its grandparent."
    )
