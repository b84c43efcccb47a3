"""Put the features file on disk atomically, so NFD never reads half a file.

NFD skips names starting with ``.`` (v0.15+) and ignores subdirectories. Since
v0.19 it also re-reads on fsnotify events in features.d, but only on the first
event of each 1 s tick and drops the rest: a temporary created in features.d
itself would fire that re-read before the rename (the worker reads the old
file) and hide the rename. So the content goes to a temporary in a hidden
subdirectory of features.d (same filesystem, so the rename stays atomic;
inotify is not recursive, so writing there fires nothing NFD watches), is
flushed, fsynced and made world-readable (the worker runs as 65534), then
renamed over the target: the rename is the only event. Any failure removes the
temporary and leaves the old file as it was, SIGTERM included (a pod being
stopped); the temporaries of a run that could not clean up (SIGKILL, a power
cut) are removed by the next write.
"""

import errno
import fcntl
import os
import re
import signal
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, NamedTuple, Sequence, Tuple

from nfd_hooks.errors import InputError, OutputError, Terminated
from nfd_hooks.features import PART_INFIX

FILE_MODE = 0o644
# One per uid (the root one-shot hook and the 65534 watcher share features.d),
# private to it: nobody else can plant files or links where we write.
_TEMPORARY_DIRECTORY = ".nfd-hooks-tmp.{uid}"
_TEMPORARY_SUFFIX = ".tmp"
# What tempfile.mkstemp puts between prefix and suffix: 8 of [a-z0-9_].
_RANDOM_PART = r"[a-z0-9_]{8}"
# What follows --name in the name of a further file of a split output.
_PART = re.escape(PART_INFIX) + "[0-9a-f]{8}"


class Written(NamedTuple):
    """The main file, and how many files were replaced, created or removed: each
    is an fsnotify event for NFD."""

    target: Path
    events: int


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
    scratch = temporary_directory(directory)[0]
    target = directory / name
    remove_stale_temporaries(scratch, name)
    with _sigterm_raises():
        _replace(directory, scratch, target, content)
    _sync_directory(directory)
    return target


def write_files(directory: Path, name: str, files: Sequence[Tuple[str, bytes]]) -> Written:
    """Replace the files of ``name``: ``(suffix, content)`` pairs, the main file
    (suffix "") first, as ``features.layout`` splits an output over NFD's limit.

    Several files cannot change in one rename, so the order keeps every label
    that is in the old files and in the new ones readable at every moment: the
    further files are written first, then the main file, then the further
    files of an earlier write that are no longer wanted are removed. A worker
    reading in between sees some labels twice, or an old value, never one
    missing. A failure before the main file is replaced removes the files this
    run created and leaves the old ones as they were.
    """
    check_file_name(name)
    scratch = temporary_directory(directory)[0]
    old = part_files(directory, name)
    remove_stale_temporaries(scratch, name)
    (_, main), further = files[0], files[1:]
    wanted = [name + suffix for suffix, _ in further]
    created: List[str] = []
    with _sigterm_raises():
        try:
            for part, (_, content) in zip(wanted, further):
                if part not in old:
                    created.append(part)
                _replace(directory, scratch, directory / part, content)
            _replace(directory, scratch, directory / name, main)
        except BaseException:
            for part in created:
                _unlink(directory / part)
            raise
    stale = [part for part in old if part not in wanted]
    for part in stale:
        try:
            os.unlink(directory / part)
        except FileNotFoundError:
            pass
        except OSError as error:
            raise OutputError(f"cannot remove {directory / part}, left from an earlier write: {error.strerror}") from None
    _sync_directory(directory)
    return Written(directory / name, len(wanted) + 1 + len(stale))


def part_files(directory: Path, name: str) -> List[str]:
    """The further files of ``name`` in ``directory``, sorted: what an output
    split over several files left (directories of that name are not ours)."""
    pattern = re.compile(re.escape(name) + _PART)
    try:
        with os.scandir(directory) as entries:
            return sorted(e.name for e in entries if pattern.fullmatch(e.name) and not e.is_dir(follow_symlinks=False))
    except OSError:
        return []  # the write itself reports an unusable directory


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _replace(directory: Path, scratch: Path, target: Path, content: bytes) -> None:
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=_TEMPORARY_SUFFIX, dir=scratch)
    except OSError as error:
        raise OutputError(_cannot_write(directory, error)) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # in use: remove_stale_temporaries leaves it alone
        with os.fdopen(fd, "wb") as stream:
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
            os.fchmod(stream.fileno(), FILE_MODE)
        os.replace(temporary, target)
    except BaseException as error:
        _unlink(Path(temporary))
        if isinstance(error, OSError):
            raise OutputError(f"cannot write {target}: {error.strerror or error}") from None
        raise


def is_own_temporary(entry: str, name: str) -> bool:
    """Whether ``entry`` is a temporary this writer makes for the file ``name``
    or one of its further files."""
    pattern = re.escape(f".{name}") + f"(?:{_PART})?" + r"\." + _RANDOM_PART + re.escape(_TEMPORARY_SUFFIX)
    return re.fullmatch(pattern, entry) is not None


def remove_stale_temporaries(scratch: Path, name: str) -> None:
    """Remove this writer's temporaries for ``name`` that no live writer holds.

    A writer keeps an exclusive flock on its temporary until the rename; one
    that can be locked was left by a writer that died (SIGKILL, power cut).
    Only names this writer makes are touched.
    """
    try:
        with os.scandir(scratch) as entries:
            candidates = [entry.name for entry in entries if is_own_temporary(entry.name, name)]
    except OSError:
        return  # the write itself reports an unusable directory
    for candidate in candidates:
        path = os.path.join(scratch, candidate)
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


def _cannot_write(directory: Path, error: OSError) -> str:
    """Why nothing can be written into features directory ``directory``, naming it
    (not the hidden scratch directory inside it) and, when refused, the user."""
    who = f" (as uid {os.getuid()})" if error.errno in (errno.EACCES, errno.EPERM) else ""
    return f"cannot write into features directory {directory}: {error.strerror}{who}"


def temporary_directory(directory: Path) -> Tuple[Path, bool]:
    """This uid's hidden scratch directory inside ``directory``, and whether it was just made.

    Making it is one fsnotify event in features.d; ``watch`` spaces its first
    rename from it (see ``watch.SPACING``).
    """
    try:
        if not stat.S_ISDIR(os.stat(directory).st_mode):
            raise OutputError(f"features directory {directory} is not a directory")
    except FileNotFoundError:
        raise OutputError(f"features directory {directory} does not exist") from None
    except OSError as error:  # a parent this user cannot search
        raise OutputError(f"cannot use features directory {directory}: {error.strerror}") from None
    scratch = directory / _TEMPORARY_DIRECTORY.format(uid=os.getuid())
    created = True
    try:
        os.mkdir(scratch)
        os.chmod(scratch, 0o700)  # whatever the umask
    except FileExistsError:
        created = False
    except OSError as error:
        raise OutputError(_cannot_write(directory, error)) from None
    try:
        info = os.lstat(scratch)
    except OSError as error:
        raise OutputError(f"cannot use {scratch}: {error.strerror}") from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise OutputError(f"{scratch} is not a private directory of this user; remove it")
    return scratch, created


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
