"""Devicetree readers behind one small node interface.

A DTB is parsed whole (it is small and self-contained); a live tree under
``/sys/firmware/devicetree/base`` has thousands of property files, so the live
reader lists directories and opens only the properties asked for.
"""

from __future__ import annotations

import os
import stat
from typing import Iterator, List, Optional, Protocol, Sequence, Tuple

from nfd_hooks.safe_read import read_regular_file

# The largest property we read. Real compatible/model/status values are tens of
# bytes; a bigger file in a live tree is hostile or torn, and is skipped.
MAX_PROPERTY_SIZE = 64 * 1024


class DtNode(Protocol):
    """A devicetree node: its full name (with unit address), subnodes, properties."""

    @property
    def name(self) -> str: ...

    def children(self) -> Sequence["DtNode"]: ...

    def property(self, name: str) -> Optional[bytes]: ...


def walk(root: DtNode) -> Iterator[Tuple[str, DtNode]]:
    """Yield ``(path, node)`` for every node, root first, children in name order.

    Iterative, so a deep tree cannot exhaust the recursion limit.
    """
    stack: List[Tuple[str, DtNode]] = [("/", root)]
    while stack:
        path, node = stack.pop()
        yield path, node
        base = path.rstrip("/")
        for child in sorted(node.children(), key=lambda c: c.name, reverse=True):
            stack.append((f"{base}/{child.name}", child))


# Filesystems whose directories have st_nlink = 2 + their subdirectories, so that
# a directory with a link count of 2 has none and need not be listed: kernfs (a
# live tree under /sys, checked over every directory of a live /sys), tmpfs and
# the usual local filesystems for captures and fixtures. GNU find (gnulib's fts)
# relies on the same property everywhere but where it is known to break (NFS,
# CIFS, AFS, procfs); this allowlist is narrower. Other filesystems report 1
# (btrfs, overlayfs's merged directories) or what a server or daemon says (NFS,
# FUSE): there every directory is listed.
LINK_COUNTING_FILESYSTEMS = frozenset({"sysfs", "tmpfs", "ext2", "ext3", "ext4", "xfs"})
MOUNTINFO = "/proc/self/mountinfo"
_MAX_MOUNTINFO = 4 << 20


class FsNode:
    """A node of a live tree: a directory per node, a file per property.

    Symlinks are never followed (no loops), and only regular files are read,
    opened non-blocking so a FIFO planted in the tree cannot hang the hook.
    Unreadable entries are reported through ``notices`` and treated as absent.

    Listing a directory is most of the cost of a walk, and most nodes have no
    subnodes: on a filesystem that counts subdirectories in the link count
    (``LINK_COUNTING_FILESYSTEMS``), a node whose directory has a link count of
    2, on the tree's own device, is known to be a leaf without listing it.
    """

    __slots__ = ("_directory", "_name", "_notices", "_leaf_device")

    def __init__(self, directory: str, name: str, notices: List[str], leaf_device: Optional[int] = None) -> None:
        self._directory = directory
        self._name = name
        self._notices = notices
        self._leaf_device = leaf_device  # the tree's st_dev when leaves may be told by link count

    @property
    def name(self) -> str:
        return self._name

    def children(self) -> List["FsNode"]:
        if self._is_leaf():
            return []
        try:
            with os.scandir(self._directory) as entries:
                return [
                    FsNode(entry.path, entry.name, self._notices, self._leaf_device)
                    for entry in entries
                    if entry.is_dir(follow_symlinks=False)
                ]
        except OSError as error:
            self._notices.append(f"skipped unreadable devicetree node {self._directory}: {error.strerror}")
            return []

    def _is_leaf(self) -> bool:
        """Whether the link count shows no subnodes (False when unknown: then list it)."""
        if self._leaf_device is None:
            return False
        try:
            status = os.stat(self._directory, follow_symlinks=False)
        except OSError:
            return False  # listing it will report why
        return status.st_nlink == 2 and status.st_dev == self._leaf_device

    def property(self, name: str) -> Optional[bytes]:
        path = os.path.join(self._directory, name)
        try:
            data = read_regular_file(path, MAX_PROPERTY_SIZE + 1, follow_symlinks=False)
        except FileNotFoundError:
            return None
        except OSError as error:  # a FIFO, device node or directory; a symlink (live trees have none); EIO, EACCES: say which
            self._notices.append(f"skipped devicetree property {path}: {error.strerror}")
            return None
        if len(data) > MAX_PROPERTY_SIZE:
            self._notices.append(f"skipped devicetree property {path}: over {MAX_PROPERTY_SIZE} bytes")
            return None
        return data


# What the top of every live tree holds: Linux gives each node a ``name`` file
# (the root's is empty) and a board's root its ``compatible``. Looked up, not
# listed: a directory that is not a tree (/tmp, a bundle) is told by two lstat
# calls, never by walking it.
ROOT_MARKERS = ("name", "compatible")


def devicetree_directory_problem(directory: str) -> Optional[str]:
    """Why ``directory`` is not laid out as a devicetree (None when it is): it
    needs a regular file ``name`` or ``compatible`` at its top, as every live
    tree's root has. Says where the tree is when ``directory`` holds one below."""
    if _has_top(directory):
        return None
    problem = "not a devicetree directory (no 'name' or 'compatible' file at its top, as a live tree has)"
    if _has_top(os.path.join(directory, "firmware", "devicetree", "base")):
        return f"{problem}; it is a sysfs root: did you mean --sysfs {directory}?"
    if _has_top(os.path.join(directory, "base")):
        return f"{problem}: did you mean {os.path.join(directory, 'base')}?"
    return problem


def _has_top(directory: str) -> bool:
    return any(_is_regular(os.path.join(directory, marker)) for marker in ROOT_MARKERS)


def _is_regular(path: str) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def open_live_tree(directory: str, notices: List[str]) -> FsNode:
    """The root of a tree laid out like ``/proc/device-tree``."""
    try:
        device = os.stat(directory).st_dev
    except OSError:
        return FsNode(directory, "/", notices)  # listing it will report why
    counts = filesystem_type(device) in LINK_COUNTING_FILESYSTEMS
    return FsNode(directory, "/", notices, device if counts else None)


def filesystem_type(device: int, mountinfo: str = MOUNTINFO) -> Optional[str]:
    """The type of the filesystem mounted from ``device`` (an st_dev), or None if unknown.

    Looked up by device number in mountinfo, so bind mounts and a sysfs
    mounted at /host-sys in a container are found too.
    """
    try:
        text = read_regular_file(mountinfo, _MAX_MOUNTINFO).decode("utf-8", "replace")
    except OSError:
        return None
    wanted = f"{os.major(device)}:{os.minor(device)}"
    for line in text.splitlines():
        # ID PARENT MAJOR:MINOR ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
        fields = line.split(" ")
        if len(fields) > 2 and fields[2] == wanted:
            _, separator, rest = line.partition(" - ")
            return rest.split(" ", 1)[0] if separator else None
    return None
