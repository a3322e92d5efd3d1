"""Where the exported file goes: path checks and an atomic write."""

from __future__ import annotations

import os
import tempfile


def check_output_folder(path: str) -> str:
    """The folder that will hold ``path``; it must exist."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(
            "Received an invalid value for `path`, expected a file in an "
            f"existing folder. Received: path={path!r}"
        )
    return folder


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
