"""The DRA driver against the real kube-apiserver and kube-scheduler v1.35.3 (issue 29 item 2's
API shapes, before the real-node end to end of item 6): the ResourceSlice it publishes is
accepted and stored as sent (resource.k8s.io/v1); the DeviceClasses of manifests/allocation
compile and select by catalog id, so the scheduler allocates the one Coral to one claim and
leaves a second pod Pending; NodePrepareResources reads the allocation from the API server
with the RBAC of manifests/allocation; an unplugged device is tainted NoExecute where
DRADeviceTaints is on (the API server keeps the taint and the scheduler allocates it to no
new claim) and withdrawn at once where it is off.

No kubelet runs here: the tests make its gRPC calls (tests/e2e/dra.py), and pods are bound,
never run. The device is the accelerator fixture's Coral, with its /dev made by mknod.
"""

import json
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from tests.allocation.upstream import compile_protos, kubelet_apis
from tests.e2e import dra
from tests.e2e.conftest import REPORT
from tests.e2e.harness import Cluster, wait_for

NAMESPACE = dra.NAMESPACE_E2E
CORAL_NODE = "dra-coral"
LINES = []


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    return compile_protos(kubelet_apis(), tmp_path_factory.mktemp("protos"))


@pytest.fixture(scope="module")
def setup(cluster, upstream):
    made = dra.CoralNode(cluster, upstream, CORAL_NODE)
    yield made
    made.close()
    REPORT.append(("e2e: the DRA driver against kube-apiserver and kube-scheduler v1.35.3", LINES))


def test_the_slice_is_stored_as_published(setup, upstream):
    info = setup.kubelet.register()
    assert (info.type, info.name, list(info.supported_versions)) == ("DRAPlugin", dra.DRIVER, ["v1.DRAPlugin"])
    stored = setup.wait("the ResourceSlice", lambda: dra.slice_of(setup.cluster, CORAL_NODE))
    node = setup.cluster.get("node", CORAL_NODE)
    assert stored["apiVersion"] == "resource.k8s.io/v1"
    assert stored["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Node", "name": CORAL_NODE, "uid": node["metadata"]["uid"], "controller": True}]
    spec = stored["spec"]
    assert (spec["driver"], spec["nodeName"], spec["pool"]["name"], spec["pool"]["resourceSliceCount"]) == (
        dra.DRIVER, CORAL_NODE, CORAL_NODE, 1)
    assert spec["devices"] == [{"name": "usb-2-1", "attributes": {
        "id": {"string": "edgetpu"}, "bus": {"string": "usb"}, "attachment": {"string": "2-1"},
        "vendorProduct": {"string": "18d1:9302"}, "kernelDriver": {"string": "usb"}, "ready": {"bool": True},
    }}]
    LINES.append(f"ResourceSlice {stored['metadata']['name']} stored: devices {[d['name'] for d in spec['devices']]}, "
                 f"pool generation {spec['pool']['generation']}, owned by Node {CORAL_NODE}")


def test_device_classes_compile_select_by_id_and_one_stick_goes_to_one_claim(setup):
    for device_class in ("edgetpu", "hailo", "movidius-vpu", "nvidia-igpu"):
        stored = setup.cluster.get("deviceclass", f"{device_class}.{dra.DRIVER}")
        assert f'.id == "{device_class}"' in stored["spec"]["selectors"][0]["cel"]["expression"]
    for name, device_class in (("tpu-a", "edgetpu"), ("tpu-b", "edgetpu"), ("vpu", "movidius-vpu")):
        setup.claim(name, device_class)
    setup.pod("tpu-a", "tpu-a")
    assert wait_for("pod tpu-a placed", lambda: setup.placement("tpu-a"), timeout=60) == CORAL_NODE
    setup.pod("tpu-b", "tpu-b")
    setup.pod("vpu", "vpu")
    second = wait_for("pod tpu-b placed", lambda: setup.placement("tpu-b"), timeout=60)
    vpu = wait_for("pod vpu placed", lambda: setup.placement("vpu"), timeout=60)
    assert second.startswith("Pending") and vpu.startswith("Pending")
    claim = setup.cluster.get("resourceclaim", "tpu-a", "-n", NAMESPACE)
    results = claim["status"]["allocation"]["devices"]["results"]
    assert [(r["request"], r["driver"], r["pool"], r["device"]) for r in results] == [("tpu", dra.DRIVER, CORAL_NODE, "usb-2-1")]
    assert not setup.cluster.get("resourceclaim", "tpu-b", "-n", NAMESPACE).get("status", {}).get("allocation")
    LINES.append(f"pod tpu-a bound to {CORAL_NODE}, claim tpu-a allocated usb-2-1 (class edgetpu.{dra.DRIVER})")
    LINES.append(f"pod tpu-b (the same class): {second}")
    LINES.append(f"pod vpu (class movidius-vpu.{dra.DRIVER}, no such device): {vpu}")


def test_prepare_reads_the_allocation_from_the_api_server(setup):
    allocated = setup.cluster.get("resourceclaim", "tpu-a", "-n", NAMESPACE)
    unallocated = setup.cluster.get("resourceclaim", "tpu-b", "-n", NAMESPACE)
    answers = setup.kubelet.prepare(allocated, unallocated)
    uid = allocated["metadata"]["uid"]
    assert answers[uid].error == ""
    assert [(d.device_name, d.pool_name, list(d.cdi_device_ids)) for d in answers[uid].devices] == [
        ("usb-2-1", CORAL_NODE, [f"nfd-hooks.io/accelerator={uid}-usb-2-1"])]
    assert answers[unallocated["metadata"]["uid"]].error == f"the ResourceClaim has no device of driver {dra.DRIVER}"
    spec = json.loads((setup.driver.cdi / f"nfd-hooks.io-accelerator_{uid}_usb-2-1.json").read_text())
    assert [n["path"] for n in spec["devices"][0]["containerEdits"]["deviceNodes"]] == ["/dev/bus/usb/002/002"]
    assert "forbidden" not in setup.driver.log().lower()
    LINES.append(f"NodePrepareResources(tpu-a): {answers[uid].devices[0].cdi_device_ids[0]}, CDI spec with /dev/bus/usb/002/002; "
                 f"(tpu-b): {answers[unallocated['metadata']['uid']].error}")
    assert setup.kubelet.unprepare(allocated)[uid].error == ""


def test_unplug_without_the_gate_withdraws_the_device_at_once(setup):
    setup.node.become(setup.node.bare())
    setup.wait("the Coral withdrawn", lambda: dra.offered(setup.cluster, CORAL_NODE) == {})
    assert "the API server dropped the device taints (DRADeviceTaints off)" in setup.driver.log()
    setup.node.become(setup.node.reenumerated("coral-usb-after-firmware", 5))
    setup.wait("the Coral back", lambda: dra.offered(setup.cluster, CORAL_NODE) == {"usb-2-1": []})
    LINES.append("DRADeviceTaints off: unplugged usb-2-1 left the slice (the API server dropped the taint); back on re-plug")


@pytest.fixture(scope="module")
def gated(e2e_binaries, upstream):
    """A second control plane with DRADeviceTaints on (alpha in 1.35)."""
    directory = Path(tempfile.mkdtemp(prefix="nfd-hooks-e2e-gated-"))
    directory.chmod(0o755)
    cluster = Cluster(e2e_binaries, directory, feature_gates={"DRADeviceTaints": True})
    try:
        cluster.start()
        made = dra.CoralNode(cluster, upstream, CORAL_NODE, (*dra.FAST, "--taint-window", "3"))
        try:
            yield made
        finally:
            made.close()
    finally:
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


def test_unplug_with_the_gate_taints_no_execute_until_unprepared(gated):
    gated.kubelet.register()
    gated.wait("the Coral offered", lambda: dra.offered(gated.cluster, CORAL_NODE) == {"usb-2-1": []})
    gated.claim("tpu-a", "edgetpu")
    gated.pod("tpu-a", "tpu-a")
    assert wait_for("pod tpu-a placed", lambda: gated.placement("tpu-a"), timeout=60) == CORAL_NODE
    claim = gated.cluster.get("resourceclaim", "tpu-a", "-n", NAMESPACE)
    assert gated.kubelet.prepare(claim)[claim["metadata"]["uid"]].error == ""
    gated.node.become(gated.node.bare())
    gated.wait("the taint", lambda: dra.offered(gated.cluster, CORAL_NODE) == {"usb-2-1": ["NoExecute"]})
    taint = dra.slice_of(gated.cluster, CORAL_NODE)["spec"]["devices"][0]["taints"][0]
    assert (taint["key"], taint["value"], taint["effect"]) == (f"{dra.DRIVER}/unplugged", "true", "NoExecute")
    assert taint.get("timeAdded")  # set by the API server
    # The scheduler allocates a tainted device to no new claim.
    gated.claim("tpu-b", "edgetpu")
    gated.pod("tpu-b", "tpu-b")
    assert wait_for("pod tpu-b placed", lambda: gated.placement("tpu-b"), timeout=60).startswith("Pending")
    # Held by tpu-a: still tainted after the taint window; withdrawn once the kubelet unprepares it.
    time.sleep(4)
    assert dra.offered(gated.cluster, CORAL_NODE) == {"usb-2-1": ["NoExecute"]}
    assert gated.kubelet.unprepare(claim)[claim["metadata"]["uid"]].error == ""
    gated.wait("the Coral withdrawn", lambda: dra.offered(gated.cluster, CORAL_NODE) == {})
    LINES.append("DRADeviceTaints on: unplugged usb-2-1 stayed in the slice tainted "
                 f"{taint['key']}={taint['value']}:{taint['effect']} (timeAdded {taint['timeAdded']}) while claim tpu-a held it; "
                 "pod tpu-b stayed Pending; withdrawn after NodeUnprepareResources")
