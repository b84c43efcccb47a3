"""Our USB labels are NFD's own: on one fake host, the ``usb-...`` labels the
real nfd-worker's usb source publishes (serial in its ``deviceLabelFields``)
are exactly those of our features file, as the real worker's local source
reads it. The devices are the cases where the two once differed: a serial
ending in ``-``, serials NFD cannot put into a label (it drops the label), a
serial with Unicode spaces around it (NFD trims them) and devices without an
idVendor or a serial (NFD leaves the field empty)."""

import tempfile
from pathlib import Path
from typing import Dict

from tests.e2e.fleet import SYSFS_SKELETON, nfd_hooks
from tests.e2e.harness import NFD_NAMESPACE, Cluster
from tests.fakehost import PI4_HUBS, PI4_XHCI, UsbSpec, make_host

USB2 = f"{PI4_XHCI}/usb2"
DEVICES = (
    UsbSpec("2-1", USB2, "03e7", "2485", "00", ("ff",), serial="ABC-"),
    UsbSpec("2-2", USB2, "1a6e", "089a", "00", ("fe",)),  # idVendor removed below; no serial
    UsbSpec("2-3", USB2, "18d1", "9302", "00", ("ff",), serial="A B"),  # a space: no valid label
    UsbSpec("2-4", USB2, "03e7", "2150", "ff", ("ff",), serial="C767F1C7/14"),  # a slash: none either
    UsbSpec("2-5", USB2, "03e7", "f63b", "ff", ("ff",), serial="X" * 39),  # one character too long
    UsbSpec("2-6", USB2, "03e7", "2485", "00", ("ff",), serial="\u00a0-lead\u3000"),
)
NFD_OWN = "feature.node.kubernetes.io/usb-"
SERIAL_FIELDS = ["class", "vendor", "device", "serial"]


def published(cluster: Cluster, node: str, features_dir: Path, sysfs: Path, config: Dict) -> Dict[str, str]:
    """The labels a one-shot real worker published for ``node`` (its NodeFeature), NFD's usb- keys only."""
    cluster.add_node(node, "arm64")
    worker = cluster.start_worker(node, features_dir, sysfs, config=config, oneshot=True)
    assert worker.wait(timeout=120) == 0, worker.log_text()[-3000:]
    labels = cluster.get("nodefeature", node, "-n", NFD_NAMESPACE)["spec"].get("labels", {})
    cluster.kubectl("delete", "node", node, "--wait=false", check=False)
    return {key: value for key, value in labels.items() if key.startswith(NFD_OWN)}


def test_our_usb_labels_are_those_of_nfds_usb_source(cluster):
    directory = Path(tempfile.mkdtemp(prefix="usb-labels-", dir=cluster.dir))
    directory.chmod(0o755)
    sysfs = make_host(directory / "sys", None, PI4_HUBS + DEVICES)
    for path in SYSFS_SKELETON:
        (sysfs / path).mkdir(parents=True, exist_ok=True)
    (sysfs / USB2 / "2-2" / "idVendor").unlink()
    (sysfs / USB2 / "2-6" / "serial").write_bytes(DEVICES[-1].serial.encode() + b"\n")  # UTF-8, as the kernel writes it
    empty = directory / "empty.d"
    empty.mkdir()
    empty.chmod(0o755)
    features_dir = directory / "features.d"
    features_dir.mkdir()
    features_dir.chmod(0o755)
    done = nfd_hooks("write", "--sysfs", str(sysfs), "--features-dir", str(features_dir), "--no-devicetree",
                     "--no-accelerators", "--usb-label-fields", ",".join(SERIAL_FIELDS))
    assert done.stderr.decode().count("is not a valid label name") == 3

    nfd = published(cluster, "usb-source", empty, sysfs, {
        "core": {"featureSources": ["usb"], "labelSources": ["usb"]},
        "sources": {"usb": {"deviceLabelFields": SERIAL_FIELDS}},
    })
    ours = published(cluster, "usb-ours", features_dir, sysfs, {"core": {"featureSources": ["local"], "labelSources": ["local"]}})
    assert ours == nfd == {
        NFD_OWN + "ff_03e7_2485_ABC-.present": "true",
        NFD_OWN + "fe__089a_.present": "true",
        NFD_OWN + "ff_03e7_2485_-lead.present": "true",
    }
