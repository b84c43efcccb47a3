"""manifests/examples: the capability nodeSelector schedules on every form of Edge TPU;
the seeds' OR affinity it replaces misses the PCIe card."""

from pathlib import Path
from typing import Callable, Dict

import pytest

from nfd_hooks import api
from tests.fakehost import add_pci_device
from tests.fakehost import add_usb_xhci as add_usb_device
from tests.conftest import DTB_DIR, ROOT

yaml = pytest.importorskip("yaml")  # PyYAML: scripts/test-requirements.txt

EXAMPLES = ROOT / "manifests" / "examples"


def pod_spec(name: str) -> dict:
    (document,) = [d for d in yaml.safe_load_all((EXAMPLES / name).read_text(encoding="utf-8")) if d]
    assert document["kind"] == "Pod"
    return document["spec"]


def schedules(spec: dict, labels: Dict[str, str]) -> bool:
    """Kubernetes' rule: every nodeSelector pair, and any one of the required terms."""
    if any(labels.get(key) != value for key, value in spec.get("nodeSelector", {}).items()):
        return False
    affinity = spec.get("affinity", {}).get("nodeAffinity", {})
    terms = affinity.get("requiredDuringSchedulingIgnoredDuringExecution", {}).get("nodeSelectorTerms")
    if terms is None:
        return True
    operators = {"In": lambda e: labels.get(e["key"]) in e["values"], "Exists": lambda e: e["key"] in labels}
    return any(all(operators[e["operator"]](e) for e in term["matchExpressions"]) for term in terms)


def usb_host(vendor: str, product: str, interface_class: str) -> Callable[[Path], api.Options]:
    def make(sysfs: Path) -> api.Options:
        add_usb_device(sysfs, "1-1", vendor, product, "00", [interface_class])
        return api.Options(sysfs=sysfs, use_devicetree=False)

    return make


def pcie_host(sysfs: Path) -> api.Options:
    add_pci_device(sysfs, "0000:01:00.0", "1ac1", "089a")
    return api.Options(sysfs=sysfs, use_devicetree=False, use_usb=False)


def dev_board(sysfs: Path) -> api.Options:
    return api.Options(sysfs=sysfs, devicetree=DTB_DIR / "coral-dev-board.dtb", use_usb=False)


def plain_pi(sysfs: Path) -> api.Options:
    return api.Options(sysfs=sysfs, devicetree=DTB_DIR / "rpi-4-b.dtb", use_usb=False)


HOSTS = {
    "usb-before-firmware": (usb_host("1a6e", "089a", "fe"), True, True),
    "usb-after-firmware": (usb_host("18d1", "9302", "ff"), True, True),
    "pcie-card": (pcie_host, True, False),
    "coral-dev-board": (dev_board, True, True),
    "raspberry-pi-without-tpu": (plain_pi, False, False),
}


@pytest.mark.parametrize("host", sorted(HOSTS))
def test_where_each_edgetpu_workload_lands(tmp_path, host):
    make, capability, affinity = HOSTS[host]
    labels = {f.name: f.value for f in api.scan(make(tmp_path)).features if f.label}
    assert schedules(pod_spec("edgetpu-workload.yaml"), labels) is capability
    assert schedules(pod_spec("edgetpu-workload-affinity.yaml"), labels) is affinity


def test_the_capability_workload_is_a_plain_node_selector():
    spec = pod_spec("edgetpu-workload.yaml")
    assert spec["nodeSelector"] == {"accelerator.feature.node.kubernetes.io/edgetpu.present": "true"}
    assert "affinity" not in spec


# Issue 17: a workload on edgetpu.ready, and NVIDIA's device-plugin DaemonSet on the compatibility label.

def daemonset_pod_spec(name: str) -> dict:
    (document,) = [d for d in yaml.safe_load_all((EXAMPLES / name).read_text(encoding="utf-8")) if d]
    assert document["kind"] == "DaemonSet"
    return document["spec"]["template"]["spec"]


def state_labels(tmp_path: Path, name: str, *extra: str) -> Dict[str, str]:
    from tests.accelerators.test_readiness import show_state

    return show_state(tmp_path, name, *extra)


@pytest.mark.parametrize("state,lands", [
    ("coral-usb-before-firmware", False), ("coral-usb-after-firmware", True),
    ("coral-pcie-unbound", False), ("coral-pcie-apex-no-dev", False), ("coral-pcie-apex", True),
    ("coral-dev-board-apex", True), ("ncs2-booted", False),
])
def test_the_ready_workload_waits_for_a_usable_edgetpu(tmp_path, state, lands):
    labels = state_labels(tmp_path, state)
    assert schedules(pod_spec("edgetpu-ready-workload.yaml"), labels) is lands
    assert schedules(pod_spec("edgetpu-workload.yaml"), labels) is state.startswith("coral")


@pytest.mark.parametrize("state", ["jetson-nano-unbound", "jetson-nano-l4t-gk20a", "hailo8-bound", "coral-pcie-apex"])
def test_nvidia_device_plugin_lands_on_a_jetson_only_with_compat_labels(tmp_path, state):
    spec = daemonset_pod_spec("nvidia-device-plugin-jetson.yaml")
    assert schedules(spec, state_labels(tmp_path / "plain", state)) is False
    assert schedules(spec, state_labels(tmp_path / "compat", state, "--compat-labels")) is state.startswith("jetson")
