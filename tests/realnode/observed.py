"""What each container of a pod ran as, read from the container runtime (the OCI
spec runc was given, ``crictl inspect``) and, for a container still running,
from its process (/proc/PID/status, /proc/PID/mountinfo), never from YAML."""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from tests.e2e.node import RealNode

# Linux capability numbers (include/uapi/linux/capability.h).
CAPABILITIES = (
    "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE "
    "NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT "
    "SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE "
    "AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ "
    "PERFMON BPF CHECKPOINT_RESTORE"
).split()


def all_capabilities() -> List[str]:
    """Every capability a container can be given here: this process's bounding set (on
    these machines it lacks CAP_SYS_RESOURCE, which no process has), so "all" is what a
    privileged container gets."""
    status = Path("/proc/self/status").read_text()
    bounding = int(next(line for line in status.splitlines() if line.startswith("CapBnd:")).split()[1], 16)
    return capabilities_of(bounding)


def capabilities_of(mask: int) -> List[str]:
    return [f"CAP_{name}" for bit, name in enumerate(CAPABILITIES) if mask >> bit & 1]


@dataclass
class Ran:
    """One container as it ran."""

    name: str
    kind: str  # init, sidecar (an initContainer with restartPolicy Always), container
    state: str
    exit_code: Optional[int]
    uid: int
    gid: int
    privileged: bool  # the CRI request (security_context.privileged) ...
    unmasked: bool  # ... and what it meant to runc: no masked or read-only /proc, /sys paths
    capabilities: List[str]  # effective
    readonly_root: bool
    host_mounts: List[Tuple[str, str, str]]  # (host path, container path, ro|rw), hostPath volumes only
    args: List[str]
    log: str
    pid: Optional[int] = None
    proc: Dict[str, str] = field(default_factory=dict)  # what /proc showed, when it was running

    @property
    def capability_summary(self) -> str:
        if set(self.capabilities) >= set(all_capabilities()):
            return "all"
        return " ".join(sorted(c[4:] for c in self.capabilities)) or "none"

    def line(self) -> str:
        exit_part = f" exit {self.exit_code}" if self.exit_code is not None else ""
        proc = " (and /proc/%d agrees)" % self.pid if self.proc else ""
        return (f"{self.name} [{self.kind}] {self.state}{exit_part}: uid:gid {self.uid}:{self.gid}, "
                f"privileged {'yes' if self.privileged else 'no'} ({'unmasked' if self.unmasked else 'masked /proc, /sys paths'}), "
                f"capabilities {self.capability_summary}, root {'read-only' if self.readonly_root else 'writable'}{proc}")


def _proc_view(pid: int) -> Dict[str, str]:
    status = dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":\t" in line)
    root_options = ""
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == "/":
            root_options = fields[5]
    return {"Uid": status["Uid"].split()[0], "Gid": status["Gid"].split()[0], "CapEff": status["CapEff"].strip(),
            "root": root_options, "mountinfo": Path(f"/proc/{pid}/mountinfo").read_text()}


def _log(node: RealNode, container_id: str) -> str:
    done = node.crictl("logs", container_id)
    return done.stdout + done.stderr


def host_path_mounts(pod: dict, user_paths: Dict[str, str]) -> Dict[str, Dict[str, str]]:
    """For each container of ``pod``: mount destination -> the hostPath it asked for, as
    users write it (``user_paths`` maps the test's patched paths back)."""
    host_paths = {}
    for volume in pod["spec"]["volumes"]:
        if "hostPath" in volume:
            path = volume["hostPath"]["path"].rstrip("/")
            host_paths[volume["name"]] = user_paths.get(path, path)
    found = {}
    for container in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]:
        found[container["name"]] = {mount["mountPath"].rstrip("/"): host_paths[mount["name"]]
                                    for mount in container.get("volumeMounts", []) if mount["name"] in host_paths}
    return found


def pod_containers(node: RealNode, pod: dict, user_paths: Dict[str, str]) -> List[Ran]:
    """Every container of ``pod`` (its JSON), newest attempt of each, as it ran.

    ``user_paths`` maps the test's patched host paths back to /sys and the
    features.d path users have.
    """
    pod_uid = pod["metadata"]["uid"]
    init_kinds = {c["name"]: ("sidecar" if c.get("restartPolicy") == "Always" else "init") for c in pod["spec"].get("initContainers", [])}
    asked = host_path_mounts(pod, user_paths)
    sandboxes = json.loads(node.crictl("pods", "--label", f"io.kubernetes.pod.uid={pod_uid}", "-o", "json").stdout)["items"]
    assert sandboxes, f"no sandbox for pod {pod_uid}"
    listed = json.loads(node.crictl("ps", "-a", "--pod", sandboxes[0]["id"], "-o", "json").stdout)["containers"]
    newest: Dict[str, dict] = {}
    for container in listed:
        name = container["metadata"]["name"]
        if name not in newest or container["metadata"].get("attempt", 0) > newest[name]["metadata"].get("attempt", 0):
            newest[name] = container
    found = []
    for name, container in newest.items():
        inspected = json.loads(node.crictl("inspect", "-o", "json", container["id"]).stdout)
        status, info = inspected["status"], inspected["info"]
        spec = info["runtimeSpec"]
        security = info.get("config", {}).get("linux", {}).get("security_context", {})
        process = spec["process"]
        masked = spec.get("linux", {}).get("maskedPaths") or spec.get("linux", {}).get("readonlyPaths")
        mounts = []
        for mount in spec.get("mounts", []):
            destination = mount["destination"].rstrip("/")
            if destination in asked.get(name, {}):
                # The runtime mounted the hostPath the pod asked for (the kubelet resolves symlinks: /lib is /usr/lib here).
                wanted = asked[name][destination]
                source = mount.get("source", "").rstrip("/")
                inverse = {v: k for k, v in user_paths.items()}
                assert source == node.real_path(inverse.get(wanted, wanted)), (name, destination, source, wanted)
                mode = "ro" if "ro" in mount.get("options", []) else "rw"
                mounts.append((wanted, destination, mode))
        state = status["state"].replace("CONTAINER_", "").lower()
        ran = Ran(
            name=name, kind=init_kinds.get(name, "container"), state=state,
            exit_code=status.get("exitCode") if state == "exited" else None,
            uid=int(process["user"]["uid"]), gid=int(process["user"]["gid"]),
            privileged=bool(security.get("privileged")), unmasked=not masked,
            capabilities=sorted(process.get("capabilities", {}).get("effective", [])),
            readonly_root=bool(spec.get("root", {}).get("readonly")),
            host_mounts=sorted(mounts), args=list(process.get("args", [])),
            log=_log(node, container["id"]),
        )
        pid = info.get("pid")
        if state == "running" and pid:
            view = _proc_view(int(pid))
            ran.pid, ran.proc = int(pid), view
            # The process agrees with the spec runc was given.
            assert int(view["Uid"]) == ran.uid and int(view["Gid"]) == ran.gid, (name, view, ran)
            assert capabilities_of(int(view["CapEff"], 16)) == sorted(ran.capabilities, key=lambda c: CAPABILITIES.index(c[4:])), (name, view["CapEff"])
            assert ("ro" in view["root"].split(",")) == ran.readonly_root, (name, view["root"])
            for _, destination, mode in ran.host_mounts:
                options = [line.split()[5] for line in view["mountinfo"].splitlines() if line.split()[4] == destination]
                assert options and (mode in options[-1].split(",")), (name, destination, options)
        found.append(ran)
    return sorted(found, key=lambda ran: ({"init": 0, "sidecar": 1, "container": 2}[ran.kind], ran.name))
