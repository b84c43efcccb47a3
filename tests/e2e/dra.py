"""The DRA driver against the real control plane (tests/e2e/harness.py): its RBAC and
DeviceClasses from manifests/allocation, a token of its service account, the driver
(``nfd-hooks dra-driver``) as a process in the cluster's network namespace, and the
kubelet's side of it (plugin registration, NodePrepareResources) as gRPC calls over its
unix sockets. Used by tests/e2e/test_dra_driver.py and bench/allocation_idle.py."""

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import yaml

from tests.allocation.nodes import Node
from tests.conftest import ROOT
from tests.e2e.harness import Cluster, Process, wait_for

DRIVER = "accelerator.nfd-hooks.io"
NAMESPACE = "node-feature-discovery"
NAMESPACE_E2E = "dra-e2e"  # claims and pods
# The tests' driver: rescans every second (the fixture's sysfs sends no uevents), 1 s of grace.
FAST = ("--no-uevents", "--resync", "1", "--grace", "1")
SERVICE_ACCOUNT = "nfd-hooks-dra-driver"


def install(cluster: Cluster) -> Path:
    """manifests/allocation as rendered, but the DaemonSet (no kubelet runs it here: the
    tests run the driver themselves), and a file holding a token of its service account."""
    if cluster.kubectl("get", "namespace", NAMESPACE, check=False).returncode != 0:
        cluster.kubectl("create", "namespace", NAMESPACE)
    rendered = cluster.kubectl("kustomize", str(ROOT / "manifests" / "allocation")).stdout
    for document in yaml.safe_load_all(rendered):
        if document and document["kind"] != "DaemonSet":
            cluster.apply(document)
    token = cluster.kubectl("create", "token", SERVICE_ACCOUNT, "-n", NAMESPACE, "--duration=4h").stdout.strip()
    path = cluster.dir / "dra-driver.token"
    path.write_text(token)
    path.chmod(0o600)
    return path


class Driver:
    """``nfd-hooks dra-driver`` for one node, as its DaemonSet pod would run it."""

    def __init__(self, cluster: Cluster, node_name: str, sysfs: Path, dev: Path, host_dev: Path, token: Path,
                 directory: Path, args: Sequence[str] = (), program: Sequence[str] = (sys.executable, "-m", "nfd_hooks")) -> None:
        self.directory = directory
        self.plugins, self.registry, self.cdi = directory / "plugins", directory / "registry", directory / "cdi"
        command = [
            *program, "dra-driver", "--sysfs", str(sysfs), "--dev", str(dev),
            "--host-dev", str(host_dev), "--node-name", node_name, "--server", cluster.server,
            "--token-file", str(token), "--ca-file", str(cluster.ca), "--plugins-dir", str(self.plugins),
            "--registry-dir", str(self.registry), "--cdi-dir", str(self.cdi), *args,
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        self.process = Process(f"dra-driver-{node_name}", cluster.in_netns(command), directory / "driver.log", env=env)
        wait_for("the driver's sockets", lambda: self._alive() and self.endpoint.exists() and self.registration.exists(),
                 timeout=60)

    @property
    def endpoint(self) -> Path:
        return self.plugins / DRIVER / "dra.sock"

    @property
    def registration(self) -> Path:
        return self.registry / f"{DRIVER}-reg.sock"

    @property
    def pid(self) -> int:
        return self.process.popen.pid

    def _alive(self) -> bool:
        if not self.process.running():
            raise RuntimeError(f"the DRA driver exited ({self.process.popen.returncode}):\n{self.log()[-3000:]}")
        return True

    def log(self) -> str:
        return self.process.log_text()

    def stop(self) -> Optional[int]:
        return self.process.stop()


class Kubelet:
    """The kubelet's calls to a DRA plugin, through grpcio stubs compiled from the kubelet's
    own .proto files (tests/allocation/upstream.py)."""

    def __init__(self, upstream: Dict[str, Any], driver: Driver) -> None:
        import grpc

        self.registration_messages, registration = upstream["pluginregistration/v1/api.proto"]
        self.messages, dra = upstream["dra/v1/api.proto"]
        options = [("grpc.use_local_subchannel_pool", 1)]
        self.channels = [grpc.insecure_channel(f"unix://{path}", options=options)
                         for path in (driver.registration, driver.endpoint)]
        self.registration = registration.RegistrationStub(self.channels[0])
        self.plugin = dra.DRAPluginStub(self.channels[1])

    def register(self) -> Any:
        """What the plugin watcher does: GetInfo, then NotifyRegistrationStatus(registered)."""
        info = self.registration.GetInfo(self.registration_messages.InfoRequest(), timeout=30)
        self.registration.NotifyRegistrationStatus(self.registration_messages.RegistrationStatus(plugin_registered=True), timeout=30)
        return info

    def prepare(self, *claims: Dict[str, Any]) -> Dict[str, Any]:
        """NodePrepareResources for ResourceClaim objects, as the kubelet names them."""
        request = self.messages.NodePrepareResourcesRequest(claims=[self._claim(c) for c in claims])
        return dict(self.plugin.NodePrepareResources(request, timeout=60).claims)

    def unprepare(self, *claims: Dict[str, Any]) -> Dict[str, Any]:
        request = self.messages.NodeUnprepareResourcesRequest(claims=[self._claim(c) for c in claims])
        return dict(self.plugin.NodeUnprepareResources(request, timeout=60).claims)

    def _claim(self, claim: Dict[str, Any]) -> Any:
        metadata = claim["metadata"]
        return self.messages.Claim(namespace=metadata["namespace"], name=metadata["name"], uid=metadata["uid"])

    def close(self) -> None:
        for channel in self.channels:
            channel.close()


def slice_of(cluster: Cluster, node_name: str) -> Optional[Dict[str, Any]]:
    """The driver's ResourceSlice of ``node_name`` as the API server stores it."""
    done = cluster.kubectl("get", "resourceslices", f"{node_name}-{DRIVER}", "-o", "json", check=False)
    return yaml.safe_load(done.stdout) if done.returncode == 0 else None


def offered(cluster: Cluster, node_name: str) -> Optional[Dict[str, List[str]]]:
    """Device name -> its taints' effects, in the stored slice; None without a slice."""
    body = slice_of(cluster, node_name)
    if body is None:
        return None
    return {d["name"]: [t["effect"] for t in d.get("taints") or []] for d in body["spec"].get("devices") or []}


class CoralNode:
    """One Node of ``cluster`` with a Coral USB Accelerator (the accelerator fixture, its /dev
    made by mknod: root only), the driver for it, and the kubelet's calls to the driver."""

    def __init__(self, cluster: Cluster, upstream: Dict[str, Any], node_name: str, args: Sequence[str] = FAST,
                 program: Sequence[str] = (sys.executable, "-m", "nfd_hooks")) -> None:
        self.cluster, self.node_name = cluster, node_name
        self.directory = Path(tempfile.mkdtemp(prefix="dra-", dir=cluster.dir))
        self.node = Node(self.directory / "node")
        self.node.become(self.node.state("coral-usb-after-firmware"))
        cluster.add_node(node_name, "arm64")
        token = install(cluster)
        if cluster.kubectl("get", "namespace", NAMESPACE_E2E, check=False).returncode != 0:
            cluster.kubectl("create", "namespace", NAMESPACE_E2E)
            wait_for("the default service account", lambda: cluster.kubectl(
                "create", "serviceaccount", "default", "-n", NAMESPACE_E2E, check=False).returncode == 0)
        self.driver = Driver(cluster, node_name, self.node.sys, self.node.dev, self.node.host_dev, token, self.directory, args, program)
        self.kubelet = Kubelet(upstream, self.driver)

    def claim(self, name: str, device_class: str) -> Dict[str, Any]:
        self.cluster.apply({
            "apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim", "metadata": {"name": name, "namespace": NAMESPACE_E2E},
            "spec": {"devices": {"requests": [{"name": "tpu", "exactly": {"deviceClassName": f"{device_class}.{DRIVER}"}}]}},
        })
        return self.cluster.get("resourceclaim", name, "-n", NAMESPACE_E2E)

    def pod(self, name: str, claim: str) -> None:
        self.cluster.apply({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NAMESPACE_E2E},
            "spec": {
                "nodeSelector": {"kubernetes.io/hostname": self.node_name},
                "resourceClaims": [{"name": "tpu", "resourceClaimName": claim}],
                "containers": [{"name": "inference", "image": "registry.example.com/coral-inference:1.0",
                                "resources": {"claims": [{"name": "tpu"}]}}],
            },
        })

    def placement(self, name: str):
        """The node pod ``name`` was bound to, "Pending" once unschedulable, None before."""
        pod = self.cluster.get("pod", name, "-n", NAMESPACE_E2E)
        if pod["spec"].get("nodeName"):
            return pod["spec"]["nodeName"]
        scheduled = {c["type"]: c for c in pod.get("status", {}).get("conditions", [])}.get("PodScheduled", {})
        if scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
            return "Pending: " + scheduled.get("message", "")
        return None

    def wait(self, what: str, probe, timeout: float = 60.0):
        """``wait_for``, with the driver's log in the failure."""
        try:
            return wait_for(what, probe, timeout=timeout)
        except TimeoutError as error:
            raise AssertionError(f"{error}; the driver's log:\n{self.driver.log()[-4000:]}") from None

    def close(self) -> None:
        self.kubelet.close()
        self.driver.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
