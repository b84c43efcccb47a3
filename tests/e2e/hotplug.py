"""Hotplug through the real nfd-worker: ``nfd-hooks watch`` on a fake sysfs, a
long-running nfd-worker reading its features.d, the Node watched in the API.

Shared by tests/e2e/test_hotplug.py (every plug and unplug must reach the Node)
and bench/hotplug-latency (how long each took). A device is plugged by laying
its sysfs directories out as the kernel does (tests/fakehost.py) and unplugged
by removing them; the time of a change is taken just before the first file of
it is touched, the time it reached the Node when the API's watch stream
delivered the Node with (or without) the label.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from tests.conftest import DTB_DIR, ROOT
from tests.e2e.fleet import SYSFS_SKELETON
from tests.e2e.harness import Cluster, Worker, wait_for
from tests.fakehost import NCS2, PI4_HUBS, UsbSpec, add_usb_device, make_host

NCS2_LABEL = "feature.node.kubernetes.io/usb-ff_03e7_2485.present"
NCS2_ACCELERATOR = "accelerator.feature.node.kubernetes.io/movidius-vpu.present"
# How often the watcher rescans the fake sysfs (it has no uevents): part of
# every measured latency, at most this much.
POLL = 0.1


def unplug(sysfs: Path, spec: UsbSpec) -> None:
    """Remove the device as the kernel does: interfaces' links first, the device last."""
    links = sysfs / "bus" / "usb" / "devices"
    for link in sorted(links.iterdir(), reverse=True):
        if link.name == spec.name or link.name.startswith(f"{spec.interface_prefix}:"):
            link.unlink()
    shutil.rmtree(sysfs / spec.path)


class NodeStream:
    """``kubectl get node NAME --watch -o json``: every version of the Node, stamped on arrival."""

    def __init__(self, cluster: Cluster, node: str) -> None:
        self.versions: List[Tuple[float, Dict[str, str]]] = []
        self.changed = threading.Condition()
        self.process = subprocess.Popen(
            cluster.in_netns([cluster.kubectl_path, f"--kubeconfig={cluster.kubeconfig}", "get", "node", node, "--watch", "-o", "json"]),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        decoder, buffer = json.JSONDecoder(), ""
        for line in self.process.stdout:
            buffer += line
            try:
                node, end = decoder.raw_decode(buffer.lstrip())
            except ValueError:
                continue
            buffer = buffer.lstrip()[end:]
            with self.changed:
                self.versions.append((time.monotonic(), node["metadata"].get("labels", {})))
                self.changed.notify_all()

    def wait(self, key: str, present: bool, since: float, timeout: float) -> Optional[float]:
        """When (monotonic) a version of the Node arrived after ``since`` with ``key``
        present (or absent); None if none did within ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for stamp, labels in self.versions:
                    if stamp >= since and (key in labels) == present:
                        return stamp
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.changed.wait(left)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@dataclass
class Event:
    """One plug or unplug and how long the Node took to show it (None: not within the timeout)."""

    plugged: bool
    latency: Optional[float]


@dataclass
class HotplugNode:
    """A Pi 4B (Debian's DTB) whose NCS2 comes and goes, with its watcher and worker running."""

    cluster: Cluster
    name: str
    watcher_python_path: Optional[Path] = None  # run another nfd_hooks (bench: the writer before the fix)
    worker_config: Dict[str, Any] = field(default_factory=lambda: {"core": {"featureSources": ["local"], "labelSources": ["local"]}})
    watch_args: Sequence[str] = ()

    def __post_init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix=f"hotplug-{self.name}-", dir=self.cluster.dir))
        self.directory.chmod(0o755)
        self.sysfs = make_host(self.directory / "sys", (DTB_DIR / "rpi-4-b.dtb").read_bytes(), PI4_HUBS)
        for path in SYSFS_SKELETON:
            (self.sysfs / path).mkdir(parents=True, exist_ok=True)
        self.features_dir = self.directory / "features.d"
        self.features_dir.mkdir()
        self.features_dir.chmod(0o755)
        self.watcher: Optional[subprocess.Popen] = None
        self.worker: Optional[Worker] = None
        self.stream: Optional[NodeStream] = None

    def start(self) -> "HotplugNode":
        """Watcher first (it writes the first file, as the initContainers do), then the worker."""
        env = dict(os.environ)
        if self.watcher_python_path is not None:
            env["PYTHONPATH"] = str(self.watcher_python_path)
        self.watcher_log = self.directory / "watch.log"
        with open(self.watcher_log, "wb") as log:
            self.watcher = subprocess.Popen(
                [sys.executable, "-m", "nfd_hooks", "watch", "--sysfs", str(self.sysfs), "--features-dir", str(self.features_dir),
                 "--no-uevents", "--interval", str(POLL), *self.watch_args],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(self.watcher_python_path or ROOT),
            )
        wait_for("the watcher's first file", lambda: (self.features_dir / "nfd-hooks").exists(), timeout=30)
        self.cluster.add_node(self.name, "arm64")
        self.stream = NodeStream(self.cluster, self.name)
        self.worker = self.cluster.start_worker(self.name, self.features_dir, self.sysfs, config=self.worker_config)
        beta = "beta.devicetree.org/brcm-bcm2711"
        if self.stream.wait(beta, True, 0, 90) is None:
            raise RuntimeError(f"node {self.name} never got {beta}:\n{self.worker.log_text()[-3000:]}")
        return self

    def change(self, plugged: bool, label: str = NCS2_LABEL, timeout: float = 70.0) -> Event:
        """Plug (or unplug) the NCS2; how long until the Node shows ``label`` accordingly."""
        started = time.monotonic()
        (add_usb_device if plugged else unplug)(self.sysfs, NCS2)
        arrived = self.stream.wait(label, plugged, started, timeout)
        return Event(plugged, None if arrived is None else arrived - started)

    def stop(self) -> None:
        if self.stream:
            self.stream.close()
        if self.worker:
            self.worker.stop()
        if self.watcher and self.watcher.poll() is None:
            self.watcher.terminate()
            self.watcher.wait(10)
        self.cluster.kubectl("delete", "node", self.name, "--wait=false", check=False)
