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
from nfd_hooks.safe_read import read_regular_file
from nfd_hooks.sources.devicetree.blob import MAX_BLOB_SIZE, MAX_DEPTH, BlobNode, is_blob_name, looks_like_blob, parse_blob
from nfd_hooks.sources.devicetree.tree import devicetree_directory_problem


@dataclass
class PlainNode:
    """A devicetree node as plain data: what both the blob and the live tree reduce to."""

    name: str
    properties: Dict[str, bytes] = field(default_factory=dict)
    children: List["PlainNode"] = field(default_factory=list)


def _synthesized_name(node_name: str) -> bytes:
    """The ``name`` property the kernel adds to every live node (root: empty)."""
    return (b"" if node_name == "/" else node_name.split("@", 1)[0].encode()) + b"\0"


def read_live_tree(directory: Path) -> PlainNode:
    """Every node and property of a ``/proc/device-tree``-shaped directory.

    pyfdt's FdtFsParse would do this, but it lists in directory order (so the
    blob's bytes would change from run to run), opens FIFOs (a hang), follows
    nothing safely and keeps the kernel's synthesized ``name`` properties,
    which a real blob does not have. This walk is sorted, reads regular files
    only, drops those ``name`` properties and bounds the total size.
    """
    root = PlainNode("/")
    pending: List[Tuple[Path, PlainNode, int]] = [(directory, root, 0)]
    total = 0
    while pending:
        path, node, depth = pending.pop()
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError as error:
            raise InputError(f"{path}: cannot list devicetree node: {error.strerror}") from None
        for entry in entries:
            if entry.is_symlink():
                continue
            if entry.is_dir() or entry.is_file():
                _check_blob_name(entry.path, entry.name, depth + entry.is_dir())
            if entry.is_dir():
                child = PlainNode(entry.name)
                node.children.append(child)
                pending.append((Path(entry.path), child, depth + 1))
            elif entry.is_file():
                value = read_regular(Path(entry.path), MAX_BLOB_SIZE)
                if value is None:
                    raise InputError(f"{entry.path}: cannot read devicetree property")
                total += len(value)
                if total > MAX_BLOB_SIZE:
                    raise InputError(f"{directory}: devicetree over {MAX_BLOB_SIZE} bytes")
                if not (entry.name == "name" and value == _synthesized_name(node.name)):
                    node.properties[entry.name] = value
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
    differ, and a live run reads the live tree).
    """
    if devicetree is not None:
        if devicetree.is_dir():
            problem = devicetree_directory_problem(str(devicetree))
            if problem:  # before a walk of it: /tmp is no tree
                raise InputError(f"{devicetree}: {problem}")
            return build_blob(read_live_tree(devicetree)), str(devicetree)
        return _checked_blob(devicetree, required=True), str(devicetree)
    live = sysfs / "firmware" / "devicetree" / "base"
    fdt = sysfs / "firmware" / "fdt"
    blob = _checked_blob(fdt, required=False) if fdt.exists() else None
    if blob is None and fdt.exists():
        notices.append(f"{fdt} is not readable (root only): built the blob from {live}")
    if not live.is_dir() or devicetree_directory_problem(str(live)):
        if blob is None:
            notices.append(f"no devicetree at {live}: the bundle has none")
        return blob, (str(fdt) if blob is not None else None)
    tree = read_live_tree(live)
    if blob is not None:
        if _canonical(_from_blob_node(parse_blob(blob, str(fdt)))) == _canonical(tree):
            return blob, str(fdt)
        notices.append(f"{fdt} differs from {live} (runtime overlays?): captured the live tree")
    return build_blob(tree), str(live)


def _checked_blob(path: Path, required: bool) -> Optional[bytes]:
    """A sane blob's bytes; None if unreadable and not ``required``."""
    data = read_regular(path, MAX_BLOB_SIZE + 1)
    if data is None:
        if required:
            raise InputError(f"{path}: cannot read devicetree blob")
        return None
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
