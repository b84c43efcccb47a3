"""Allocation end to end on the real node with DRADeviceTaints on (issue 29 item 6):
kube-controller-manager's ResourceClaim and device-taint-eviction controllers, kube-scheduler's
DRA plugin, the kubelet's DRA manager, containerd 2.2 with CDI, and our driver as the DaemonSet
of manifests/allocation runs it (tests/realnode/allocation.py says what differs: the two
hardware host paths).

The driver publishes the Coral; of two pods each claiming an Edge TPU (the ResourceClaimTemplate
of manifests/allocation/examples) one runs and sees exactly the stick's device node, the other
stays Pending; the stick re-enumerating under a new device number keeps the allocation (the CDI
spec follows); a restarted driver keeps the prepared claim (the second pod still waits, and gets
the stick, with its new node, once the first is gone); an unplug evicts the pod using it.
test_allocation_ungated.py has the gate off and the device plugin.
"""

import time
from typing import Iterator, List

import pytest

from tests.e2e.node import NodeOptions, real_node_cluster
from tests.realnode import allocation as hw
from tests.realnode.allocation import Setup, hook_archive  # noqa: F401 (a fixture)
from tests.realnode.conftest import REPORT

NODE = "realnode-coral"
LINES: List[str] = []
TPU = "/dev/bus/usb/002/002"  # the fixture's Coral after its firmware: bus 2, device 2, 189:129


@pytest.fixture(scope="module")
def gated(binaries, hook_archive) -> Iterator[Setup]:
    with real_node_cluster(binaries, feature_gates={"DRADeviceTaints": True}, node=NodeOptions(name=NODE)) as (cluster, node):
        yield Setup(cluster, node, hook_archive)
    REPORT.append(("realnode: allocation, DRADeviceTaints on (issue 29 item 6)", LINES))


def test_the_driver_publishes_the_coral(gated):
    gated.hardware.plug()
    hw.apply_with_hardware(gated.cluster, "manifests/allocation", gated.work / "dra")
    gated.wait("the driver's pod Running", lambda: hw.driver_pod(gated.cluster))
    gated.wait("the Coral offered", lambda: hw.offered(gated.cluster, NODE) == {"usb-2-1": []})
    gated.wait("the kubelet's registration", lambda: "registered with the kubelet" in hw.driver_log(gated.cluster, gated.node))
    LINES.append(f"DRADeviceTaints on: the driver's DaemonSet pod Running, ResourceSlice {NODE}-{hw.DRIVER} offers usb-2-1")


def test_one_claim_gets_the_stick_and_sees_exactly_its_node(gated):
    cluster = gated.cluster
    cluster.apply(hw.workload("baseline"))
    cluster.apply(hw.workload("tpu-1", claim_template="one-edgetpu"))
    assert gated.wait("tpu-1 Running", lambda: hw.state(cluster, "tpu-1") == "Running")
    cluster.apply(hw.workload("tpu-2", claim_template="one-edgetpu"))
    second = gated.wait("tpu-2 unschedulable", lambda: hw.state(cluster, "tpu-2") if hw.state(cluster, "tpu-2").startswith("Pending") else None)
    assert "cannot allocate all claims" in second, second
    gated.wait("baseline Running", lambda: hw.state(cluster, "baseline") == "Running")
    baseline = hw.devices_seen(gated.node, "baseline")
    seen = hw.devices_seen(gated.node, "tpu-1")
    assert seen - baseline == {(TPU, 189, 129)}, seen - baseline
    assert baseline <= seen
    specs = hw.cdi_specs(gated.node)
    assert [hw.spec_nodes(s) for s in specs.values()] == [[TPU]]
    LINES.append(f"pod tpu-1 Running with its claim's device; it sees {sorted(seen - baseline)} beyond a claimless pod's "
                 f"{len(baseline)} character devices")
    LINES.append(f"pod tpu-2 (same template): {second}")


def test_re_enumeration_keeps_the_allocation(gated):
    cluster = gated.cluster
    started = hw.pod(cluster, "tpu-1")["status"]["containerStatuses"][0]["containerID"]
    gated.hardware.unplug()  # the stick resets: gone for a moment...
    time.sleep(1)
    gated.hardware.reenumerate(7)  # ... and back on port 2-1 as device 7
    gated.wait("the CDI spec to follow", lambda: [hw.spec_nodes(s) for s in hw.cdi_specs(gated.node).values()] == [["/dev/bus/usb/002/007"]])
    time.sleep(8)  # past the 5 s grace period
    assert hw.offered(cluster, NODE) == {"usb-2-1": []}
    assert hw.state(cluster, "tpu-1") == "Running"
    assert hw.pod(cluster, "tpu-1")["status"]["containerStatuses"][0]["containerID"] == started
    assert hw.state(cluster, "tpu-2").startswith("Pending")
    assert "re-enumerated: its CDI spec now names bus/usb/002/007" in hw.driver_log(cluster, gated.node)
    LINES.append("re-enumeration (device 2 -> 7 on port 2-1): usb-2-1 never left the slice, tpu-1 kept it (same container), "
                 "its CDI spec now names /dev/bus/usb/002/007; tpu-2 still Pending")


def test_a_restarted_driver_keeps_the_prepared_claim(gated):
    cluster = gated.cluster
    old = hw.driver_pod(cluster)["metadata"]["name"]
    cluster.kubectl("delete", "pod", "-n", hw.NAMESPACE, old, "--wait=true", "--timeout=60s")
    gated.wait("a new driver pod", lambda: (hw.driver_pod(cluster) or {"metadata": {"name": old}})["metadata"]["name"] != old)
    gated.wait("registered again", lambda: "registered with the kubelet" in hw.driver_log(cluster, gated.node))
    log = hw.driver_log(cluster, gated.node)
    assert "unusable" not in log and "adopted" not in log, log  # the checkpoint was read as it was
    assert hw.state(cluster, "tpu-1") == "Running" and hw.state(cluster, "tpu-2").startswith("Pending")
    cluster.kubectl("delete", "pod", "tpu-1", "-n", "default", "--wait=true", "--timeout=120s")
    assert gated.wait("tpu-2 Running", lambda: hw.state(cluster, "tpu-2") == "Running")
    seen = hw.devices_seen(gated.node, "tpu-2") - hw.devices_seen(gated.node, "baseline")
    assert seen == {("/dev/bus/usb/002/007", 189, 134)}, seen
    LINES.append(f"driver pod {old} deleted: the new one kept tpu-1's claim (tpu-2 still Pending); tpu-1 deleted: the kubelet "
                 f"unprepared it through the new driver, tpu-2 Running with {sorted(seen)}")


def test_unplug_with_the_gate_evicts(gated):
    cluster = gated.cluster
    gated.hardware.unplug()
    gated.wait("the NoExecute taint", lambda: hw.offered(cluster, NODE) == {"usb-2-1": ["NoExecute"]})
    gated.wait("tpu-2 evicted", lambda: hw.state(cluster, "tpu-2") in ("Gone", "Terminating"))
    gated.wait("the Coral withdrawn", lambda: hw.offered(cluster, NODE) == {}, timeout=180)
    LINES.append("unplug: usb-2-1 tainted NoExecute, kube-controller-manager evicted tpu-2, then the device left the slice")
