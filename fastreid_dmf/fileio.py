"""Crash-safe file writing: the one writer for every file the project publishes (caches, checkpoints, exports,
attribute and caption files, converter outputs), and clean-up of what killed writers leave."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import BinaryIO

__all__ = ["atomic_write", "remove_stale_temporaries"]


def atomic_write(path: str, write: Callable[[BinaryIO], None], verify: Callable[[str], None] | None = None) -> None:
    """Write ``path`` all at once: ``write`` fills a hidden temporary file beside it, which is fsynced and renamed.

    Readers therefore see the old file or the complete new one, never a partial
    one, also after a kill or power cut (the folder entry is fsynced after the
    rename where the platform allows). The temporary file (``.<name>.<pid>.tmp``) is removed on failure; no
    other file is touched.

    Args:
        path: destination; its folder must exist.
        write: called once with the open binary temporary file.
        verify: called with the temporary file's path once it is complete, before the rename; it raises
            to stop the write (e.g. a read-back check), and ``path`` is then untouched.

    Raises:
        OSError: the temporary file cannot be written or renamed (``path`` is unchanged).
        Exception: whatever ``write`` or ``verify`` raise (``path`` is unchanged).
    """
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        if verify is not None:
            verify(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)  # only our own temporary file, never a user file
    _fsync_folder(os.path.dirname(os.path.abspath(path)))


def _fsync_folder(folder: str) -> None:
    """Flush a folder's entries so a rename in it is durable (skipped where folders cannot be opened)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.tmp$")


def remove_stale_temporaries(folder: str, suffixes: tuple[str, ...] = (".pth",)) -> list[str]:
    """Delete :func:`atomic_write` temporaries left in ``folder`` by processes that were killed.

    Only hidden files named ``.<name>.<pid>.tmp`` whose ``<name>`` ends with one of ``suffixes`` (or is
    ``last_checkpoint``) and whose ``<pid>`` is not a running process on this machine are removed; no
    other file is touched.

    Returns:
        The removed paths.
    """
    removed = []
    for entry in os.listdir(folder):
        match = _TEMPORARY.match(entry)
        if not match or not (match["name"].endswith(suffixes) or match["name"] == "last_checkpoint"):
            continue
        pid = int(match["pid"])
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
            continue  # its writer is alive
        except ProcessLookupError:
            pass
        except PermissionError:
            continue  # alive, another user's
        path = os.path.join(folder, entry)
        try:
            os.remove(path)
            removed.append(path)
        except FileNotFoundError:
            pass
    return removed
