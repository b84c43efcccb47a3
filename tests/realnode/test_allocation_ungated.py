"""Allocation end to end on the real node with DRADeviceTaints off (issue 29 item 6), and the
device plugin path: an unplug withdraws the device (no new pod gets it; the running one is not
evicted); through the device plugin one pod gets the stick by its extended resource and sees
exactly its node, a second waits, an unplug makes it Unhealthy (allocatable 0) and evicts nobody.
Runs after test_allocation_gated.py's control plane is gone (one real node at a time).
"""

import json
import time
from typing import Iterator, List

import pytest

from tests.e2e.harness import Cluster
from tests.e2e.node import NodeOptions, real_node_cluster
from tests.realnode import allocation as hw
from tests.realnode.allocation import Setup, hook_archive  # noqa: F401 (a fixture)
from tests.realnode.conftest import REPORT

NODE = "realnode-coral"
LINES: List[str] = []
TPU = "/dev/bus/usb/002/002"  # the fixture's Coral after its firmware: bus 2, device 2, 189:129


@pytest.fixture(scope="module")
def ungated(binaries, hook_archive) -> Iterator[Setup]:
    with real_node_cluster(binaries, node=NodeOptions(name=NODE)) as (cluster, node):
        yield Setup(cluster, node, hook_archive)
    REPORT.append(("realnode: allocation, DRADeviceTaints off, and the device plugin (issue 29 item 6)", LINES))


def test_unplug_without_the_gate_withdraws_the_device(ungated):
    cluster = ungated.cluster
    ungated.hardware.plug()
    hw.apply_with_hardware(cluster, "manifests/allocation", ungated.work / "dra")
    ungated.wait("the Coral offered", lambda: hw.offered(cluster, NODE) == {"usb-2-1": []})
    cluster.apply(hw.workload("tpu-1", claim_template="one-edgetpu"))
    ungated.wait("tpu-1 Running", lambda: hw.state(cluster, "tpu-1") == "Running")
    ungated.hardware.unplug()
    ungated.wait("the Coral withdrawn", lambda: hw.offered(cluster, NODE) == {})
    assert "DRADeviceTaints off" in hw.driver_log(cluster, ungated.node)
    cluster.apply(hw.workload("tpu-2", claim_template="one-edgetpu"))
    second = ungated.wait("tpu-2 unschedulable", lambda: hw.state(cluster, "tpu-2") if hw.state(cluster, "tpu-2").startswith("Pending") else None)
    time.sleep(10)
    assert hw.state(cluster, "tpu-1") == "Running"  # nothing evicts it without the gate
    LINES.append(f"DRADeviceTaints off: unplug withdrew usb-2-1 at once; tpu-1 kept running (not evicted); a new pod: {second}")
    for name in ("tpu-1", "tpu-2"):
        cluster.kubectl("delete", "pod", name, "-n", "default", "--wait=true", "--timeout=120s")
    cluster.kubectl("delete", "-k", str(ungated.work / "dra"), "--wait=true", "--timeout=120s")


def allocatable(cluster: Cluster) -> str:
    node = json.loads(cluster.kubectl("get", "node", NODE, "-o", "json").stdout)
    return node["status"].get("allocatable", {}).get(f"{hw.DRIVER}/edgetpu", "absent")


def test_the_device_plugin_path(ungated):
    cluster = ungated.cluster
    ungated.hardware.plug()
    hw.apply_with_hardware(cluster, "manifests/allocation/device-plugin", ungated.work / "device-plugin")
    ungated.wait("allocatable 1", lambda: allocatable(cluster) == "1")
    cluster.apply(hw.workload("baseline"))
    cluster.apply(hw.workload("plugged-1", extended=f"{hw.DRIVER}/edgetpu"))
    ungated.wait("plugged-1 Running", lambda: hw.state(cluster, "plugged-1") == "Running")
    cluster.apply(hw.workload("plugged-2", extended=f"{hw.DRIVER}/edgetpu"))
    second = ungated.wait("plugged-2 unschedulable", lambda: hw.state(cluster, "plugged-2") if hw.state(cluster, "plugged-2").startswith("Pending") else None)
    ungated.wait("baseline Running", lambda: hw.state(cluster, "baseline") == "Running")
    seen = hw.devices_seen(ungated.node, "plugged-1") - hw.devices_seen(ungated.node, "baseline")
    assert seen == {(TPU, 189, 129)}, seen
    ungated.hardware.unplug()
    ungated.wait("allocatable 0", lambda: allocatable(cluster) == "0")
    assert hw.state(cluster, "plugged-1") == "Running"  # the device plugin API cannot evict
    LINES.append(f"device plugin: plugged-1 Running with {sorted(seen)}; plugged-2: {second}; unplug: allocatable 0, "
                 "plugged-1 still running")
