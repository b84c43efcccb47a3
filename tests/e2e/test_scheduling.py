"""The seeds' workloads and every example in manifests/examples/ against the
real kube-scheduler and nfd-master: each pod binds to exactly the fleet nodes
that should take it and stays Pending elsewhere; the example NodeFeatureRule
labels exactly the boards it names."""

import copy
import json
import subprocess
from typing import Any, Dict, List

import pytest
import yaml

from tests.conftest import ROOT
from tests.e2e.conftest import REPORT
from tests.e2e.fleet import FLEET
from tests.e2e.harness import MASTER_NODE, Cluster, wait_for

EXAMPLES = ROOT / "manifests" / "examples"
EDGETPU_NODES = {"coral-dev-board", "rpi4b-coral-dfu", "rpi4b-coral-tpu"}
# Which nodes must take each pod, from what each node is (fleet.FLEET), not from its labels.
EXPECTED = {
    "rpi4-ncs2-inference": {"rpi4b-ncs2-webcam"},  # a Pi 4B AND an NCS2: not the amd64 server's NCS2
    "edgetpu-workload-affinity": EDGETPU_NODES,  # OR of USB before/after firmware and the Dev Board
    "edgetpu-workload": EDGETPU_NODES,  # the capability label, one nodeSelector
    "edgetpu-ready-workload": {"rpi4b-coral-tpu"},  # usable: only the Coral whose firmware is loaded
}
# boards.example.com/board from nodefeaturerule-board.yaml, by what each board is.
EXPECTED_BOARDS = {
    "rpi4b-ncs2-webcam": "raspberrypi-4b",
    "rpi4b-coral-dfu": "raspberrypi-4b",
    "rpi4b-coral-tpu": "raspberrypi-4b",
    "coral-dev-board": "coral-dev-board",
    "jetson-nano": "jetson-nano",
}
NODES = [node.name for node in FLEET] + [MASTER_NODE]


def example_objects() -> List[Dict[str, Any]]:
    return [doc for path in sorted(EXAMPLES.glob("*.yaml")) if path.name != "kustomization.yaml"
            for doc in yaml.safe_load_all(path.read_text()) if doc]


def example_pods() -> List[Dict[str, Any]]:
    return [doc for doc in example_objects() if doc["kind"] == "Pod"]


def pinned(pod: Dict[str, Any], node: str) -> Dict[str, Any]:
    """``pod`` restricted to one node (its constraints ANDed with the node's hostname),
    so whether it binds says whether that node satisfies the pod."""
    probe = copy.deepcopy(pod)
    probe["metadata"]["name"] = f"{pod['metadata']['name']}--{node}"
    probe["spec"].setdefault("nodeSelector", {})["kubernetes.io/hostname"] = node
    return probe


def placement(cluster: Cluster, name: str) -> Any:
    """The node the scheduler bound pod ``name`` to, "Pending" once it found none, else None (not tried yet)."""
    pod = cluster.get("pod", name)
    if pod["spec"].get("nodeName"):
        return pod["spec"]["nodeName"]
    conditions = {c["type"]: c for c in pod.get("status", {}).get("conditions", [])}
    scheduled = conditions.get("PodScheduled", {})
    return "Pending" if scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable" else None


@pytest.fixture(scope="module")
def placements(cluster, fleet) -> Dict[str, Dict[str, str]]:
    """For each example pod: where each one-node copy went, and where the pod itself went ("as-is")."""
    pods = example_pods()
    for pod in pods:
        cluster.apply(pod)
        for node in NODES:
            cluster.apply(pinned(pod, node))
    result = {}
    for pod in pods:
        name = pod["metadata"]["name"]
        result[name] = {node: wait_for(f"kube-scheduler to place {name}--{node}",
                                       lambda n=node: placement(cluster, f"{name}--{n}"), timeout=60, interval=0.5)
                        for node in NODES}
        result[name]["as-is"] = wait_for(f"kube-scheduler to place {name}", lambda: placement(cluster, name), timeout=60)
    REPORT.append(("e2e scheduling: where kube-scheduler put each example pod", [
        line for name, where in result.items() for line in (
            f"{name}: bound to {where['as-is']}",
            f"    one copy per node: bound on {', '.join(n for n in NODES if where[n] == n) or 'none'};"
            f" Pending on {', '.join(n for n in NODES if where[n] == 'Pending') or 'none'}",
        )
    ]))
    return result


def test_every_example_pod_has_an_expectation():
    assert sorted(pod["metadata"]["name"] for pod in example_pods()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_pod_binds_exactly_where_it_should(placements, name):
    where = placements[name]
    assert {node for node in NODES if where[node] == node} == EXPECTED[name]
    assert {node for node in NODES if where[node] == "Pending"} == set(NODES) - EXPECTED[name]
    assert where["as-is"] in EXPECTED[name]


def test_nvidia_device_plugin_daemonset_lands_on_the_jetson_only(cluster, fleet):
    """NVIDIA's DaemonSet with its chart's own affinity (manifests/examples/nvidia-device-plugin-jetson.yaml).

    No DaemonSet controller runs here, so the test does its part: one pod per node
    from the template (as the controller makes them), pinned to that node by
    hostname; the real kube-scheduler then decides, with the chart's nodeAffinity
    and tolerations, whether the pod fits. The Jetson Nano fits by
    nvidia.com/gpu.present=true, which nfd-hooks wrote from Debian's Nano DTB with
    --compat-labels; no other fleet node has a label any of the chart's terms asks for.
    """
    (daemonset,) = [doc for doc in example_objects() if doc["kind"] == "DaemonSet"]
    namespace = daemonset["metadata"]["namespace"]
    # No kube-controller-manager makes the namespace's default ServiceAccount, which admission requires.
    cluster.kubectl("create", "serviceaccount", "default", "--namespace", namespace, check=False)
    name = daemonset["metadata"]["name"]
    template = daemonset["spec"]["template"]
    for node in NODES:
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": f"{name}--{node}", "namespace": namespace, "labels": template["metadata"]["labels"]},
               "spec": copy.deepcopy(template["spec"])}
        pod["spec"].setdefault("nodeSelector", {})["kubernetes.io/hostname"] = node
        cluster.apply(pod)

    def where(node: str) -> Any:
        found = cluster.get("pod", f"{name}--{node}", "-n", namespace)
        if found["spec"].get("nodeName"):
            return found["spec"]["nodeName"]
        conditions = {c["type"]: c for c in found.get("status", {}).get("conditions", [])}
        scheduled = conditions.get("PodScheduled", {})
        return "Pending" if scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable" else None

    placed = {node: wait_for(f"kube-scheduler to place {name}--{node}", lambda n=node: where(n), timeout=60, interval=0.5)
              for node in NODES}
    assert fleet["jetson-nano"].labels["nvidia.com/gpu.present"] == "true"
    assert {node for node, at in placed.items() if at == node} == {"jetson-nano"}
    assert {node for node, at in placed.items() if at == "Pending"} == set(NODES) - {"jetson-nano"}
    REPORT.append((f"e2e NVIDIA device plugin DaemonSet ({namespace}/{name}), its chart's own affinity", [
        f"one pod per node: bound on {', '.join(n for n in NODES if placed[n] == n)};"
        f" Pending on {', '.join(n for n in NODES if placed[n] == 'Pending')}",
    ]))


def test_example_nodefeaturerule_labels_the_boards_it_names(cluster, fleet):
    (rule,) = [doc for doc in example_objects() if doc["kind"] == "NodeFeatureRule"]
    cluster.apply(rule)
    key = "boards.example.com/board"

    def boards() -> Dict[str, str]:
        return {name: labels[key] for name in NODES if key in (labels := cluster.node_labels(name))}

    def all_named() -> Dict[str, str]:
        found = boards()
        return found if set(found) >= set(EXPECTED_BOARDS) else {}

    found = wait_for("nfd-master to apply the NodeFeatureRule", all_named, timeout=60, interval=0.5)
    assert found == EXPECTED_BOARDS
    REPORT.append(("e2e NodeFeatureRule nfd-hooks-boards", [f"{name}: {key}={value}" for name, value in sorted(found.items())]))
    cluster.kubectl("delete", "nodefeaturerule", rule["metadata"]["name"])


@pytest.mark.parametrize("name", [node.name for node in FLEET])
def test_kubectl_nfd_dryrun_agrees_with_nfd_master(cluster, fleet, e2e_binaries, tmp_path, name):
    """NFD's offline rule check, on the NodeFeature the worker published, gives the label the master applied."""
    published = tmp_path / "nodefeature.json"
    published.write_text(json.dumps(cluster.node_feature(name)))
    done = subprocess.run([str(e2e_binaries["kubectl-nfd"]), "dryrun", "-f", str(EXAMPLES / "nodefeaturerule-board.yaml"),
                           "-n", str(published)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    labels = done.stdout.split("***\tLabels\t***\n", 1)[1].splitlines() if "***\tLabels\t***" in done.stdout else []
    dry = [line for line in labels if line.startswith("boards.example.com/")]
    assert dry == ([f"boards.example.com/board={EXPECTED_BOARDS[name]}"] if name in EXPECTED_BOARDS else [])
