"""A real Kubernetes node beside the harness's control plane: containerd 2.x
(CDI on), Debian's runc, the CNI bridge and host-local plugins, a kubelet and
kube-proxy v1.35.3, all built by scripts/build-e2e-binaries (containerd,
crictl, Kubernetes) or installed from Debian (runc, containernetworking-plugins,
iptables). What ../../shared/real-node.md found on these machines is applied
here; each pitfall's fix is named where it is made.

Isolation, so that another session can run the same at the same time and
nothing is left behind, on failure too:

- Network: the cluster's private network namespace (``Cluster.in_netns``), a
  veth pair inside it carries the node's address (NODE_IP) and default route;
  pods get addresses from the bridge ``cni-realnode`` (POD_CIDR); kube-proxy's
  iptables rules live in that namespace and die with it.
- Files: the node's processes (containerd, its shims, the kubelet, kube-proxy,
  every container) run in a mount namespace of their own in which ``/var/lib``,
  ``/var/log`` and ``/run`` are bind mounts of directories under the session's
  private directory. The paths the kubelet and containerd hard-code
  (``/var/lib/kubelet/device-plugins``, ``/var/log/containers``,
  ``/run/containerd/s``) therefore never touch the machine's, and every mount
  they make (the kubelet's root-dir bind, volumes, overlay roots, pod network
  namespaces) exists only in that namespace and ends with it.
- Sysctls: the kubelet sets six global ones at start (vm.overcommit_memory,
  vm.panic_on_oom, kernel.panic, kernel.panic_on_oops, kernel.keys.root_max*).
  In the node's mount namespace each of those /proc/sys files is covered by a
  bind mount of a plain file holding the machine's value: the kubelet reads
  and writes the copy, the machine's sysctls never change (``global_sysctls``
  lets a test check that).
- cgroups (v1 hybrid here): one root ``/nfd-hooks-e2e-realnode-<id>`` in every
  v1 hierarchy (cpuset copied from the parent, pitfall 4): the kubelet's
  ``cgroupRoot`` (pods under ``kubepods``), and ``runtime`` beside it for
  containerd, its shims and the kubelet. ``stop()`` kills every process under
  the root, then removes it bottom-up.
- containerd: root, state, sockets and runc's root under the private
  directory; CDI on (spec dirs ``/etc/cdi`` and ``/var/run/cdi``, the latter
  private to the node); ``restrict_oom_score_adj`` and the kubelet's
  ``oomScoreAdj: 0`` because no process here has CAP_SYS_RESOURCE (pitfall 1).

Images cannot be pulled: ``load_image`` imports an OCI archive (``podman save
--format oci-archive``) and names it as manifests use it; the sandbox image is
a static pause program built by scripts/build-e2e-binaries.
"""

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import yaml

from tests.e2e.harness import Cluster, E2EUnavailable, Process, _free_ports, run_checked, wait_for

NODE_IP = "172.30.99.2"
POD_CIDR = "10.88.0.0/24"
SANDBOX_IMAGE = "registry.k8s.io/pause:3.10.1"
CNI_BIN = Path("/usr/lib/cni")
RUNC = Path("/usr/sbin/runc")
# What the kubelet sets at start (pkg/kubelet/cm/container_manager_linux.go, setupKernelTunables).
KUBELET_SYSCTLS = (
    "vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
)
# Global sysctls a node could change; checked unchanged at the end (kube-proxy's
# conntrack settings are 0 = leave alone).
WATCHED_SYSCTLS = KUBELET_SYSCTLS + ("net/netfilter/nf_conntrack_max",)
PRIVATE_ROOTS = ("var/lib", "var/log", "run")


def global_sysctls() -> Dict[str, str]:
    """The machine's values of the sysctls a kubelet or kube-proxy could change."""
    values = {}
    for name in WATCHED_SYSCTLS:
        try:
            values[name] = Path("/proc/sys", name).read_text().strip()
        except OSError:
            values[name] = "(absent)"
    return values


def _hierarchies(types: Sequence[str] = ("cgroup",)) -> List[Path]:
    """Mounted cgroup hierarchies of ``types`` (v1: ``cgroup``; the hybrid layout's
    ``cgroup2`` too, where runc also makes each container's directory)."""
    found = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if fields[2] in types:
            found.append(Path(fields[1]))
    return found


def _v1_hierarchies() -> List[Path]:
    return _hierarchies(("cgroup",))


@dataclass
class NodeOptions:
    """What a test may choose about its node.

    ``feature_gates``: the kubelet's (e.g. ``{"DRADeviceTaints": True}``; the
    control plane's come from ``Cluster(feature_gates=...)``).
    ``kubelet_config``: merged over the KubeletConfiguration written here.
    """

    name: str = "realnode"
    feature_gates: Dict[str, bool] = field(default_factory=dict)
    kubelet_config: Dict[str, Any] = field(default_factory=dict)


class RealNode:
    """containerd, kubelet and kube-proxy for one Node of ``cluster``; start(), stop()."""

    def __init__(self, cluster: Cluster, options: Optional[NodeOptions] = None) -> None:
        self.cluster, self.options = cluster, options or NodeOptions()
        self.name = self.options.name
        self.bin = cluster.bin
        self.dir = cluster.dir / "node"
        self.root = self.dir / "root"  # what the node sees as /var/lib, /var/log, /run
        self.socket = self.dir / "containerd.sock"
        self.cgroup = f"nfd-hooks-e2e-realnode-{secrets.token_hex(4)}"
        self.holder: Optional[Process] = None
        self.processes: List[Process] = []
        self.sysctls_before: Dict[str, str] = {}

    # -- paths as the node sees them -----------------------------------------------
    def host_path(self, node_path: str) -> Path:
        """Where a path of the node's /var/lib, /var/log or /run is on this machine."""
        for prefix in PRIVATE_ROOTS:
            if node_path == f"/{prefix}" or node_path.startswith(f"/{prefix}/"):
                return self.root / node_path.lstrip("/")
        return Path(node_path)

    def real_path(self, node_path: str) -> str:
        """``node_path`` with its symlinks resolved as the node sees them (as the kubelet does for a hostPath)."""
        done = run_checked(self.in_node(["realpath", "-m", node_path]))
        return done.stdout.strip()

    # -- commands --------------------------------------------------------------------
    def in_node(self, args: Sequence[Any]) -> List[str]:
        """``args`` as a command run in the node's network and mount namespaces."""
        pid = self.holder.popen.pid
        return ["nsenter", f"--net=/proc/{pid}/ns/net", f"--mount=/proc/{pid}/ns/mnt", "--", *map(str, args)]

    def crictl(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        """crictl against this node's containerd (in the node: exec and logs stream there, pitfall 7)."""
        done = subprocess.run(self.in_node([self.bin["crictl"], f"--runtime-endpoint=unix://{self.socket}",
                                            f"--image-endpoint=unix://{self.socket}", "--timeout=30s", *args]),
                              capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise RuntimeError(f"crictl {' '.join(args)} failed: {done.stderr.strip()}")
        return done

    def ctr(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """ctr in the k8s.io namespace (the CRI's) of this node's containerd."""
        return run_checked(self.in_node([self.bin["ctr"], f"--address={self.socket}", "--namespace=k8s.io", *args]), timeout=timeout)

    def load_image(self, archive: Path, names: Sequence[str]) -> None:
        """Import an OCI archive of one amd64 image and give it each of ``names``
        (no registry can be pulled from: the kubelet finds them already there)."""
        source = _archive_ref(archive)
        self.ctr("images", "import", "--platform", "linux/amd64", str(archive))
        for name in names:
            if name != source:
                self.ctr("images", "tag", "--force", source, name)

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> "RealNode":
        for tool in ("iptables", "ip", "nsenter", "unshare"):
            if not shutil.which(tool):
                raise E2EUnavailable(f"{tool} not installed (scripts/system-packages.txt)")
        for plugin in ("bridge", "host-local", "loopback"):
            if not (CNI_BIN / plugin).exists():
                raise E2EUnavailable(f"CNI plugin {plugin} missing in {CNI_BIN} (Debian containernetworking-plugins)")
        if not RUNC.exists():
            raise E2EUnavailable(f"{RUNC} missing (Debian runc)")
        self.sysctls_before = global_sysctls()
        for sub in ("containerd", "runc", "cni/net.d", "masks", "volume-plugins", "opt", *PRIVATE_ROOTS):
            (self.dir / sub if sub not in PRIVATE_ROOTS else self.root / sub).mkdir(parents=True, exist_ok=True)
        self._network()
        self._cgroups()
        self._mount_namespace()
        self._containerd()
        self._sandbox_image()
        self._kubelet()
        self._kube_proxy()
        wait_for(f"node {self.name} Ready", self._ready, timeout=180, interval=1)
        return self

    def stop(self) -> None:
        """Everything the node started is ended and everything it changed removed."""
        for process in reversed(self.processes):
            process.stop(timeout=5)
        self._kill_cgroup_tree()
        if self.holder:
            self.holder.stop()
        self._remove_cgroups()

    def _alive(self) -> bool:
        dead = [p for p in self.processes if not p.running()]
        if dead:
            raise RuntimeError(f"{dead[0].name} exited ({dead[0].popen.returncode}):\n{dead[0].log_text()[-3000:]}")
        return True

    def _ready(self) -> bool:
        self._alive()
        done = self.cluster.kubectl("get", "node", self.name, "-o", "json", check=False)
        if done.returncode != 0:
            return False
        conditions = json.loads(done.stdout)["status"].get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    # -- pieces --------------------------------------------------------------------------
    def _network(self) -> None:
        """A veth pair in the cluster's namespace: the node's address and default route (pitfall 5)."""
        script = (
            "ip link add realnode0 type veth peer name realnode1 && "
            f"ip addr add {NODE_IP}/24 dev realnode0 && ip link set realnode0 up && ip link set realnode1 up && "
            "ip route add default dev realnode0"
        )
        run_checked(self.cluster.in_netns(["sh", "-c", script]))
        conflist = {
            "cniVersion": "1.0.0",
            "name": "realnode",
            "plugins": [{
                "type": "bridge", "bridge": "cni-realnode", "isGateway": True, "ipMasq": False, "hairpinMode": True,
                "ipam": {"type": "host-local", "ranges": [[{"subnet": POD_CIDR}]], "routes": [{"dst": "0.0.0.0/0"}],
                         "dataDir": "/var/lib/cni/networks"},
            }],
        }
        (self.dir / "cni/net.d/10-realnode.conflist").write_text(json.dumps(conflist, indent=2))

    def _cgroups(self) -> None:
        """The node's cgroup root in every v1 hierarchy, and ``runtime`` in it (pitfall 4)."""
        hierarchies = _v1_hierarchies()
        if not hierarchies:
            raise E2EUnavailable("no cgroup v1 hierarchy: this harness configures the kubelet for the v1 hybrid layout these machines have")
        for hierarchy in hierarchies:
            for path in (hierarchy / self.cgroup, hierarchy / self.cgroup / "runtime"):
                path.mkdir(exist_ok=True)
                if (hierarchy / "cpuset.cpus").exists():
                    for name in ("cpuset.cpus", "cpuset.mems"):
                        (path / name).write_text((path.parent / name).read_text())

    def _join_runtime_cgroup(self) -> str:
        """Shell that moves itself into ``runtime`` in every hierarchy (then execs the daemon)."""
        paths = " ".join(str(h / self.cgroup / "runtime" / "cgroup.procs") for h in _v1_hierarchies())
        return f'for f in {paths}; do echo $$ > "$f"; done; exec "$@"'

    def _mount_namespace(self) -> None:
        """Hold the node's mount namespace: private /var/lib, /var/log, /run; kubelet sysctls masked."""
        binds = " && ".join(f"mount --bind {self.root / sub} /{sub}" for sub in PRIVATE_ROOTS)
        masks = []
        for name in KUBELET_SYSCTLS:
            copy = self.dir / "masks" / name.replace("/", ".")
            copy.write_text(Path("/proc/sys", name).read_text())
            masks.append(f"mount --bind {copy} /proc/sys/{name}")
        script = f"mount --make-rprivate / && {binds} && {' && '.join(masks)} && echo up && exec sleep infinity"
        self.holder = Process("node-mount-namespace", self.cluster.in_netns(["unshare", "--mount", "sh", "-c", script]),
                              self.cluster.logs / "node-mount-namespace.log")
        wait_for("the node's mount namespace", lambda: "up" in self.holder.log_text() or not self.holder.running(), timeout=10)
        if not self.holder.running():
            raise RuntimeError(f"cannot make the node's mount namespace: {self.holder.log_text()}")

    def _start(self, name: str, args: Sequence[Any], env: Optional[Dict[str, str]] = None) -> Process:
        command = self.in_node(["sh", "-c", self._join_runtime_cgroup(), "sh", *map(str, args)])
        path = os.pathsep.join([str(Path(self.bin["containerd"]).parent), "/usr/sbin", "/usr/bin", "/sbin", "/bin"])
        process = Process(name, command, self.cluster.logs / f"{name}.log", env={"PATH": path, "HOME": "/root", **(env or {})})
        self.processes.append(process)
        return process

    def _containerd(self) -> None:
        config = f"""version = 3
root = "{self.dir}/containerd/root"
state = "{self.dir}/containerd/state"
disabled_plugins = ["io.containerd.nri.v1.nri"]

[grpc]
  address = "{self.socket}"

[ttrpc]
  address = "{self.socket}.ttrpc"

[plugins.'io.containerd.internal.v1.opt']
  path = "{self.dir}/opt"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "{SANDBOX_IMAGE}"

[plugins.'io.containerd.cri.v1.runtime']
  enable_cdi = true
  cdi_spec_dirs = ["/etc/cdi", "/var/run/cdi"]
  # Pitfall 1: no CAP_SYS_RESOURCE here, so never lower a score.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "{RUNC}"
        Root = "{self.dir}/runc"
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["{CNI_BIN}"]
    conf_dir = "{self.dir}/cni/net.d"

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
"""
        path = self.dir / "containerd" / "config.toml"
        path.write_text(config)
        containerd = self._start("containerd", [self.bin["containerd"], "--config", path, "--log-level", "info"])
        wait_for("containerd's socket", lambda: self._alive() and self.socket.exists(), timeout=60)
        wait_for("containerd's CRI", lambda: self.crictl("info", check=False).returncode == 0, timeout=60)
        del containerd

    def _sandbox_image(self) -> None:
        """The pause image: the static pause binary alone, imported as SANDBOX_IMAGE."""
        work = Path(tempfile.mkdtemp(prefix="pause-", dir=self.dir))
        layer = work / "layer.tar"
        run_checked(["tar", "-C", str(Path(self.bin["pause"]).parent), "-cf", str(layer), "pause"])
        archive = work / "pause.tar"
        _oci_archive(layer, archive, SANDBOX_IMAGE, entrypoint=["/pause"], user="65535:65535")
        self.load_image(archive, [SANDBOX_IMAGE])
        shutil.rmtree(work)

    def _kubelet(self) -> None:
        creds = self.cluster.credentials
        kubeconfig = self.cluster.user_kubeconfig(f"system:node:{self.name}")
        resolv = self.dir / "resolv.conf"
        # Pods resolve nothing: no cluster DNS runs, and no query should leave the namespace.
        resolv.write_text("options ndots:1\n")
        config: Dict[str, Any] = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": False},
                               "x509": {"clientCAFile": str(creds["ca.crt"])}},
            "authorization": {"mode": "AlwaysAllow"},
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            # Pitfall 4: cgroup v1, cgroupfs, no swap check; pitfall 1: no oom_score_adj below 0.
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": f"/{self.cgroup}",
            "failCgroupV1": False,
            "failSwapOn": False,
            "oomScoreAdj": 0,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "resolvConf": str(resolv),
            "volumePluginDir": str(self.dir / "volume-plugins"),
            "clusterDomain": "cluster.local",
            # A shared test machine: no eviction on its disk or memory use, no image GC (nothing can be pulled back).
            "evictionHard": {"memory.available": "1Mi", "nodefs.available": "0%", "imagefs.available": "0%", "nodefs.inodesFree": "0%"},
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "featureGates": dict(self.options.feature_gates),
            "shutdownGracePeriod": "0s",
        }
        config.update(self.options.kubelet_config)
        path = self.dir / "kubelet.yaml"
        path.write_text(yaml.safe_dump(config))
        self._start("kubelet", [
            self.bin["kubelet"], f"--config={path}", f"--kubeconfig={kubeconfig}", "--root-dir=/var/lib/kubelet",
            f"--hostname-override={self.name}", f"--node-ip={NODE_IP}", "-v=2",
        ])

    def _kube_proxy(self) -> None:
        kubeconfig = self.cluster.user_kubeconfig("system:kube-proxy")
        metrics, healthz = _free_ports(2)
        # Pitfall 5: iptables mode, conntrack settings 0 so it leaves the machine's sysctls alone.
        self._start("kube-proxy", [
            self.bin["kube-proxy"], f"--kubeconfig={kubeconfig}", f"--hostname-override={self.name}",
            "--proxy-mode=iptables", f"--cluster-cidr={POD_CIDR}", "--conntrack-max-per-core=0",
            "--conntrack-tcp-timeout-established=0", "--conntrack-tcp-timeout-close-wait=0",
            f"--metrics-bind-address=127.0.0.1:{metrics}", f"--healthz-bind-address=127.0.0.1:{healthz}",
            "--oom-score-adj=0", "-v=2",
        ])

    # -- teardown ------------------------------------------------------------------------
    def _cgroup_dirs(self) -> List[Path]:
        """Every cgroup of the node's tree in every hierarchy, deepest first."""
        found = []
        for hierarchy in _hierarchies(("cgroup", "cgroup2")):
            top = hierarchy / self.cgroup
            if top.is_dir():
                found.extend(sorted((Path(d) for d, _, _ in os.walk(top)), key=lambda p: len(p.parts), reverse=True))
        return found

    def _kill_cgroup_tree(self) -> None:
        """SIGKILL every process left under the node's cgroup root (shims, containers), until none is."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pids = set()
            for directory in self._cgroup_dirs():
                try:
                    pids.update(int(p) for p in (directory / "cgroup.procs").read_text().split())
                except OSError:
                    pass
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)

    def _remove_cgroups(self) -> None:
        for directory in self._cgroup_dirs():
            for _ in range(50):
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)


def _archive_ref(archive: Path) -> str:
    """The image name an OCI archive's index gives (``ctr images import`` names it so)."""
    import tarfile

    with tarfile.open(archive) as tar:
        member = tar.extractfile("index.json")
        assert member is not None, f"{archive}: no index.json"
        index = json.load(member)
    annotations = index["manifests"][0].get("annotations", {})
    return annotations.get("io.containerd.image.name") or annotations["org.opencontainers.image.ref.name"]


def _oci_archive(layer: Path, archive: Path, name: str, entrypoint: Sequence[str], user: str) -> None:
    """A one-layer OCI image archive (what ``ctr images import`` reads), for the pause image."""
    import hashlib
    import io
    import tarfile

    def blob(data: bytes) -> Dict[str, Any]:
        return {"digest": "sha256:" + hashlib.sha256(data).hexdigest(), "size": len(data), "data": data}

    layer_bytes = layer.read_bytes()
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": list(entrypoint), "User": user},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }).encode()
    layer_blob, config_blob = blob(layer_bytes), blob(config)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_blob["digest"], "size": config_blob["size"]},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_blob["digest"], "size": layer_blob["size"]}],
    }).encode()
    manifest_blob = blob(manifest)
    index = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_blob["digest"], "size": manifest_blob["size"],
        "platform": {"architecture": "amd64", "os": "linux"},
        "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name},
    }]}).encode()
    with tarfile.open(archive, "w") as tar:
        def add(path: str, data: bytes) -> None:
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", index)
        for item in (layer_blob, config_blob, manifest_blob):
            add("blobs/sha256/" + item["digest"].split(":")[1], item["data"])


@contextmanager
def real_node_cluster(
    binaries: Dict[str, Path], *, feature_gates: Optional[Dict[str, bool]] = None, runtime_config: str = "",
    node: Optional[NodeOptions] = None, keep: bool = False,
) -> Iterator[Tuple[Cluster, RealNode]]:
    """A control plane (etcd, kube-apiserver with --allow-privileged, kube-controller-manager,
    kube-scheduler; no nfd-master, no fake Nodes) and one real node, for one ``with`` block.

    ``feature_gates`` go to every control-plane component and to the kubelet (e.g.
    ``{"DRADeviceTaints": True}``), ``runtime_config`` to the API server (e.g.
    ``"resource.k8s.io/v1alpha3=true"``); ``node`` names the node and adds kubelet
    settings. Everything is torn down at the end, on failure too; ``keep`` (or
    NFD_HOOKS_E2E_KEEP=1) keeps the directory with every log.
    """
    options = node or NodeOptions()
    gates = dict(feature_gates or {})
    options.feature_gates = {**gates, **options.feature_gates}
    directory = Path(tempfile.mkdtemp(prefix="nfd-hooks-e2e-realnode-"))
    directory.chmod(0o755)
    cluster = Cluster(binaries, directory, node_ip=NODE_IP, nfd_master=False, control_plane_node=False,
                      controller_manager=True, feature_gates=gates, runtime_config=runtime_config,
                      node_users=[f"system:node:{options.name}"])
    real = RealNode(cluster, options)
    try:
        cluster.start()
        real.start()
        yield cluster, real
    finally:
        real.stop()
        cluster.stop()
        if keep or os.environ.get("NFD_HOOKS_E2E_KEEP") == "1":
            print(f"\nreal node: logs and state kept in {directory}", file=sys.stderr)
        else:
            shutil.rmtree(directory, ignore_errors=True)
