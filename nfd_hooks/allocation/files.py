"""The driver's small files (CDI specs, the checkpoint): replaced atomically, read with bounds."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


def read_bounded(path: Path, limit: int) -> bytes:
    """The content of the regular file ``path``, if it holds at most ``limit`` bytes.

    OSError when it cannot be opened or read, is a symlink (not followed), or is no
    regular file (a FIFO would block a plain read forever); ValueError when it is larger.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise ValueError(f"over {limit} bytes")
    return b"".join(chunks)


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
