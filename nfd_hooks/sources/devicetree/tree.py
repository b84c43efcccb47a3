"""Devicetree readers behind one small node interface.

A DTB is parsed whole (it is small and self-contained); a live tree under
``/sys/firmware/devicetree/base`` has thousands of property files, so the live
reader lists directories and opens only the properties asked for.
"""

from __future__ import annotations

import os
import stat
from typing import Iterator, List, Optional, Protocol, Sequence, Tuple

from nfd_hooks.safe_read import DIRECTORY, Tree, entries, read_regular_file

# The largest property the source uses, whatever the reader: a live tree's
# file or a blob's value. Real compatible/model/status values are tens of
# bytes; a bigger one is hostile or torn, and is skipped with a notice
# (``source.property``), so that a live node and its captured blob agree.
MAX_PROPERTY_SIZE = 64 * 1024
# Where a node shows its live tree, under its sysfs root.
LIVE_TREE = "firmware/devicetree/base"


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

    Every path is resolved beneath the tree's root (``safe_read.Tree``): no
    symlink is followed out of it, a node or property that is a symlink is
    skipped, and only regular files are read, opened non-blocking so a FIFO
    planted in the tree cannot hang the hook. Unreadable entries are reported
    through ``notices`` and treated as absent. ``property`` gives at most
    ``MAX_PROPERTY_SIZE + 1`` bytes: the source skips what is larger, from a
    blob as from here.

    Listing a directory is most of the cost of a walk, and most nodes have no
    subnodes: on a filesystem that counts subdirectories in the link count
    (``LINK_COUNTING_FILESYSTEMS``), a node whose directory has a link count of
    2, on the tree's own device, is known to be a leaf without listing it.
    """

    __slots__ = ("_tree", "_relative", "_name", "_notices", "_leaf_device")

    def __init__(self, tree: Tree, relative: str, name: str, notices: List[str], leaf_device: Optional[int] = None) -> None:
        self._tree = tree
        self._relative = relative  # "" for the root
        self._name = name
        self._notices = notices
        self._leaf_device = leaf_device  # the tree's st_dev when leaves may be told by link count

    @property
    def name(self) -> str:
        return self._name

    def children(self) -> List["FsNode"]:
        try:
            directory = self._tree.open_directory(self._relative)
        except OSError as error:
            self._notices.append(f"skipped unreadable devicetree node {self._tree.path(self._relative)}: {error.strerror}")
            return []
        try:
            if self._is_leaf(os.fstat(directory)):
                return []
            listed = entries(directory)
        except OSError as error:
            self._notices.append(f"skipped unreadable devicetree node {self._tree.path(self._relative)}: {error.strerror}")
            return []
        finally:
            os.close(directory)
        prefix = f"{self._relative}/" if self._relative else ""
        return [
            FsNode(self._tree, prefix + name, name, self._notices, self._leaf_device)
            for name, kind in listed
            if kind == DIRECTORY
        ]

    def _is_leaf(self, status: os.stat_result) -> bool:
        """Whether the link count shows no subnodes (False when unknown: then list it)."""
        return self._leaf_device is not None and status.st_nlink == 2 and status.st_dev == self._leaf_device

    def property(self, name: str) -> Optional[bytes]:
        relative = f"{self._relative}/{name}" if self._relative else name
        try:
            return self._tree.read(relative, MAX_PROPERTY_SIZE + 1)
        except FileNotFoundError:
            return None
        except OSError as error:  # a FIFO, device node or directory; a symlink (live trees have none); EIO, EACCES: say which
            self._notices.append(f"skipped devicetree property {self._tree.path(relative)}: {error.strerror}")
            return None


# What the top of every live tree holds: Linux gives each node a ``name`` file
# (the root's is empty) and a board's root its ``compatible``. Looked up, not
# listed: a directory that is not a tree (/tmp, a bundle) is told by two lstat
# calls, never by walking it.
ROOT_MARKERS = ("name", "compatible")


def devicetree_directory_problem(tree: Tree) -> Optional[str]:
    """Why ``tree`` is not laid out as a devicetree (None when it is): it needs a
    regular file ``name`` or ``compatible`` at its top, as every live tree's root
    has. Says where the tree is when ``tree`` holds one below, looked up beneath
    it (``Tree.subtree``): no symlink there is followed out of it."""
    if _has_top(tree):
        return None
    problem = "not a devicetree directory (no 'name' or 'compatible' file at its top, as a live tree has)"
    if _has_top_below(tree, LIVE_TREE):
        return f"{problem}; it is a sysfs root: did you mean --sysfs {tree.shown}?"
    if _has_top_below(tree, "base"):
        return f"{problem}: did you mean {tree.path('base')}?"
    return problem


def _has_top(tree: Tree) -> bool:
    return any(_is_regular(tree.fd, marker) for marker in ROOT_MARKERS)


def _has_top_below(tree: Tree, relative: str) -> bool:
    try:
        below = tree.subtree(relative)
    except OSError:
        return False
    with below:
        return _has_top(below)


def _is_regular(directory: int, name: str) -> bool:
    try:
        return stat.S_ISREG(os.lstat(name, dir_fd=directory).st_mode)
    except OSError:
        return False


def open_live_tree(tree: Tree, notices: List[str]) -> FsNode:
    """The root node of ``tree``, laid out like ``/proc/device-tree``."""
    try:
        device = os.fstat(tree.fd).st_dev
    except OSError:
        return FsNode(tree, "", "/", notices)  # listing it will report why
    counts = filesystem_type(device) in LINK_COUNTING_FILESYSTEMS
    return FsNode(tree, "", "/", notices, device if counts else None)


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
