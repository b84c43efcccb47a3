"""Devicetree readers behind one small node interface.

A DTB is parsed whole (it is small and self-contained); a live tree under
``/sys/firmware/devicetree/base`` has thousands of property files, so the live
reader lists directories and opens only the properties asked for.
"""

import os
from typing import Iterator, List, Optional, Protocol, Tuple

from nfd_hooks.safe_read import NotARegularFile, read_regular_file

# The largest property we read. Real compatible/model/status values are tens of
# bytes; a bigger file in a live tree is hostile or torn, and is skipped.
MAX_PROPERTY_SIZE = 64 * 1024


class DtNode(Protocol):
    """A devicetree node: its full name (with unit address), subnodes, properties."""

    @property
    def name(self) -> str: ...

    def children(self) -> List["DtNode"]: ...

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


class FsNode:
    """A node of a live tree: a directory per node, a file per property.

    Symlinks are never followed (no loops), and only regular files are read,
    opened non-blocking so a FIFO planted in the tree cannot hang the hook.
    Unreadable entries are reported through ``notices`` and treated as absent.
    """

    __slots__ = ("_directory", "_name", "_notices")

    def __init__(self, directory: str, name: str, notices: List[str]) -> None:
        self._directory = directory
        self._name = name
        self._notices = notices

    @property
    def name(self) -> str:
        return self._name

    def children(self) -> List["FsNode"]:
        try:
            with os.scandir(self._directory) as entries:
                return [
                    FsNode(entry.path, entry.name, self._notices)
                    for entry in entries
                    if entry.is_dir(follow_symlinks=False)
                ]
        except OSError as error:
            self._notices.append(f"skipped unreadable devicetree node {self._directory}: {error.strerror}")
            return []

    def property(self, name: str) -> Optional[bytes]:
        path = os.path.join(self._directory, name)
        try:
            data = read_regular_file(path, MAX_PROPERTY_SIZE + 1, follow_symlinks=False)
        except (FileNotFoundError, NotARegularFile):
            return None
        except OSError as error:
            self._notices.append(f"skipped unreadable devicetree property {path}: {error.strerror}")
            return None
        if len(data) > MAX_PROPERTY_SIZE:
            self._notices.append(f"skipped devicetree property {path}: over {MAX_PROPERTY_SIZE} bytes")
            return None
        return data


def open_live_tree(directory: str, notices: List[str]) -> FsNode:
    """The root of a tree laid out like ``/proc/device-tree``."""
    return FsNode(directory, "/", notices)
