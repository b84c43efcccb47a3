"""Atomic replacement of the driver's small files (CDI specs, the checkpoint)."""

from __future__ import annotations

import os
from pathlib import Path


def replace(path: Path, content: bytes, mode: int = 0o644) -> None:
    """Write ``content`` to a temporary file beside ``path``, sync it, rename it over
    ``path`` and sync the directory: a reader, or the driver after a crash or a power
    cut, sees the old file or the new one, never a part. The temporary name starts
    with a dot and ends in ``.tmp``: the runtime's CDI cache reads only ``*.json``
    and ``*.yaml``."""
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, mode)
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
