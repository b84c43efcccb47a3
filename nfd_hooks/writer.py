"""Put the features file on disk atomically, so NFD never reads half a file.

NFD skips names starting with ``.`` (v0.15+) and re-reads on fsnotify events
(v0.19+), so the content goes to a dotfile beside the target, is flushed,
fsynced and made world-readable (the worker runs as 65534), then renamed over
the target. Any failure removes the dotfile and leaves the old file as it was.
"""

import os
import tempfile
from pathlib import Path

from nfd_hooks.errors import InputError, OutputError

FILE_MODE = 0o644


def check_file_name(name: str) -> None:
    """A plain file name NFD will read: not hidden, no directory part."""
    if not name or name in (".", "..") or "/" in name or "\0" in name or name.startswith("."):
        raise InputError(f"--name {name!r} must be a plain file name not starting with '.'")


def write_atomically(directory: Path, name: str, content: bytes) -> Path:
    """Replace ``directory/name`` with ``content``; return the target path.

    The directory must exist: creating it would hide a typo behind a file NFD
    never reads.
    """
    check_file_name(name)
    if not directory.exists():
        raise OutputError(f"features directory {directory} does not exist")
    if not directory.is_dir():
        raise OutputError(f"features directory {directory} is not a directory")
    target = directory / name
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    except OSError as error:
        raise OutputError(f"cannot create a file in {directory}: {error.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
            os.fchmod(stream.fileno(), FILE_MODE)
        os.replace(temporary, target)
    except BaseException as error:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        if isinstance(error, OSError):
            raise OutputError(f"cannot write {target}: {error.strerror or error}") from None
        raise
    _sync_directory(directory)
    return target


def _sync_directory(directory: Path) -> None:
    """Make the rename durable; best effort, since the file is already in place."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
