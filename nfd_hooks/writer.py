"""Put the features file on disk atomically, so NFD never reads half a file.

NFD skips names starting with ``.`` (v0.15+) and re-reads on fsnotify events
(v0.19+), so the content goes to a dotfile beside the target, is flushed,
fsynced and made world-readable (the worker runs as 65534), then renamed over
the target. Any failure removes the dotfile and leaves the old file as it was,
SIGTERM included (a pod being stopped); the temporaries of a run that could
not clean up (SIGKILL, a power cut) are removed by the next write.
"""

import fcntl
import os
import re
import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from nfd_hooks.errors import InputError, OutputError, Terminated

FILE_MODE = 0o644
_TEMPORARY_SUFFIX = ".tmp"
# What tempfile.mkstemp puts between prefix and suffix: 8 of [a-z0-9_].
_RANDOM_PART = r"[a-z0-9_]{8}"


def check_file_name(name: str) -> None:
    """A plain file name NFD will read: not hidden, no directory part, no
    control characters (they forge lines in logs and listings)."""
    if not name or "/" in name or name.startswith(".") or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise InputError(f"--name {name!r} must be a plain file name, not starting with '.', without control characters")


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
    remove_stale_temporaries(directory, name)
    with _sigterm_raises():
        _replace(directory, target, content)
    _sync_directory(directory)
    return target


def _replace(directory: Path, target: Path, content: bytes) -> None:
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=_TEMPORARY_SUFFIX, dir=directory)
    except OSError as error:
        raise OutputError(f"cannot create a file in {directory}: {error.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # in use: remove_stale_temporaries leaves it alone
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


def is_own_temporary(entry: str, name: str) -> bool:
    """Whether ``entry`` is a temporary this writer makes for the file ``name``."""
    return re.fullmatch(re.escape(f".{name}.") + _RANDOM_PART + re.escape(_TEMPORARY_SUFFIX), entry) is not None


def remove_stale_temporaries(directory: Path, name: str) -> None:
    """Remove this writer's temporaries for ``name`` that no live writer holds.

    A writer keeps an exclusive flock on its temporary until the rename; one
    that can be locked was left by a writer that died (SIGKILL, power cut).
    Only names this writer makes are touched; nothing else in the directory.
    """
    try:
        with os.scandir(directory) as entries:
            candidates = [entry.name for entry in entries if is_own_temporary(entry.name, name)]
    except OSError:
        return  # the write itself reports an unusable directory
    for candidate in candidates:
        path = os.path.join(directory, candidate)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.unlink(path)
        except OSError:
            pass  # held by a live writer, or gone already
        finally:
            os.close(fd)


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """While the temporary exists, SIGTERM raises Terminated so that it is
    removed; only where SIGTERM has its default action (``watch`` handles it
    itself, by finishing the write and stopping)."""
    try:
        installed = signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
        if installed:
            signal.signal(signal.SIGTERM, _terminated)
    except ValueError:  # not the main thread: signals cannot be handled here
        installed = False
    try:
        yield
    finally:
        if installed:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _terminated(*_: object) -> None:
    raise Terminated("terminated by SIGTERM before the features file was replaced; the previous one is unchanged")


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
