"""The node's devicetree as a blob, for a bundle: the booted blob, or one built from the live tree.

pyfdt writes the blob (only capture needs it, loaded lazily); the live tree is
read here whole, as a blob holds it, and compared with ``/sys/firmware/fdt``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from nfd_hooks.errors import InputError
from nfd_hooks.safe_read import DIRECTORY, FILE, Tree, entries, read_regular_file
from nfd_hooks.sources.devicetree.blob import MAX_BLOB_SIZE, MAX_DEPTH, BlobNode, is_blob_name, looks_like_blob, parse_blob
from nfd_hooks.sources.devicetree.tree import LIVE_TREE, devicetree_directory_problem

FDT = "firmware/fdt"  # the blob the kernel booted with, under the sysfs root


@dataclass
class PlainNode:
    """A devicetree node as plain data: what both the blob and the live tree reduce to."""

    name: str
    properties: Dict[str, bytes] = field(default_factory=dict)
    children: List["PlainNode"] = field(default_factory=list)


def _synthesized_name(node_name: str) -> bytes:
    """The ``name`` property the kernel adds to every live node (root: empty)."""
    return (b"" if node_name == "/" else node_name.split("@", 1)[0].encode()) + b"\0"


def read_live_tree(tree: Tree) -> PlainNode:
    """Every node and property of a ``/proc/device-tree``-shaped directory.

    pyfdt's FdtFsParse would do this, but it lists in directory order (so the
    blob's bytes would change from run to run), opens FIFOs (a hang), follows
    symlinks anywhere and keeps the kernel's synthesized ``name`` properties,
    which a real blob does not have. This walk is sorted, resolves every path
    beneath the tree's root (``safe_read.Tree``), skips symlinks and anything
    but directories and regular files (as the live reader does), drops those
    ``name`` properties and bounds the total size.
    """
    root = PlainNode("/")
    pending: List[Tuple[str, PlainNode, int]] = [("", root, 0)]
    total = 0
    while pending:
        relative, node, depth = pending.pop()
        try:
            directory = tree.open_directory(relative)
            try:
                listed = sorted(entries(directory))
            finally:
                os.close(directory)
        except OSError as error:
            raise InputError(f"{tree.path(relative)}: cannot list devicetree node: {error.strerror}") from None
        for name, kind in listed:
            path = f"{relative}/{name}" if relative else name
            if kind not in (DIRECTORY, FILE):
                continue
            _check_blob_name(tree.path(path), name, depth + (kind == DIRECTORY))
            if kind == DIRECTORY:
                child = PlainNode(name)
                node.children.append(child)
                pending.append((path, child, depth + 1))
                continue
            try:
                value = tree.read(path, MAX_BLOB_SIZE + 1)
            except OSError:
                raise InputError(f"{tree.path(path)}: cannot read devicetree property") from None
            total += len(value)
            if total > MAX_BLOB_SIZE:
                raise InputError(f"{tree.shown}: devicetree over {MAX_BLOB_SIZE} bytes")
            if not (name == "name" and value == _synthesized_name(node.name)):
                node.properties[name] = value
    return root


def _check_blob_name(path: str, name: str, depth: int) -> None:
    """Refuse, before anything is written, a live tree no blob can hold, rather
    than write a bundle replay would refuse: Linux never builds one (it skips
    nodes deeper than FDT_MAX_DEPTH, and names come from a blob's printable ones).
    ``depth`` is 0 for the root's entries: a node at depth 64 is the 65th level."""
    if depth >= MAX_DEPTH:
        raise InputError(f"{path}: devicetree nested deeper than {MAX_DEPTH} levels: a blob cannot hold it")
    if not is_blob_name(os.fsencode(name)):
        raise InputError(f"{path}: devicetree name {name!r} is not printable ASCII: a blob cannot hold it")


def _from_blob_node(blob_root: BlobNode) -> PlainNode:
    """The parsed blob as plain data, to compare with the live tree."""
    root = PlainNode("/")
    pending = [(blob_root, root)]
    while pending:
        source, node = pending.pop()
        node.properties = {
            name: value
            for name, value in ((n, source.property(n)) for n in source.property_names())
            if value is not None and not (name == "name" and value == _synthesized_name(node.name))
        }
        for child in source.children():
            plain = PlainNode(child.name)
            node.children.append(plain)
            pending.append((child, plain))
    return root


def _canonical(node: PlainNode) -> Any:
    """Order-free form of a tree, to tell whether a blob and a live tree agree."""
    return (
        node.name,
        tuple(sorted(node.properties.items())),
        tuple(sorted((_canonical(child) for child in node.children), key=lambda c: c[0])),
    )


def build_blob(root: PlainNode) -> bytes:
    """A DTB (FDT version 17) of ``root``, through pyfdt's ``to_dtb``.

    pyfdt's blob writer is sound on Python 3 (its ``to_raw`` is not, but
    ``to_dtb`` does not use it): it chooses string, word or byte properties by
    the value and writes the same bytes back in each case.
    """
    from pyfdt.pyfdt import Fdt, FdtNode, FdtProperty  # lazy: only capture builds blobs

    def convert(plain: PlainNode) -> Any:
        node = FdtNode(plain.name)
        for name, value in sorted(plain.properties.items()):
            node.append(FdtProperty.new_raw_property(name, value))
        for child in sorted(plain.children, key=lambda c: c.name):
            sub = convert(child)
            sub.set_parent_node(node)
            node.append(sub)
        return node

    try:
        fdt = Fdt()
        fdt.add_rootnode(convert(root))
        blob: bytes = fdt.to_dtb()
        return blob
    except RecursionError:
        raise InputError("devicetree too deep to capture") from None
    except Exception as error:  # pyfdt raises bare Exception for names it cannot store
        raise InputError(f"cannot build a devicetree blob: {error}") from None


def capture_devicetree(sysfs: Path, devicetree: Optional[Path], notices: List[str]) -> Tuple[Optional[bytes], Optional[str]]:
    """The node's devicetree as blob bytes, and where it came from (None: no devicetree).

    ``<sysfs>/firmware/fdt`` is the blob the kernel booted with; it is used when
    readable and equal to the live tree (runtime overlays would make them
    differ, and a live run reads the live tree). Both are resolved beneath
    ``sysfs`` for real, as the live reader resolves them: a symlink there
    leading out of it is not followed, and the bundle has no devicetree.
    """
    if devicetree is not None:
        if devicetree.is_dir():
            try:
                named = Tree.open(str(devicetree))
            except OSError as error:
                raise InputError(f"{devicetree}: cannot read devicetree: {error.strerror}") from None
            with named:
                problem = devicetree_directory_problem(named)
                if problem:  # before a walk of it: /tmp is no tree
                    raise InputError(f"{devicetree}: {problem}")
                return build_blob(read_live_tree(named)), str(devicetree)
        data = read_regular(devicetree, MAX_BLOB_SIZE + 1)
        if data is None:
            raise InputError(f"{devicetree}: cannot read devicetree blob")
        return _checked_blob(data, devicetree), str(devicetree)
    try:
        root = Tree.open(str(sysfs))
    except OSError as error:
        notices.append(f"no devicetree at {sysfs / LIVE_TREE} ({error.strerror}): the bundle has none")
        return None, None
    with root:
        return _capture_node(root, notices)


def _capture_node(sysfs: Tree, notices: List[str]) -> Tuple[Optional[bytes], Optional[str]]:
    """``capture_devicetree`` for the node's own devicetree, under its sysfs root.

    Without a live tree to read there is no devicetree in the bundle, even if
    ``firmware/fdt`` is there: a scan of the node reads the live tree only, and
    replay must read what it read.
    """
    try:
        live = sysfs.subtree(LIVE_TREE)
    except OSError as error:
        why = "" if isinstance(error, FileNotFoundError) else f" ({error.strerror})"
        notices.append(f"no devicetree at {sysfs.path(LIVE_TREE)}{why}: the bundle has none")
        return None, None
    with live:
        if devicetree_directory_problem(live):  # torn or emptied: no tree to read, as for the scan
            notices.append(f"no devicetree at {live.shown} (no 'name' or 'compatible' at its top): the bundle has none")
            return None, None
        tree = read_live_tree(live)
    fdt = sysfs.path(FDT)
    try:
        blob = _checked_blob(sysfs.read(FDT, MAX_BLOB_SIZE + 1), Path(fdt))
    except FileNotFoundError:
        blob = None
    except OSError as error:
        notices.append(f"{fdt} is not readable ({error.strerror}): built the blob from {live.shown}")
        blob = None
    if blob is not None:
        if _canonical(_from_blob_node(parse_blob(blob, fdt))) == _canonical(tree):
            return blob, fdt
        notices.append(f"{fdt} differs from {live.shown} (runtime overlays?): captured the live tree")
    return build_blob(tree), live.shown


def _checked_blob(data: bytes, path: Path) -> bytes:
    """``data``, read from ``path``, if it is a sane blob; InputError otherwise."""
    if not looks_like_blob(data):
        raise InputError(f"{path}: not a devicetree blob")
    if len(data) > MAX_BLOB_SIZE:
        raise InputError(f"{path}: over {MAX_BLOB_SIZE} bytes, too large for a devicetree blob")
    parse_blob(data, str(path))  # refuse a corrupt blob now, not at replay
    return data


def read_regular(path: Path, limit: int) -> Optional[bytes]:
    """Up to ``limit`` bytes of a regular file (never a FIFO or a symlink); None if it cannot be read."""
    try:
        return read_regular_file(str(path), limit, follow_symlinks=False)
    except OSError:
        return None
