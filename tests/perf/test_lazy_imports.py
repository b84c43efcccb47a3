"""What a run loads: the start-up budget (docs/performance.md) depends on heavy or
rarely needed modules staying unloaded unless the run needs them.

Read from ``python -X importtime`` of the real entry point, so nothing here
times anything: the lists are the contract, bench/run measures the cost.
"""

import re
import subprocess
import sys
from typing import List, Set

import pytest

from tests.conftest import DTB_DIR, ROOT
from tests.fdt_expand import expand

# Loaded only by the runs that need them (DTB files, JSON, write, capture, hashes of long names, other USB backends).
HEAVY = {
    "pydantic", "rich", "pyudev", "usb", "pyfdt", "json", "hashlib", "tempfile",
    "nfd_hooks.writer", "nfd_hooks.capture", "nfd_hooks.check", "nfd_hooks.sources.devicetree.blob",
    "nfd_hooks.sources.usb.udev", "nfd_hooks.sources.usb.libusb", "nfd_hooks.sources.usb.ids",
    # Allocation (dra-driver, device-plugin, devices) and what only it uses: the hook never pays for them.
    "nfd_hooks.allocation", "grpclib", "h2", "hpack", "hyperframe", "multidict", "asyncio", "ssl", "http.client",
    "nfd_hooks.sources.accelerators.devices",
}


def loaded(args: List[str]) -> Set[str]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "nfd_hooks", *args], capture_output=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)$", done.stderr.decode(), re.MULTILINE))


@pytest.fixture(scope="module")
def sysfs(tmp_path_factory):
    """A node: the Pi 4B's live tree and the USB fixture's devices."""
    root = tmp_path_factory.mktemp("sys")
    expand((DTB_DIR / "rpi-4-b.dtb").read_bytes(), root / "firmware" / "devicetree" / "base")
    usb = ROOT / "fixtures" / "usb" / "edge-node"
    for part in ("bus", "devices"):
        (root / part).symlink_to(usb / part)
    return root


def test_show_on_a_node_loads_nothing_heavy(sysfs):
    modules = loaded(["show", "--sysfs", str(sysfs), "--usb-backend", "sysfs"])
    assert {"nfd_hooks.sources.devicetree.tree", "nfd_hooks.sources.usb.sysfs"} <= modules  # the run did scan
    assert modules & HEAVY == set()


def test_each_heavy_module_comes_only_with_its_use(sysfs, tmp_path):
    blob = loaded(["show", "--devicetree", str(DTB_DIR / "rpi-4-b.dtb"), "--no-usb"])
    assert "nfd_hooks.sources.devicetree.blob" in blob
    assert "pyfdt" not in blob  # only capture writes blobs with it
    assert "json" in loaded(["show", "--sysfs", str(sysfs), "--no-usb", "--format", "json"])
    assert "nfd_hooks.writer" in loaded(["write", "--sysfs", str(sysfs), "--no-usb", "--features-dir", str(tmp_path)])


def test_allocation_comes_only_with_its_commands(sysfs):
    """The hook's commands never load allocation; its own command does (and nothing else does)."""
    for args in (["write", "--help"], ["watch", "--help"], ["capture", "--help"]):
        assert not {m for m in loaded(args) if m.startswith("nfd_hooks.allocation")}, args
    devices = loaded(["devices", "--sysfs", str(sysfs), "--usb-backend", "sysfs"])
    assert {"nfd_hooks.allocation.inventory", "nfd_hooks.sources.accelerators.devices"} <= devices
    assert not {"grpclib", "ssl", "asyncio"} & devices  # listing devices serves nothing


def test_the_hook_imports_no_dataclasses(sysfs, tmp_path):
    """The hook's records are plain slotted classes or NamedTuples: making a
    dataclass costs about 2 million instructions a start (docs/performance.md)."""
    modules = loaded(["write", "--sysfs", str(sysfs), "--usb-backend", "sysfs", "--features-dir", str(tmp_path)])
    assert "nfd_hooks.sources.accelerators.result" in modules  # the typed results were made
    assert "dataclasses" not in modules
