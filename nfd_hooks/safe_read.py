"""Read a file from a tree we do not control (sysfs, a capture, a user's fixture).

The hook runs at every pod start: a FIFO or device node planted where an
attribute should be must not hang it, and an oversized file must not load
whole. Callers decide what a failure means for them (skip, notice, error).
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Optional


class NotARegularFile(OSError):
    """The path exists but is a FIFO, device node, socket or directory."""

    def __init__(self) -> None:
        super().__init__(errno.EINVAL, "not a regular file")


def read_regular_file(path: str, limit: int, *, follow_symlinks: bool = True, dir_fd: Optional[int] = None) -> bytes:
    """Up to ``limit`` bytes of a regular file.

    Opened non-blocking (so opening a FIFO returns at once) and read only after
    fstat shows a regular file. Raises OSError: FileNotFoundError when absent,
    NotARegularFile for anything else than a regular file.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow_symlinks else os.O_NOFOLLOW)
    fd = os.open(path, flags, dir_fd=dir_fd)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotARegularFile()
        chunks = []
        remaining = limit
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
