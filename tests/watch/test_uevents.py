"""The uevent path under umockdev: a uevent from a testbed wakes the watcher.

The testbed runs in the system python3 (tests/watch/umockdev_testbed.py); the
code under test runs in this virtualenv's python with umockdev's preload
library, which hands its netlink uevent socket the testbed's events.
"""

import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator, List

import pytest

from tests.conftest import FIXTURES, SHARED, require_tool
from tests.conftest import labels_of
from tests.cli.test_watch import Watcher
from tests.watch.test_hotplug import NCS2, NCS2_LABELS, within

HERE = Path(__file__).resolve().parent
RECORDINGS = SHARED / "usb-recordings"
SYNAPTICS = RECORDINGS / "libfprint-synaptics.umockdev"  # 06cb:00bd, class ff
EDGE_NODE = FIXTURES / "usb" / "edge-node.umockdev"  # hubs, webcam, storage, NCS2 at 2-1, Coral
NCS2_SYSPATH = "/sys/devices/pci0000:00/0000:00:14.0/usb2/2-1"


class UmockdevBed:
    def __init__(self) -> None:
        wrapper = require_tool("umockdev-wrapper")
        probe = subprocess.run(
            ["/usr/bin/python3", "-c", "import gi; gi.require_version('UMockdev', '1.0')"], capture_output=True
        )
        if probe.returncode != 0:
            message = "system python3 lacks gi or UMockdev (Debian python3-gi, gir1.2-umockdev-1.0)"
            if os.environ.get("NFD_HOOKS_REQUIRE_TOOLS") == "1":
                pytest.fail(message)
            pytest.skip(message)
        self.process = subprocess.Popen(
            [wrapper, "/usr/bin/python3", str(HERE / "umockdev_testbed.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        kind, _, self.root = self.process.stdout.readline().strip().partition(" ")
        assert kind == "root", kind
        self.env = dict(os.environ, UMOCKDEV_DIR=self.root, LD_PRELOAD="libumockdev-preload.so.0")

    def send(self, command: str) -> None:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline().strip()
        assert answer == "ok", answer

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(5)


@pytest.fixture
def testbed() -> Iterator[UmockdevBed]:
    bed = UmockdevBed()
    yield bed
    bed.close()


@pytest.fixture
def recording() -> Path:
    if not SYNAPTICS.exists():
        pytest.skip(f"{SYNAPTICS} absent (shared USB recordings)")
    return SYNAPTICS


LISTEN = """
import sys, threading, time
from nfd_hooks.uevents import Uevents
events = Uevents(threading.Event())
print("listening", flush=True)
started = time.monotonic()
woke = events.wait(float(sys.argv[1]))
print(woke, time.monotonic() - started, flush=True)
"""


def listen(testbed: UmockdevBed, seconds: float) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", LISTEN, str(seconds)], stdout=subprocess.PIPE, text=True, env=testbed.env
    )
    assert process.stdout.readline().strip() == "listening"
    return process


def result(process: subprocess.Popen) -> List[str]:
    out = process.communicate(timeout=15)[0].split()
    assert process.returncode == 0
    return out


def test_a_usb_uevent_wakes_the_wait_at_once(testbed, recording):
    waiting = listen(testbed, 10)
    testbed.send(f"add {recording}")
    woke, took = result(waiting)
    assert woke == "True"
    assert float(took) < 2


def test_without_uevents_the_wait_runs_out(testbed):
    woke, took = result(listen(testbed, 0.5))
    assert woke == "False"
    assert 0.5 <= float(took) < 1.5


def test_uevents_rescan_long_before_the_interval(testbed, tmp_path):
    """With a 60 s interval, only the testbed's uevents can explain changes
    within 3 s: adding the recording (umockdev sends "add" for each device)
    brings the NCS2's label, unplugging it takes the label away."""
    if not EDGE_NODE.exists():
        pytest.skip("fixtures/usb/edge-node.umockdev (branch usb) is not on this branch yet")
    features_dir = tmp_path / "features.d"
    features_dir.mkdir()
    target = features_dir / "nfd-hooks"
    args = ["--sysfs", f"{testbed.root}/sys", "--no-devicetree", "--features-dir", str(features_dir), "--interval", "60"]
    watcher = Watcher(args, env=testbed.env)
    try:
        assert watcher.log[-1].endswith(
            "uevents of usb, pci, platform, apex, hailo_chardev, rescan every 60 s"
        ), watcher.log
        assert labels_of(target.read_bytes()) == {}
        testbed.send(f"add {EDGE_NODE}")
        within(3, lambda: NCS2 in labels_of(target.read_bytes()))
        with_ncs2 = labels_of(target.read_bytes())
        testbed.send(f"unplug {NCS2_SYSPATH}")
        within(3, lambda: NCS2 not in labels_of(target.read_bytes()))
        assert labels_of(target.read_bytes()) == {k: v for k, v in with_ncs2.items() if k not in NCS2_LABELS}
        assert watcher.stop() < 1.0
    finally:
        watcher.kill()


# Issue 17: readiness follows the device, by uevents alone (the interval is 60 s).

ACCELERATORS = "accelerator.feature.node.kubernetes.io"


def recording_of(tmp_path: Path, name: str, *devices: str) -> Path:
    """The blocks of edge-node.umockdev for ``devices`` (syspaths under the xHCI
    controller, each with what is below it) as one recording file."""
    controller = "P: /devices/pci0000:00/0000:00:14.0/"
    blocks = EDGE_NODE.read_text().split("\n\n")
    chosen = [b.strip("\n") for b in blocks
              if any(b.lstrip("\n").startswith((controller + d + "/", controller + d + "\n")) for d in devices)]
    path = tmp_path / name
    path.write_text("\n\n".join(chosen) + "\n")
    return path


def edgetpu(target: Path) -> dict:
    return {k: v for k, v in labels_of(target.read_bytes()).items() if k.startswith(f"{ACCELERATORS}/edgetpu.")}


def test_a_coral_re_enumerating_with_its_firmware_becomes_ready(testbed, tmp_path):
    """Its boot loader (1a6e:089a at 1-2) leaves; Google's id (18d1:9302 at 2-2) arrives, as libedgetpu makes it."""
    dfu = recording_of(tmp_path, "dfu.umockdev", "usb1/1-2", "usb1/1-0:1.0", "usb1")
    booted = recording_of(tmp_path, "booted.umockdev", "usb2/2-2", "usb2/2-0:1.0", "usb2")
    features_dir = tmp_path / "features.d"
    features_dir.mkdir()
    target = features_dir / "nfd-hooks"
    args = ["--sysfs", f"{testbed.root}/sys", "--no-devicetree", "--features-dir", str(features_dir), "--interval", "60"]
    testbed.send(f"add {dfu}")
    watcher = Watcher(args, env=testbed.env)
    try:
        assert edgetpu(target) == {f"{ACCELERATORS}/edgetpu.present": "true", f"{ACCELERATORS}/edgetpu.count": "1"}
        testbed.send("unplug /sys/devices/pci0000:00/0000:00:14.0/usb1/1-2")
        testbed.send(f"add {booted}")
        within(3, lambda: f"{ACCELERATORS}/edgetpu.ready" in edgetpu(target))
        assert edgetpu(target) == {
            f"{ACCELERATORS}/edgetpu.present": "true", f"{ACCELERATORS}/edgetpu.count": "1",
            f"{ACCELERATORS}/edgetpu.ready": "true", f"{ACCELERATORS}/edgetpu.ready-count": "1",
        }
        assert watcher.stop() < 1.0
    finally:
        watcher.kill()


def test_a_driver_binding_and_unbinding_moves_ready(testbed, tmp_path):
    """A Jetson Nano under L4T (fixtures/accelerators/jetson-nano-l4t-unbound): nvgpu's
    gk20a binds its GPU's platform device, then unbinds; each is one uevent."""
    import shutil

    tree = tmp_path / "devicetree"
    shutil.copytree(FIXTURES / "accelerators" / "jetson-nano-l4t-unbound" / "sys" / "firmware" / "devicetree" / "base", tree)
    gpu = tmp_path / "gpu.umockdev"
    gpu.write_text("P: /devices/gpu.0\nE: SUBSYSTEM=platform\nE: OF_NAME=gpu\nE: OF_FULLNAME=/gpu\n"
                   "L: of_node=../../firmware/devicetree/base/gpu\n")
    testbed.send(f"add {gpu}")
    features_dir = tmp_path / "features.d"
    features_dir.mkdir()
    target = features_dir / "nfd-hooks"
    ready = f"{ACCELERATORS}/nvidia-igpu.ready"
    args = ["--sysfs", f"{testbed.root}/sys", "--devicetree", str(tree), "--no-usb",
            "--features-dir", str(features_dir), "--interval", "60"]
    watcher = Watcher(args, env=testbed.env)
    try:
        labels = labels_of(target.read_bytes())
        assert labels[f"{ACCELERATORS}/nvidia-igpu.present"] == "true" and ready not in labels
        link = Path(testbed.root) / "sys" / "devices" / "gpu.0" / "driver"
        link.symlink_to("../../bus/platform/drivers/gk20a")
        testbed.send("uevent /sys/devices/gpu.0 bind")
        within(3, lambda: ready in labels_of(target.read_bytes()))
        link.unlink()
        testbed.send("uevent /sys/devices/gpu.0 unbind")
        within(3, lambda: ready not in labels_of(target.read_bytes()))
        assert watcher.stop() < 1.0
    finally:
        watcher.kill()
