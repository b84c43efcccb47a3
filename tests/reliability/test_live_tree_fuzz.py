"""Live trees with hostile content, loops, unreadable and vanishing entries never fail a scan.

A live tree is the node's own /sys/firmware/devicetree/base: whatever is in
it, the hook exits 0 with valid labels. Read faults (EIO, EACCES) are injected
by wrapping ``os`` calls, since root reads files whatever their mode.
"""

import errno
import os
import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import List, Set, Tuple
from unittest import mock

from hypothesis import given
from hypothesis import strategies as st

from nfd_hooks import api
from nfd_hooks.sources.devicetree import tree as tree_module
from nfd_hooks.sources.devicetree.tree import MAX_PROPERTY_SIZE
from tests.reliability.confinement import assert_not_leaked, confined, plant
from tests.reliability.fdt_build import Node
from tests.reliability.invariants import check_scan, count, scaled, scratch_dir
from tests.reliability.strategies import fs_trees

SCRATCH = scratch_dir()

# Hazards that only add entries a reader must ignore: removing them changes nothing.
# Node links out of the tree (confinement.py): skipped like any node link, never followed.
ADDITIVE = ("loop-to-parent", "loop-to-self", "dangling-node-link", "outside-node-absolute", "outside-node-chain")
DAMAGING = (
    "dangling-compatible", "linked-compatible", "fifo-status", "directory-compatible",
    "oversized-compatible", "eio-compatible", "eacces-node", "vanishing-node",
    # properties that lead out of the tree, to a device or to a FIFO outside it
    "outside-compatible-relative", "outside-compatible-chain", "compatible-dev-zero", "compatible-outside-fifo",
)
_OUTSIDE_HAZARDS = {
    "outside-node-absolute": ("cpu@96", ("absolute", "dt-node")),
    "outside-node-chain": ("gpu@95", ("chain", "dt-node")),
    "outside-compatible-relative": ("compatible", ("relative", "secret")),
    "outside-compatible-chain": ("compatible", ("chain", "secret")),
    "compatible-dev-zero": ("compatible", ("dev-zero", "secret")),
    "compatible-outside-fifo": ("compatible", ("absolute", "fifo")),
}


class _Faults:
    """Read faults for chosen inodes and directories, and directories that vanish once listed."""

    def __init__(self) -> None:
        self.eio: Set[Tuple[int, int]] = set()
        self.eacces: Set[str] = set()
        self.vanish: Set[str] = set()
        self._read, self._scandir = os.read, os.scandir

    def read(self, fd: int, size: int) -> bytes:
        info = os.fstat(fd)
        if (info.st_dev, info.st_ino) in self.eio:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return self._read(fd, size)

    def scandir(self, path):
        if path in self.eacces:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        with self._scandir(path) as entries:
            listed = list(entries)
        for entry in listed:
            if entry.path in self.vanish:
                shutil.rmtree(entry.path)
        return _Listing(listed)

    def patches(self, stack: ExitStack) -> None:
        stack.enter_context(mock.patch.object(tree_module.os, "read", self.read))
        stack.enter_context(mock.patch.object(tree_module.os, "scandir", self.scandir))


class _Listing(list):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def materialize(root: Node, base: Path, hazards: List[Tuple[int, str]], faults: _Faults) -> List[Path]:
    """Write the tree; apply each hazard to the node of that index; return additive entries."""
    nodes: List[Tuple[Path, Node]] = []
    pending = [(base, root)]
    while pending:
        directory, node = pending.pop()
        directory.mkdir()
        (directory / "name").write_bytes(node.name.split("@")[0].encode("utf-8", "surrogateescape") + b"\0")
        for prop, value in node.properties.items():
            (directory / prop).write_bytes(value)
        nodes.append((directory, node))
        pending.extend((directory / child.name, child) for child in node.children)
    added = []
    for index, hazard in hazards:
        directory, _ = nodes[index % len(nodes)]
        compatible = directory / "compatible"
        if hazard in _OUTSIDE_HAZARDS:
            name, link = _OUTSIDE_HAZARDS[hazard]
            if (name == "compatible" or not os.path.lexists(directory / name)) and not os.path.lexists(directory / ".h0"):
                made = plant(directory / name, link, base)
                if hazard in ADDITIVE:
                    added += made
        elif hazard in ADDITIVE:
            name, target = {
                "loop-to-parent": ("cpu@99", ".."),
                "loop-to-self": ("gpu@98", "."),
                "dangling-node-link": ("cpu@97", "/nonexistent/cpu"),
            }[hazard]
            if not os.path.lexists(directory / name):
                (directory / name).symlink_to(target)
                added.append(directory / name)
        elif hazard in ("dangling-compatible", "linked-compatible", "directory-compatible"):
            if compatible.is_dir() and not compatible.is_symlink():
                continue
            compatible.unlink(missing_ok=True)
            if hazard == "dangling-compatible":
                compatible.symlink_to("/nonexistent/compatible")
            elif hazard == "linked-compatible":
                compatible.symlink_to(base / "name")
            else:
                compatible.mkdir()
        elif hazard == "fifo-status":
            if not os.path.lexists(directory / "status"):
                os.mkfifo(directory / "status")
        elif hazard == "oversized-compatible":
            if not os.path.lexists(compatible) or compatible.is_file() and not compatible.is_symlink():
                compatible.write_bytes(b"acme,big\0" * (MAX_PROPERTY_SIZE // 9 + 1))
        elif hazard == "eio-compatible":
            if compatible.is_file() and not compatible.is_symlink():
                info = compatible.stat()
                faults.eio.add((info.st_dev, info.st_ino))
        elif hazard == "eacces-node":
            faults.eacces.add(str(directory))
        elif hazard == "vanishing-node" and directory != base:
            faults.vanish.add(str(directory))
    return added


@scaled(2)
@given(
    fs_trees(),
    st.lists(st.tuples(st.integers(0, 64), st.sampled_from(ADDITIVE + DAMAGING)), max_size=6),
)
def test_hostile_live_trees_always_give_valid_labels(root, hazards):
    count("live-tree")
    with tempfile.TemporaryDirectory(dir=SCRATCH) as scratch:
        base = Path(scratch) / "base"
        faults = _Faults()
        added = materialize(root, base, hazards, faults)
        options = api.Options(devicetree=base, use_usb=False)
        with ExitStack() as stack:
            faults.patches(stack)
            with confined():
                content = check_scan(options)
            assert content is not None, "a live tree must never fail the scan"
            assert_not_leaked(content)
            for path in added:
                path.unlink(missing_ok=True)  # gone with its vanished node
            without_additions = api.render_scan(api.scan(options), options)
        assert without_additions == content, "ignored entries changed the labels"
