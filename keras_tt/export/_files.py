"""Where the exported file goes: path checks and an atomic write."""

from __future__ import annotations

import os
import tempfile


def check_output_path(path, argument="path", inputs=()) -> tuple[str, str]:
    """``(path, folder)`` for a file to write; ``path`` must be usable.

    It must name a file (not ``""``, not a folder) in an existing folder,
    and must not be the same file as any of ``inputs`` (paths that the
    caller reads), whether by name, through a symbolic link or a hard
    link.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"Received an invalid value for `{argument}`, expected a file "
            f"path (str or os.PathLike). Received: {argument}={path!r}"
        )
    path = os.fspath(path)
    if not isinstance(path, str):
        path = os.fsdecode(path)
    if not path or path.endswith(os.sep) or os.path.isdir(path):
        raise ValueError(
            f"Received an invalid value for `{argument}`, expected the path "
            f"of a file to write, not an empty string or a folder. "
            f"Received: {argument}={path!r}"
        )
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(
            f"Received an invalid value for `{argument}`, expected a file in "
            f"an existing folder. Received: {argument}={path!r}"
        )
    for name, source in inputs:
        if source is not None and same_file(path, source):
            raise ValueError(
                f"Received an invalid value for `{argument}`, expected a "
                f"file other than `{name}`, which would be overwritten. "
                f"Received: {argument}={path!r} and {name}={source!r}"
            )
    return path, folder


def check_input_file(path, argument, suffixes) -> str:
    """``path`` as a str; it must name an existing file."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"Received an invalid value for `{argument}`, expected a file "
            f"path (str or os.PathLike). Received: {argument}={path!r}"
        )
    path = os.fsdecode(os.fspath(path))
    if not os.path.isfile(path):
        what = "a folder" if os.path.isdir(path) else "no such file"
        raise ValueError(
            f"Received an invalid value for `{argument}`, expected an "
            f"existing {' or '.join(suffixes)} file. Received: "
            f"{argument}={path!r} ({what})"
        )
    return path


def same_file(a, b) -> bool:
    """Whether ``a`` and ``b`` name the same file (links resolved)."""
    a, b = os.fspath(a), os.fspath(b)
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def write_temporary(content: bytes, folder: str) -> str:
    """Write ``content`` under a new temporary name in ``folder``."""
    handle, temp_path = tempfile.mkstemp(suffix=".tflite.tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(content)
    except BaseException:
        remove_quietly(temp_path)
        raise
    return temp_path


def publish(temp_path: str, path: str) -> None:
    """Move ``temp_path`` to ``path`` with a new file's usual permissions."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temp_path, 0o666 & ~umask)
    os.replace(temp_path, path)


def remove_quietly(path: str) -> None:
    if os.path.exists(path):
        os.remove(path)
