"""The end-to-end fleet: each node's host built from real inputs (Debian's DTBs
expanded as the kernel shows them, the captured sample node, USB devices as
the kernel lays them out), its features file written by ``nfd-hooks write``,
then published by a real nfd-worker and labelled by the real nfd-master."""

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from tests.conftest import DTB_DIR, FIXTURES, labels_of
from tests.e2e.harness import Cluster, Worker, wait_for
from tests.fakehost import PI4_HUBS, PI4_XHCI, UsbSpec, make_host

# What the workers run: the local source (our file) as the only label source, so
# every feature label on the Node is one our file gave; NFD's own USB source as a
# feature source, so the NodeFeature also carries NFD's view of the same devices.
WORKER_CONFIG = {"core": {"featureSources": ["local", "usb"], "labelSources": ["local"]}}
# Labels a kubelet puts on its Node; the harness sets them, NFD does not.
KUBELET_LABELS = ("kubernetes.io/arch", "kubernetes.io/os", "kubernetes.io/hostname")
# Directories every Linux sysfs has; NFD's export runs all its sources and fails without them.
SYSFS_SKELETON = ("block", "class/net", "bus/pci/devices")
FEATURE_LABELS_ANNOTATION = "nfd.node.kubernetes.io/feature-labels"
FLEET_ARGS = ("--compat-labels",)

# Coral USB Accelerator (usb.ids: 1a6e Global Unichip Corp., 18d1 Google Inc.), as in
# scripts/make-usb-fixtures: class 00; before its firmware a DFU interface (fe),
# after it one vendor-specific interface (ff) on SuperSpeed.
CORAL_DFU = UsbSpec("1-1.2", f"{PI4_XHCI}/usb1/1-1", "1a6e", "089a", "00", ("fe",), extra={"speed": "480"})
CORAL_TPU = UsbSpec("2-1", f"{PI4_XHCI}/usb2", "18d1", "9302", "00", ("ff",), extra={"speed": "5000"})
# A PC's xHCI root hubs and an Intel NCS2 on the server's front port (OpenVINO's usual setup).
PC_XHCI = "devices/pci0000:00/0000:00:14.0"
PC_HUBS = (
    UsbSpec("usb1", PC_XHCI, "1d6b", "0002", "09", ("09",), serial="0000:00:14.0", product_name="xHCI Host Controller"),
    UsbSpec("usb2", PC_XHCI, "1d6b", "0003", "09", ("09",), serial="0000:00:14.0", product_name="xHCI Host Controller"),
)
PC_NCS2 = UsbSpec("2-1", f"{PC_XHCI}/usb2", "03e7", "2485", "00", ("ff",), serial="03e72485", product_name="Movidius MyriadX")


@dataclass(frozen=True)
class FleetNode:
    """One node: where its devicetree and USB devices come from."""

    name: str
    arch: str
    description: str
    dtb: Optional[Path] = None  # a Debian DTB, expanded under firmware/devicetree/base
    usb: Tuple[UsbSpec, ...] = ()
    replay: Optional[Path] = None  # a captured bundle (nfd-hooks capture) instead


FLEET = (
    FleetNode("rpi4b-ncs2-webcam", "arm64", "Raspberry Pi 4B + Intel NCS2 + webcam (the captured sample node)",
              replay=FIXTURES / "nodes" / "rpi4b-ncs2-webcam"),
    FleetNode("jetson-nano", "arm64", "NVIDIA Jetson Nano (Debian tegra210-p3450-0000.dtb)", dtb=DTB_DIR / "jetson-nano.dtb"),
    FleetNode("coral-dev-board", "arm64", "Coral Dev Board (Debian imx8mq-phanbell.dtb)", dtb=DTB_DIR / "coral-dev-board.dtb"),
    FleetNode("rpi4b-coral-dfu", "arm64", "Raspberry Pi 4B + Coral USB Accelerator, no firmware yet (1a6e:089a)",
              dtb=DTB_DIR / "rpi-4-b.dtb", usb=PI4_HUBS + (CORAL_DFU,)),
    FleetNode("rpi4b-coral-tpu", "arm64", "Raspberry Pi 4B + Coral USB Accelerator, firmware loaded (18d1:9302)",
              dtb=DTB_DIR / "rpi-4-b.dtb", usb=PI4_HUBS + (CORAL_TPU,)),
    FleetNode("am572x-idk", "arm", "TI AM572x IDK, armhf (Debian am572x-idk.dtb)", dtb=DTB_DIR / "am572x-idk.dtb"),
    FleetNode("amd64-server", "amd64", "amd64 server, no devicetree, Intel NCS2 on USB", usb=PC_HUBS + (PC_NCS2,)),
)


@dataclass
class Published:
    """One fleet node after NFD: what nfd-hooks printed and what NFD made of it."""

    node: FleetNode
    features_dir: Path
    sysfs: Path
    shown: bytes  # nfd-hooks show's stdout
    worker: Worker
    labels: Dict[str, str]  # the Node's labels, kubelet's left out
    master_log: str = ""  # nfd-master's log once the whole fleet was labelled

    @property
    def shown_labels(self) -> Dict[str, str]:
        return labels_of(self.shown)


def nfd_hooks(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "nfd_hooks", *args], capture_output=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"nfd-hooks {' '.join(args)}: exit {done.returncode}: {done.stderr.decode()}")
    return done


def build_host(node: FleetNode, directory: Path) -> Tuple[Path, List[str]]:
    """The node's sysfs (what its worker sees at /host-sys) and the nfd-hooks
    arguments that read the same host."""
    sysfs = directory / "sys"
    if node.replay:
        shutil.copytree(node.replay / "sys", sysfs, symlinks=True)
        source = ["--replay", str(node.replay)]
    else:
        make_host(sysfs, node.dtb.read_bytes() if node.dtb else None, node.usb)
        source = ["--sysfs", str(sysfs)]
    for path in SYSFS_SKELETON:
        (sysfs / path).mkdir(parents=True, exist_ok=True)
    return sysfs, source


def publish(cluster: Cluster, node: FleetNode, directory: Path) -> Tuple[Path, Path, bytes, Worker]:
    """Write the node's features file and start a one-shot nfd-worker for it."""
    directory.mkdir(parents=True)
    sysfs, source = build_host(node, directory)
    features_dir = directory / "features.d"
    features_dir.mkdir()
    # --compat-labels as a cluster that runs vendors' device plugins sets it: the
    # Jetson Nano gets nvidia.com/gpu.present from its devicetree (test_scheduling).
    shown = nfd_hooks("show", *source, *FLEET_ARGS).stdout
    nfd_hooks("write", *source, *FLEET_ARGS, "--features-dir", str(features_dir))
    cluster.add_node(node.name, node.arch)
    worker = cluster.start_worker(node.name, features_dir, sysfs, config=WORKER_CONFIG, oneshot=True)
    return features_dir, sysfs, shown, worker


def labelled(cluster: Cluster, name: str) -> Dict[str, str]:
    """The Node's labels once nfd-master has labelled it (its feature-labels annotation is set)."""
    def probe() -> Optional[Dict[str, str]]:
        node = cluster.get("node", name)
        if FEATURE_LABELS_ANNOTATION not in node["metadata"].get("annotations", {}):
            return None
        return node["metadata"]["labels"]

    labels = wait_for(f"nfd-master to label node {name}", probe, timeout=90, interval=0.5)
    return {key: value for key, value in labels.items() if key not in KUBELET_LABELS}


def bring_up(cluster: Cluster, directory: Path) -> Dict[str, Published]:
    """Every fleet node written, published and labelled."""
    started = {node.name: (node, *publish(cluster, node, directory / node.name)) for node in FLEET}
    fleet = {}
    for name, (node, features_dir, sysfs, shown, worker) in started.items():
        exit_code = worker.wait(timeout=120)
        if exit_code != 0:
            raise RuntimeError(f"nfd-worker for {name} exited {exit_code}:\n{worker.log_text()[-3000:]}")
        fleet[name] = Published(node, features_dir, sysfs, shown, worker, labelled(cluster, name))
    for published in fleet.values():
        published.master_log = cluster.process("nfd-master").log_text()
    return fleet
