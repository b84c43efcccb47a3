"""Allocation on the real node (issue 29 item 6): the node's accelerator, the shipped DaemonSets
applied as users apply them, and workloads that print the device nodes they see.

The accelerator is the fixture's Coral (fixtures/accelerators), its /dev made by mknod, under
``NODE_HW`` in the node's private /var/lib. The DaemonSets' two hardware host paths point there,
and ``--host-dev`` says so (the only changes to manifests/allocation); everything else is as shipped:
the kubelet's plugin directories and /var/run/cdi are the node's own. The tree is changed in
place (a plug, an unplug, a re-enumeration under a new device number), then the kernel is made
to send a real uevent (``change`` written to a PCI device's ``uevent``), which reaches the
driver's pod through its own network namespace as a device's would: the driver rescans.
"""

import json
import os
import shutil
import stat
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Tuple

import pytest
import yaml

from tests.allocation.nodes import Node
from tests.conftest import ROOT
from tests.e2e.harness import Cluster, wait_for
from tests.e2e.node import RealNode
from tests.realnode.conftest import HOOK_IMAGE, REPORT, _build, _podman

NODE_HW = "/var/lib/nfd-hooks-allocation"
NAMESPACE = "node-feature-discovery"
DRIVER = "accelerator.nfd-hooks.io"


def image_names() -> Tuple[str, ...]:
    """The names manifests/allocation's two kustomizations give our image, read from them (as
    tests/realnode/conftest.py's ``hook_names``: a hard-coded copy can go stale)."""
    names = set()
    for root in ("manifests/allocation", "manifests/allocation/device-plugin"):
        kustomization = yaml.safe_load((ROOT / root / "kustomization.yaml").read_text())
        names |= {f"{i['newName']}:{i['newTag']}" for i in kustomization["images"] if i["name"] == "nfd-hooks"}
    return tuple(sorted(names))


IMAGE_NAMES = image_names()
IMAGE = IMAGE_NAMES[0]  # the workloads run our image too: it has python3 to list the devices they see
# Prints every character device the container sees, as JSON on one line, then waits.
LIST_DEVICES = (
    "import json, os, stat, sys, time\n"
    "found = []\n"
    "for top, dirs, files in os.walk('/dev'):\n"
    "    for name in files:\n"
    "        path = os.path.join(top, name)\n"
    "        try:\n"
    "            st = os.lstat(path)\n"
    "        except OSError:\n"
    "            continue\n"
    "        if stat.S_ISCHR(st.st_mode):\n"
    "            found.append([path, os.major(st.st_rdev), os.minor(st.st_rdev)])\n"
    "print('DEVICES ' + json.dumps(sorted(found)), flush=True)\n"
    "time.sleep(1e9)\n"
)


class Hardware:
    """The node's accelerators: ``NODE_HW``/sys and /dev, rewritten in place."""

    def __init__(self, node: RealNode) -> None:
        self.root = node.host_path(NODE_HW)
        self.sys, self.dev = self.root / "sys", self.root / "dev"
        for directory in (self.sys, self.dev):
            directory.mkdir(parents=True, exist_ok=True)
        self.states = Node(self.root / "build")

    def show(self, where: Path) -> None:
        """The node now has what state ``where`` has (dev first: a device is seen with its node)."""
        for name in ("dev", "sys"):
            target = self.root / name
            for child in list(target.iterdir()):
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
            _copy(where / name, target)
        kernel_uevent()

    def plug(self, state: str = "coral-usb-after-firmware") -> None:
        self.show(self.states.state(state))

    def unplug(self) -> None:
        self.show(self.states.bare())

    def reenumerate(self, devnum: int, state: str = "coral-usb-after-firmware") -> None:
        self.show(self.states.reenumerated(state, devnum))


def _copy(source: Path, target: Path) -> None:
    """``source``'s tree into ``target``: directories, symlinks as links, character devices by mknod."""
    for entry in os.scandir(source):
        destination = target / entry.name
        status = entry.stat(follow_symlinks=False)
        if entry.is_symlink():
            destination.symlink_to(os.readlink(entry.path))
        elif stat.S_ISDIR(status.st_mode):
            destination.mkdir()
            _copy(Path(entry.path), destination)
        elif stat.S_ISCHR(status.st_mode):
            os.mknod(destination, status.st_mode, status.st_rdev)
        else:
            shutil.copy2(entry.path, destination)


def kernel_uevent() -> None:
    """A real uevent of subsystem pci from the kernel: what the driver wakes for."""
    devices = sorted(Path("/sys/bus/pci/devices").iterdir())
    (devices[0] / "uevent").write_text("change")


def apply_with_hardware(cluster: Cluster, root: str, work: Path) -> Path:
    """``kubectl apply -k`` of manifests root ``root`` with the DaemonSet's hardware paths at NODE_HW."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "hardware.yaml").write_text(json.dumps({
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "any"},
        "spec": {"template": {"spec": {"volumes": [
            {"name": "host-sys", "hostPath": {"path": f"{NODE_HW}/sys"}},
            {"name": "host-dev", "hostPath": {"path": f"{NODE_HW}/dev"}},
        ]}}},
    }))
    base = os.path.relpath(ROOT / root, work)  # kustomize takes relative paths to a base
    # The host's own path to the device nodes (CDI specs, Allocate answers) is where the
    # host-dev hostPath points: the runtime looks there for a node the kubelet names.
    (work / "kustomization.yaml").write_text(
        f"resources:\n- {base}\npatches:\n- path: hardware.yaml\n  target:\n    kind: DaemonSet\n"
        f"- target:\n    kind: DaemonSet\n  patch: |-\n    - op: add\n      path: /spec/template/spec/containers/0/args/-\n"
        f"      value: --host-dev={NODE_HW}/dev\n")
    cluster.kubectl("apply", "-k", str(work))
    return work


def workload(name: str, claim_template: Optional[str] = None, extended: Optional[str] = None) -> Dict[str, Any]:
    """A pod whose container prints the character devices it sees: with one claim from
    ``claim_template``, or one ``extended`` resource, or neither (the baseline)."""
    container: Dict[str, Any] = {"name": "inference", "image": IMAGE, "command": ["python3", "-c", LIST_DEVICES]}
    spec: Dict[str, Any] = {"containers": [container], "terminationGracePeriodSeconds": 1}
    if claim_template:
        spec["resourceClaims"] = [{"name": "tpu", "resourceClaimTemplateName": claim_template}]
        container["resources"] = {"claims": [{"name": "tpu"}]}
    if extended:
        container["resources"] = {"limits": {extended: 1}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def pod(cluster: Cluster, name: str) -> Optional[Dict[str, Any]]:
    done = cluster.kubectl("get", "pod", name, "-n", "default", "-o", "json", check=False)
    return json.loads(done.stdout) if done.returncode == 0 else None


def state(cluster: Cluster, name: str) -> str:
    """Running, Pending (unschedulable: with the scheduler's reason), Gone, or what else it is."""
    found = pod(cluster, name)
    if found is None:
        return "Gone"
    if found["metadata"].get("deletionTimestamp"):
        return "Terminating"
    phase = found.get("status", {}).get("phase", "")
    scheduled = {c["type"]: c for c in found.get("status", {}).get("conditions", [])}.get("PodScheduled", {})
    if scheduled.get("reason") == "Unschedulable":
        return "Pending: " + scheduled.get("message", "")
    if phase == "Running" and all(s.get("ready") for s in found["status"].get("containerStatuses", [])):
        return "Running"
    return phase or "?"


def container_log(node: RealNode, pod_name: str, namespace: str = "default") -> Optional[str]:
    """The log of the newest container of pod ``pod_name``, read from containerd (crictl): the
    API server cannot reach the kubelet by the node's name here (no DNS in the namespace)."""
    done = node.crictl("ps", "-a", "--pod", _pod_id(node, pod_name, namespace) or "none", "-q", check=False)
    ids = done.stdout.split()
    if done.returncode != 0 or not ids:
        return None
    logs = node.crictl("logs", ids[0], check=False)
    return logs.stdout + logs.stderr


def _pod_id(node: RealNode, name: str, namespace: str) -> Optional[str]:
    done = node.crictl("pods", "--name", f"^{name}$", "--namespace", namespace, "--state", "ready", "-q", check=False)
    ids = done.stdout.split()
    return ids[0] if ids else None


def devices_seen(node: RealNode, name: str) -> Set[Tuple[str, int, int]]:
    """The character devices pod ``name``'s container printed (path, major, minor)."""
    def printed() -> Optional[str]:
        lines = [line for line in (container_log(node, name) or "").splitlines() if line.startswith("DEVICES ")]
        return lines[-1] if lines else None

    line = wait_for(f"pod {name} to print its devices", printed, timeout=60, interval=0.5)
    return {(path, major, minor) for path, major, minor in json.loads(line[len("DEVICES "):])}


def offered(cluster: Cluster, node: str) -> Optional[Dict[str, List[str]]]:
    """Device name -> its taints' effects, in the node's ResourceSlice of our driver; None without one."""
    done = cluster.kubectl("get", "resourceslices", f"{node}-{DRIVER}", "-o", "json", check=False)
    if done.returncode != 0:
        return None
    body = json.loads(done.stdout)
    return {d["name"]: [t["effect"] for t in d.get("taints") or []] for d in body["spec"].get("devices") or []}


def driver_pod(cluster: Cluster, app: str = "nfd-hooks-dra-driver") -> Optional[Dict[str, Any]]:
    done = cluster.kubectl("get", "pods", "-n", NAMESPACE, "-l", f"app={app}", "-o", "json", check=False)
    items = json.loads(done.stdout)["items"] if done.returncode == 0 else []
    running = [p for p in items if p.get("status", {}).get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")]
    return running[0] if running else None


def driver_log(cluster: Cluster, node: RealNode, app: str = "nfd-hooks-dra-driver") -> str:
    found = driver_pod(cluster, app)
    if found is None:
        return "(no running pod)"
    return container_log(node, found["metadata"]["name"], NAMESPACE) or "(no log)"


def node_path_text(node: RealNode, path: str) -> Optional[str]:
    try:
        return node.host_path(path).read_text()
    except OSError:
        return None


def cdi_specs(node: RealNode) -> Dict[str, Dict[str, Any]]:
    """The CDI specs of ours in the node's /var/run/cdi, by file name."""
    directory = node.host_path("/run/cdi")
    if not directory.is_dir():
        return {}
    return {p.name: json.loads(p.read_text()) for p in sorted(directory.glob("nfd-hooks.io-accelerator_*.json"))}


def spec_nodes(spec: Dict[str, Any]) -> List[str]:
    return [n["path"] for n in spec["devices"][0]["containerEdits"]["deviceNodes"]]


def timed(what: str, probe, timeout: float = 120.0) -> Tuple[Any, float]:
    """``wait_for``, and how long it took."""
    started = time.monotonic()
    value = wait_for(what, probe, timeout=timeout, interval=0.2)
    return value, time.monotonic() - started


_ARCHIVE: List[Path] = []  # built once per session: each test module imports the fixture anew


@pytest.fixture(scope="session")
def hook_archive(binaries, tmp_path_factory) -> Path:
    """Our image (scripts/build-image), saved once for every real node of the allocation tests."""
    if _ARCHIVE:
        return _ARCHIVE[0]
    if not any(Path(d, "podman").exists() for d in os.environ.get("PATH", "").split(os.pathsep)):
        pytest.skip("podman not installed (scripts/system-packages.txt)")
    image_id, took = _build("build-image", HOOK_IMAGE)
    archive = tmp_path_factory.mktemp("allocation-image") / "nfd-hooks.tar"
    _podman("save", "--format", "oci-archive", "-o", str(archive), HOOK_IMAGE)
    REPORT.append(("realnode: allocation image",
                   [f"{HOOK_IMAGE} ({image_id[:12]}, scripts/build-image amd64, {took:.0f} s), imported as {', '.join(IMAGE_NAMES)}"]))
    _ARCHIVE.append(archive)
    return archive


class Setup:
    """A real node's cluster ready for allocation: our image imported, the Coral's tree, the
    driver's namespace, the examples' ResourceClaimTemplate (``one-edgetpu``)."""

    def __init__(self, cluster: Cluster, node: RealNode, archive: Path) -> None:
        self.cluster, self.node = cluster, node
        node.load_image(archive, IMAGE_NAMES)
        self.hardware = Hardware(node)
        self.work = cluster.dir / "allocation"
        cluster.kubectl("create", "namespace", NAMESPACE)
        cluster.kubectl("apply", "-f", str(ROOT / "manifests" / "allocation" / "examples" / "edgetpu-claim-template.yaml"))
        wait_for("the default service account", lambda: cluster.kubectl(
            "get", "serviceaccount", "default", "-n", "default", check=False).returncode == 0, timeout=120)

    def wait(self, what: str, probe, timeout: float = 120.0):
        """``wait_for`` with the driver's log and the pods in the failure."""
        try:
            return wait_for(what, probe, timeout=timeout, interval=0.5)
        except TimeoutError as error:
            pods = self.cluster.kubectl("get", "pods", "-A", "-o", "wide", check=False).stdout
            raise AssertionError(f"{error}\npods:\n{pods}\ndriver log:\n{driver_log(self.cluster, self.node)[-4000:]}") from None
