"""The watch loop with a scripted node: what it writes, when, and what it leaves alone."""

import os
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import pytest

from nfd_hooks import api
from nfd_hooks.errors import InputError
from nfd_hooks.features import Feature
from nfd_hooks.sources import SourceReport
from nfd_hooks.uevents import Events
from nfd_hooks.watch import SPACING, Watch, split_expiry
from tests.conftest import labels_of

INTERVAL = 0.1
PI = "beta.devicetree.org/brcm-bcm2711"
NCS2 = "feature.node.kubernetes.io/usb-ff_03e7_2485.present"


class Node:
    """A node whose USB labels the test changes; its devicetree counts how often it is read."""

    def __init__(self) -> None:
        self.usb: Dict[str, str] = {}
        self.devicetree_reads = 0
        self.scans = 0
        self.failure: Optional[Exception] = None

    def scan(self, options: api.Options, reuse: Optional[Sequence[SourceReport]]) -> api.Scan:
        self.scans += 1
        if self.failure is not None:
            raise self.failure
        reports = []
        if options.use_devicetree:
            devicetree = next(iter(reuse or ()), None)
            if devicetree is None:
                self.devicetree_reads += 1
                devicetree = SourceReport("devicetree", [Feature(PI, "1")])
            reports.append(devicetree)
        reports.append(SourceReport("usb", [Feature(k, v) for k, v in self.usb.items()]))
        return api.assemble(reports)


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


class Running:
    def __init__(self, watch: Watch) -> None:
        self.stop = threading.Event()
        self.errors: List[BaseException] = []
        self.thread = threading.Thread(target=self._run, args=(watch,), daemon=True)
        self.thread.start()

    def _run(self, watch: Watch) -> None:
        try:
            watch.run(self.stop, Events(self.stop))
        except BaseException as error:  # reported by finish()
            self.errors.append(error)

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(2)
        assert not self.thread.is_alive()
        assert not self.errors


@pytest.fixture
def node() -> Node:
    return Node()


@pytest.fixture
def logged() -> List[str]:
    return []


def start(node: Node, directory: Path, logged: List[str], spacing: float = INTERVAL / 2, **options) -> Running:
    watch = Watch(api.Options(**options), directory, "nfd-hooks", INTERVAL, node.scan, logged.append, spacing)
    running = Running(watch)
    assert wait_for(lambda: (directory / "nfd-hooks").exists(), 1 + spacing), running.errors
    return running


def labels(directory: Path) -> Dict[str, str]:
    return labels_of((directory / "nfd-hooks").read_bytes())


def test_device_appears_and_goes_within_two_intervals(node, tmp_path, logged):
    running = start(node, tmp_path, logged)
    assert labels(tmp_path) == {PI: "1"}
    node.usb[NCS2] = "true"
    assert wait_for(lambda: NCS2 in labels(tmp_path), 2 * INTERVAL)
    del node.usb[NCS2]
    assert wait_for(lambda: NCS2 not in labels(tmp_path), 2 * INTERVAL)
    running.finish()
    # The devicetree was read once, at start, and its labels stayed throughout.
    assert node.devicetree_reads == 1
    assert labels(tmp_path) == {PI: "1"}


def test_unchanged_node_leaves_the_file_alone(node, tmp_path, logged):
    running = start(node, tmp_path, logged)
    before = (tmp_path / "nfd-hooks").stat()
    scans = node.scans
    assert wait_for(lambda: node.scans >= scans + 5, 10 * INTERVAL)
    running.finish()
    after = (tmp_path / "nfd-hooks").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert sum("wrote" in line for line in logged) == 1


def test_same_file_from_the_init_container_is_not_rewritten(node, tmp_path, logged):
    written = api.render_scan(Node().scan(api.Options(), None), api.Options())
    (tmp_path / "nfd-hooks").write_bytes(written)
    before = (tmp_path / "nfd-hooks").stat()
    running = start(node, tmp_path, logged)
    time.sleep(3 * INTERVAL)
    running.finish()
    assert (tmp_path / "nfd-hooks").stat().st_mtime_ns == before.st_mtime_ns
    assert not any("wrote" in line for line in logged)


def test_a_file_removed_behind_its_back_is_written_again(node, tmp_path, logged):
    running = start(node, tmp_path, logged)
    (tmp_path / "nfd-hooks").unlink()
    assert wait_for(lambda: (tmp_path / "nfd-hooks").exists(), 2 * INTERVAL)
    running.finish()


def test_failed_rescans_are_logged_once_and_retried(node, tmp_path, logged):
    running = start(node, tmp_path, logged)
    node.failure = OSError(19, "No such device")
    scans = node.scans
    assert wait_for(lambda: node.scans >= scans + 3, 10 * INTERVAL)
    node.failure = None
    node.usb[NCS2] = "true"
    assert wait_for(lambda: NCS2 in labels(tmp_path), 2 * INTERVAL)
    running.finish()
    assert [line for line in logged if line.startswith("rescan failed")] == [
        f"rescan failed, retrying every {INTERVAL:g} s: No such device"
    ]
    assert "rescan works again" in logged


def test_expiry_is_refreshed_before_it_lapses(node, tmp_path, logged):
    """A 4 s expiry is rewritten at about 2 s left, features unchanged."""
    running = start(node, tmp_path, logged, expires_in=timedelta(seconds=4))
    first = split_expiry((tmp_path / "nfd-hooks").read_bytes())
    assert first[1] is not None
    assert wait_for(lambda: split_expiry((tmp_path / "nfd-hooks").read_bytes())[1] != first[1], 4)
    running.finish()
    second = split_expiry((tmp_path / "nfd-hooks").read_bytes())
    assert second[0] == first[0]
    assert timedelta(seconds=1) <= second[1] - first[1] <= timedelta(seconds=3)
    assert any(line.endswith("expiry refreshed)") for line in logged)


def test_bad_input_at_start_is_raised(node, tmp_path, logged):
    node.failure = InputError("--usb-class 'zz' must be two hex digits")
    watch = Watch(api.Options(), tmp_path, "nfd-hooks", INTERVAL, node.scan, logged.append)
    stop = threading.Event()
    with pytest.raises(InputError):
        watch.run(stop, Events(stop))
    assert not (tmp_path / "nfd-hooks").exists()


@pytest.mark.parametrize("interval", [0, -1, float("nan")])
def test_interval_must_be_positive(tmp_path, interval):
    with pytest.raises(InputError):
        Watch(api.Options(), tmp_path, "nfd-hooks", interval).check()


def test_stop_ends_the_loop_promptly(node, tmp_path, logged):
    watch = Watch(api.Options(), tmp_path, "nfd-hooks", 30.0, node.scan, logged.append)
    running = Running(watch)
    assert wait_for(lambda: (tmp_path / "nfd-hooks").exists(), 1 + SPACING)
    stopped = time.monotonic()
    running.finish()
    assert time.monotonic() - stopped < 0.5


class Renames:
    """Records when the file is renamed into place: NFD's fsnotify events."""

    def __init__(self, monkeypatch) -> None:
        self.times: List[float] = []
        real = os.replace

        def replace(source, destination):
            real(source, destination)
            self.times.append(time.monotonic())

        monkeypatch.setattr(os, "replace", replace)


def test_changes_closer_than_nfds_tick_are_coalesced(node, tmp_path, logged, monkeypatch):
    """NFD v0.19 drops every features.d event but the first of each 1 s tick:
    a plug and unplug 0.2 s apart must not become two renames 0.2 s apart,
    and the last state must still land."""
    renames = Renames(monkeypatch)
    running = start(node, tmp_path, logged, spacing=SPACING)
    for _ in range(3):
        node.usb[NCS2] = "true"
        time.sleep(0.2)
        del node.usb[NCS2]
        time.sleep(0.2)
    node.usb[NCS2] = "true"
    assert wait_for(lambda: NCS2 in labels(tmp_path), 2 * SPACING + INTERVAL)
    running.finish()
    gaps = [later - earlier for earlier, later in zip(renames.times, renames.times[1:])]
    assert len(renames.times) >= 2 and all(gap >= SPACING for gap in gaps), gaps
    assert len(renames.times) <= 1 + (renames.times[-1] - renames.times[0]) / SPACING


def test_the_first_rename_waits_a_tick_after_making_the_scratch_directory(node, tmp_path, logged, monkeypatch):
    renames = Renames(monkeypatch)
    started = time.monotonic()
    running = start(node, tmp_path, logged, spacing=SPACING)
    running.finish()
    assert renames.times[0] - started >= SPACING


def test_each_rewrite_logs_what_it_added_and_removed(node, tmp_path, logged):
    """The same lines as ``write --diff``, after the rewrite they belong to."""
    running = start(node, tmp_path, logged)
    node.usb[NCS2] = "true"
    assert wait_for(lambda: f"+ {NCS2}=true" in logged, 2 * INTERVAL)
    del node.usb[NCS2]
    assert wait_for(lambda: f"- {NCS2}=true" in logged, 2 * INTERVAL)
    running.finish()
    writes = [i for i, line in enumerate(logged) if line.startswith("wrote ")]
    assert logged[writes[0] + 1] == f"+ {PI}=1"  # the first write: everything is new
    assert [logged[i].rsplit("; ", 1)[1] for i in writes] == ["new file)", "features changed)", "features changed)"]
    assert logged[writes[1] + 1] == f"+ {NCS2}=true" and logged[writes[2] + 1] == f"- {NCS2}=true"
    assert sum(line[:2] in ("+ ", "- ", "~ ") for line in logged) == 3


def test_quiet_logs_errors_only(node, tmp_path, logged):
    watch = Watch(api.Options(), tmp_path, "nfd-hooks", INTERVAL, node.scan, logged.append, INTERVAL / 2, quiet=True)
    running = Running(watch)
    assert wait_for(lambda: (tmp_path / "nfd-hooks").exists(), 2)
    node.usb[NCS2] = "true"
    assert wait_for(lambda: NCS2 in labels(tmp_path), 2 * INTERVAL)
    assert logged == []
    node.failure = OSError(19, "No such device")
    assert wait_for(lambda: logged, 3 * INTERVAL)
    running.finish()
    assert logged[0] == f"rescan failed, retrying every {INTERVAL:g} s: No such device"
