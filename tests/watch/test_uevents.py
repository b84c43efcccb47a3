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
from tests.watch.test_cli_watch import Watcher
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
from nfd_hooks.watch import Uevents
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
        assert watcher.log[-1].endswith("USB uevents, rescan every 60 s"), watcher.log
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
