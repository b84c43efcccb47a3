"""Read a file from a tree we do not control (sysfs, a capture, a user's fixture).

The hook runs at every pod start: a FIFO or device node planted where an
attribute should be must not hang it, and an oversized file must not load
whole. It also runs privileged, reading bundles that are committed and
replayed in CI: a path inside a tree is resolved beneath the tree's root for
real (``beneath``), so no symlink, however it is chained, reads a file outside
it. Callers decide what a failure means for them (skip, notice, error).
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Callable, List, Literal, Optional, Union

# openat2(2) (Linux 5.6+): the kernel resolves the whole path beneath the
# directory, in one system call. Its number is the same on every architecture.
_SYS_OPENAT2 = 437
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_BENEATH = 0x08
_MAX_LINKS = 40  # the kernel's limit of symlinks followed in one lookup (MAXSYMLINKS)

# With RESOLVE_BENEATH the kernel refuses a lookup through ".." with EAGAIN when
# a rename or mount happened anywhere meanwhile (sysfs links are all "../..."),
# so a busy machine drops devices: retry, then resolve by hand.
_OPENAT2_TRIES = 8
# openat2(dir_fd, path, flags) -> fd, or None when the kernel (or a seccomp filter) has none.
Openat2 = Callable[[int, str, int], Optional[int]]
_openat2: Union[Openat2, Literal[False], None] = None  # loaded on first use; False: unavailable


class NotARegularFile(OSError):
    """The path exists but is a FIFO, device node, socket or directory."""

    def __init__(self) -> None:
        super().__init__(errno.EINVAL, "not a regular file")


class SymlinkRefused(OSError):
    """The path is a symbolic link where only a real file or directory is accepted."""

    def __init__(self) -> None:
        super().__init__(errno.ELOOP, "a symbolic link (not followed)")


class OutsideRoot(OSError):
    """The path, or a symlink on it, leads outside the tree it must stay in."""

    def __init__(self) -> None:
        super().__init__(errno.EXDEV, "leads outside its tree")


def open_path(
    path: str, flags: int, *, follow_symlinks: bool = True, dir_fd: Optional[int] = None, beneath: bool = False
) -> int:
    """``os.open`` that can refuse a final symlink and stay beneath ``dir_fd``.

    ``beneath`` (with ``dir_fd``): every component, symlinks included, must
    resolve inside ``dir_fd``'s directory, else OutsideRoot. ``follow_symlinks``
    False: a final symlink is SymlinkRefused (not the kernel's puzzling
    "Too many levels of symbolic links").
    """
    flags |= os.O_CLOEXEC | (0 if follow_symlinks else os.O_NOFOLLOW)
    try:
        if beneath:
            if dir_fd is None:
                raise ValueError("beneath needs dir_fd")
            return _open_beneath(dir_fd, path, flags)
        return os.open(path, flags, dir_fd=dir_fd)
    except OSError as error:
        if error.errno == errno.ELOOP and not follow_symlinks and _is_symlink(path, dir_fd):
            raise SymlinkRefused() from None
        raise


def read_regular_file(
    path: str, limit: int, *, follow_symlinks: bool = True, dir_fd: Optional[int] = None, beneath: bool = False
) -> bytes:
    """Up to ``limit`` bytes of a regular file.

    Opened non-blocking (so opening a FIFO returns at once) and read only after
    fstat shows a regular file. Raises OSError: FileNotFoundError when absent,
    NotARegularFile for anything else than a regular file, and those of
    ``open_path``.
    """
    fd = open_path(path, os.O_RDONLY | os.O_NONBLOCK, follow_symlinks=follow_symlinks, dir_fd=dir_fd, beneath=beneath)
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


def read_small_attribute(path: str, limit: int, dir_fd: int) -> Optional[bytes]:
    """A sysfs attribute of at most ``limit`` bytes beneath ``dir_fd``, or None.

    For callers to whom any failure means "no such attribute": the file is a
    regular file (never a symlink) resolved beneath the tree; an oversized one
    is refused rather than read truncated.
    """
    try:
        data = read_regular_file(path, limit + 1, follow_symlinks=False, dir_fd=dir_fd, beneath=True)
    except OSError:
        return None
    return data if len(data) <= limit else None


def _is_symlink(path: str, dir_fd: Optional[int]) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(path, dir_fd=dir_fd).st_mode)
    except OSError:
        return False


def _open_beneath(dir_fd: int, path: str, flags: int) -> int:
    global _openat2
    if _openat2 is None:
        _openat2 = _load_openat2()
    if _openat2 is not False:
        for _ in range(_OPENAT2_TRIES):
            try:
                result = _openat2(dir_fd, path, flags)
            except BlockingIOError:  # EAGAIN: a rename anywhere raced a ".." lookup
                continue
            if result is not None:
                return result
            _openat2 = False
            break
    return _walk_beneath(dir_fd, path, flags)


def _load_openat2() -> Union[Openat2, Literal[False]]:
    """A function calling openat2(2) through libc's syscall(); False without ctypes or libc."""
    try:
        import ctypes  # lazy: only trees resolved beneath a root need it
    except ImportError:
        return False

    class OpenHow(ctypes.Structure):
        _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]

    try:
        syscall = ctypes.CDLL(None, use_errno=True).syscall
    except (OSError, AttributeError):
        return False
    syscall.restype = ctypes.c_long

    def openat2(dir_fd: int, path: str, flags: int) -> Optional[int]:
        """The new fd; None when the kernel (or a seccomp filter) has no openat2."""
        how = OpenHow(flags, 0, _RESOLVE_BENEATH | _RESOLVE_NO_MAGICLINKS)
        fd = syscall(
            ctypes.c_long(_SYS_OPENAT2), ctypes.c_long(dir_fd), ctypes.c_char_p(os.fsencode(path)),
            ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)),
        )
        if fd >= 0:
            return int(fd)
        code = ctypes.get_errno()
        if code in (errno.ENOSYS, errno.EPERM):
            return None
        if code == errno.EXDEV:
            raise OutsideRoot()
        raise OSError(code, os.strerror(code), path)

    return openat2


def _walk_beneath(dir_fd: int, path: str, flags: int) -> int:
    """RESOLVE_BENEATH by hand, one component at a time, for kernels without openat2.

    Each component is opened with O_NOFOLLOW relative to its parent; a symlink
    is read and its target walked the same way; ``..`` above the root and
    absolute targets are OutsideRoot.
    """
    if path.startswith("/"):
        raise OutsideRoot()
    pending = [part for part in reversed(path.split("/")) if part not in ("", ".")]
    if not pending:
        return os.open(".", flags, dir_fd=dir_fd)
    stack: List[int] = []  # directories opened below the root, the deepest last
    links = 0
    try:
        while pending:
            part = pending.pop()
            if part == "..":
                if not stack:
                    raise OutsideRoot()
                os.close(stack.pop())
                continue
            parent = stack[-1] if stack else dir_fd
            last = not pending
            try:
                fd = os.open(part, (flags if last else os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC) | os.O_NOFOLLOW, dir_fd=parent)
            except OSError as error:
                if error.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                try:
                    target = os.readlink(part, dir_fd=parent)
                except OSError:
                    raise error from None
                if last and flags & os.O_NOFOLLOW:
                    raise SymlinkRefused() from None
                links += 1
                if links > _MAX_LINKS or target.startswith("/"):
                    raise (OutsideRoot() if target.startswith("/") else error) from None
                pending.extend(p for p in reversed(target.split("/")) if p not in ("", "."))
                continue
            if last:
                return fd
            stack.append(fd)
        # the path ended in ".." or a symlink to a directory: open where the walk stands
        return os.open(".", flags, dir_fd=stack[-1] if stack else dir_fd)
    finally:
        for fd in stack:
            os.close(fd)
