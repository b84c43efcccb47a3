"""Acceptance (issue 9): ``nfd-hooks watch --sysfs TREE --interval 1`` follows a USB
device plugged into and pulled out of TREE, and leaves the file alone otherwise.

TREE is a copy of fixtures/usb/edge-node (a real-shaped sysfs: device
directories under devices/, symlinks under bus/usb/devices/) without the Intel
NCS2 at 2-1; plugging moves its directory in and adds its links, as the kernel
does, and unplugging takes them away.
"""

import os
import shutil
import time
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import FIXTURES
from tests.conftest import labels_of
from tests.cli.test_watch import Watcher

EDGE_NODE = FIXTURES / "usb" / "edge-node"
NCS2 = "feature.node.kubernetes.io/usb-ff_03e7_2485.present"  # facts.md, NFD's label for 03e7:2485
# The NCS2 is the tree's only Movidius VPU (docs/accelerators.md): its accelerator labels come and go with it.
VPU = "accelerator.feature.node.kubernetes.io/movidius-vpu"
NCS2_LABELS = {NCS2, f"{VPU}.present", f"{VPU}.count"}
NCS2_DEVICE = "devices/pci0000:00/0000:00:14.0/usb2/2-1"
NCS2_LINKS = ("2-1", "2-1:1.0")


class Tree:
    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path / "sys"
        shutil.copytree(EDGE_NODE, self.root, symlinks=True)
        self.spare = tmp_path / "spare-2-1"
        self.links = {name: os.readlink(self._link(name)) for name in NCS2_LINKS}
        self.unplug()

    def _link(self, name: str) -> Path:
        return self.root / "bus" / "usb" / "devices" / name

    def plug(self) -> None:
        os.rename(self.spare, self.root / NCS2_DEVICE)
        for name, target in self.links.items():
            os.symlink(target, self._link(name))

    def unplug(self) -> None:
        for name in NCS2_LINKS:
            self._link(name).unlink()
        os.rename(self.root / NCS2_DEVICE, self.spare)


def within(seconds: float, condition: Callable[[], bool]) -> float:
    """How long ``condition`` took to hold; fails after ``seconds``."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, f"not within {seconds} s"
        time.sleep(0.05)
    return time.monotonic() - started


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    if not (EDGE_NODE / "bus" / "usb" / "devices").is_dir():
        pytest.skip("fixtures/usb/edge-node (branch usb) is not on this branch yet")
    return Tree(tmp_path)


def test_plugged_then_pulled_device_within_3_seconds_each(tree, tmp_path):
    features_dir = tmp_path / "features.d"
    features_dir.mkdir()
    target = features_dir / "nfd-hooks"

    def labels():
        return labels_of(target.read_bytes())

    watcher = Watcher(
        ["--sysfs", str(tree.root), "--no-devicetree", "--no-uevents", "--features-dir", str(features_dir), "--interval", "1"]
    )
    try:
        before = labels()
        assert NCS2 not in before and before  # the other accelerators are there
        tree.plug()
        within(3, lambda: NCS2 in labels())
        plugged = labels()
        assert set(plugged) - set(before) == NCS2_LABELS
        assert {k: v for k, v in plugged.items() if k not in NCS2_LABELS} == before
        assert plugged[NCS2] == plugged[f"{VPU}.present"] == "true"
        tree.unplug()
        within(3, lambda: NCS2 not in labels())
        assert labels() == before
        # Nothing changes any more: three rescans leave the file alone.
        settled = target.stat()
        time.sleep(3.2)
        assert target.stat().st_mtime_ns == settled.st_mtime_ns and target.stat().st_ino == settled.st_ino
        assert watcher.stop() < 1.0
    finally:
        watcher.kill()
    assert sum(line.startswith("nfd-hooks: wrote ") for line in watcher.log) == 3, watcher.log
