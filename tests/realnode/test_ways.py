"""Each way users deploy nfd-hooks, run by a real kubelet and containerd (issue 24).

For each way (manifests/, each overlay, NFD's Helm chart with our values):
- the DaemonSet pod reaches Running and Ready; the hook exited 0 and its log
  says what it wrote;
- the Node's labels from our file are exactly ``nfd-hooks show`` on the same
  bundle with the hook's own arguments, every one, and NFD's own labels are there;
- every container ran as docs/deployment.md's "What runs" table says (uid,
  privileged, capabilities, read-only root, host paths), read from the runtime
  and /proc, never from YAML;
- deleting the pod (the DaemonSet makes a new one) removes or changes no label;
- for the one-shot ways: hostile hardware at the pod's /sys, and an unwritable
  features.d, never keep the pod from Running with NFD's own labels published;
- for overlays/hotplug: 20 plugs and unplugs through the running pod, each
  followed by the Node, median and max reported.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from tests.conftest import FIXTURES, ROOT, labels_of
from tests.e2e.harness import NFD_NAMESPACE, Cluster, wait_for
from tests.e2e.hotplug import NodeStream
from tests.e2e.node import RealNode, global_sysctls
from tests.fdt_expand import expand
from tests.realnode.conftest import REPORT
from tests.realnode.observed import Ran, pod_containers
from tests.realnode.ways import NODE_FEATURES, NODE_SYS, USER_PATHS, WAYS, Way, clear_leftovers, new_work_dir
from tests.realnode.what_runs import claims_for, rows

BUNDLE = FIXTURES / "nodes" / "rpi4b-ncs2-webcam"
# Labels NFD itself publishes whatever our file says (its kernel and system sources).
NFD_OWN = ("feature.node.kubernetes.io/kernel-version.full", "feature.node.kubernetes.io/system-os_release.ID")
LOCAL_PREFIXES = ("beta.devicetree.org/", "accelerator.feature.node.kubernetes.io/")
NCS2 = "2-1"
NCS2_LABEL = "feature.node.kubernetes.io/usb-ff_03e7_2485.present"
HOTPLUG_EVENTS = 20
HOOK_NAMES = ("nfd-hooks", "nfd-hooks-watch")
# Waiting reasons no retry cures on this node.
NEVER_STARTS = ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName", "CreateContainerConfigError")


# -- the node's fake host ----------------------------------------------------------
def build_sysfs(target: Path) -> Path:
    """The bundle as a kernel would show it at /sys: its USB devices, its devicetree expanded."""
    if target.exists():
        subprocess.run(["chattr", "-R", "-i", str(target)], capture_output=True)
        shutil.rmtree(target)
    shutil.copytree(BUNDLE / "sys", target, symlinks=True)
    expand((BUNDLE / "devicetree.dtb").read_bytes(), target / "firmware" / "devicetree" / "base")
    for path in ("block", "class/net", "bus/pci/devices"):
        (target / path).mkdir(parents=True, exist_ok=True)
    target.chmod(0o755)
    return target


def reset_features(directory: Path) -> None:
    if directory.exists():
        subprocess.run(["chattr", "-i", str(directory)], capture_output=True)
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    directory.chmod(0o755)


# -- hostile hardware at the pod's /sys ----------------------------------------------
def _base(sysfs: Path) -> Path:
    return sysfs / "firmware" / "devicetree" / "base"


def corrupt_devicetree(sysfs: Path) -> None:
    base = _base(sysfs)
    (base / "compatible").write_bytes(b"\xff\xfe\x00garbage,\x80\x81" * 3)  # not NUL-terminated text
    (base / "cpus" / "cpu@0" / "compatible").write_bytes(b"arm,cortex")  # no terminating NUL
    (base / "#address-cells").write_bytes(b"\x01")  # a cell of one byte
    (sysfs / "firmware" / "fdt").write_bytes(b"\xd0\x0d\xfe\xed" + b"\x00" * 60)  # a truncated blob


def fifo(sysfs: Path) -> None:
    target = _base(sysfs) / "cpus" / "cpu@1" / "compatible"
    target.unlink()
    os.mkfifo(target)


def huge_attribute(sysfs: Path) -> None:
    (_base(sysfs) / "model").write_bytes(b"A" * (10 * 1024 * 1024))


def unreadable_file(sysfs: Path) -> None:
    (_base(sysfs) / "cpus" / "cpu@2" / "compatible").chmod(0)


def symlink_out(sysfs: Path) -> None:
    target = _base(sysfs) / "cpus" / "cpu@3" / "compatible"
    target.unlink()
    target.symlink_to("/etc/hostname")
    (_base(sysfs) / "gpu" / "compatible").unlink()
    (_base(sysfs) / "gpu" / "compatible").symlink_to("../../../../../../../../../../proc/self/environ")


HOSTILE = {
    "corrupt devicetree": corrupt_devicetree,
    "FIFO": fifo,
    "10 MB attribute": huge_attribute,
    "unreadable file": unreadable_file,
    "symlink out of the tree": symlink_out,
}
# Ways whose one-shot hook the hostile cases run against: the privileged one and the unprivileged one.
HOSTILE_WAYS = ("manifests", "overlays/unprivileged")


# -- the pod -----------------------------------------------------------------------
def daemonset_pod(cluster: Cluster, way: Way, not_uid: str = "") -> Optional[dict]:
    pods = cluster.get("pods", "-n", NFD_NAMESPACE)["items"]
    for pod in pods:
        owners = pod["metadata"].get("ownerReferences", [])
        if any(o["kind"] == "DaemonSet" and o["name"] == way.daemonset for o in owners) and pod["metadata"]["uid"] != not_uid:
            if not pod["metadata"].get("deletionTimestamp"):
                return pod
    return None


def ready(pod: Optional[dict]) -> bool:
    if not pod or pod["status"].get("phase") != "Running":
        return False
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def wait_pod_ready(cluster: Cluster, way: Way, not_uid: str = "", timeout: float = 240) -> dict:
    def probe():
        pod = daemonset_pod(cluster, way, not_uid)
        if pod:
            # A pod whose hook failed would loop in Init: say so at once.
            for status in pod["status"].get("initContainerStatuses", []):
                terminated = status.get("lastState", {}).get("terminated") or status.get("state", {}).get("terminated") or {}
                if terminated.get("exitCode") not in (None, 0):
                    raise AssertionError(f"{status['name']} exited {terminated['exitCode']}: {terminated.get('message')}")
            # An image the node does not have never arrives (nothing can be pulled here): say so at once.
            for status in pod["status"].get("initContainerStatuses", []) + pod["status"].get("containerStatuses", []):
                waiting = status.get("state", {}).get("waiting") or {}
                if waiting.get("reason") in NEVER_STARTS:
                    raise AssertionError(f"{status['name']} ({status.get('image')}): {waiting['reason']}: {waiting.get('message')}")
        return pod if ready(pod) else None
    try:
        return wait_for(f"the {way.name} pod Running and Ready", probe, timeout=timeout, interval=1)
    except TimeoutError as late:
        # Say why: the pods as the API has them, and the kubelet's last words.
        pods = cluster.kubectl("get", "pods", "-A", "-o", "wide", check=False).stdout
        kubelet = (cluster.logs / "kubelet.log").read_text(errors="replace")[-3000:]
        raise TimeoutError(f"{late}\n{pods}\nkubelet log:\n{kubelet}") from None


def pod_phases(pod: dict) -> List[str]:
    """The pod's phase and each container's state, as the API reports them."""
    lines = [f"pod {pod['metadata']['name']}: {pod['status']['phase']}, Ready"]
    for key in ("initContainerStatuses", "containerStatuses"):
        for status in pod["status"].get(key, []):
            state = next(iter(status["state"]))
            detail = status["state"][state]
            extra = f" exit {detail.get('exitCode')} ({detail.get('reason')})" if state == "terminated" else ""
            lines.append(f"    {status['name']}: {state}{extra}, ready {status.get('ready')}, restarts {status.get('restartCount')}")
    return lines


def node_feature_owner(cluster: Cluster, node: str) -> str:
    """The uid of the pod that published the node's NodeFeature (its owner reference), or ''."""
    done = cluster.kubectl("get", "nodefeature", node, "-n", NFD_NAMESPACE, "-o", "json", check=False)
    if done.returncode != 0:
        return ""
    owners = json.loads(done.stdout)["metadata"].get("ownerReferences", [])
    return next((o["uid"] for o in owners if o["kind"] == "Pod"), "")


def local_labels(cluster: Cluster, node: str) -> Dict[str, str]:
    """The labels NFD's local source read from features.d, as the worker published them."""
    feature = cluster.get("nodefeature", node, "-n", NFD_NAMESPACE)
    elements = feature["spec"].get("features", {}).get("attributes", {}).get("local.label", {}).get("elements", {})
    return dict(elements)


# -- what the hook would write ------------------------------------------------------
def show_as_the_hook(ran: Ran, node: RealNode, unprivileged: bool) -> bytes:
    """``nfd-hooks show`` with the hook's own arguments as it ran (read from the runtime),
    on the same files: its /host-sys mapped to the fake sysfs, its /host-dev to /dev; as
    uid 0 without capabilities when the hook had none."""
    args = ran.args[ran.args.index("nfd-hooks") + 1:] if "nfd-hooks" in ran.args else ran.args[1:]
    mapped, skip = ["show"], False
    for index, arg in enumerate(args[1:], start=1):
        if skip:
            skip = False
            continue
        if arg in ("--features-dir", "--interval", "--expires-in"):
            skip = True
        elif arg in ("--best-effort", "--quiet", "-q", "--no-uevents"):
            pass
        elif args[index - 1] == "--sysfs":
            mapped.append(str(node.host_path(NODE_SYS)))
        elif args[index - 1] == "--dev":
            mapped.append("/dev")
        else:
            mapped.append(arg)
    command = [sys.executable, "-m", "nfd_hooks", *mapped]
    if unprivileged:
        command = ["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--", *command]
    done = subprocess.run(command, capture_output=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


# -- one way, end to end --------------------------------------------------------------
class Deployed:
    """One way applied to the real node, with what the tests read from it."""

    def __init__(self, cluster: Cluster, node: RealNode, way: Way, helm: Path, nfd_module: Path) -> None:
        self.cluster, self.node, self.way, self.helm = cluster, node, way, helm
        self.work = new_work_dir(cluster.dir, way)
        clear_leftovers(cluster, helm, self.work)
        self.sysfs = build_sysfs(node.host_path(NODE_SYS))
        self.features = node.host_path(NODE_FEATURES)
        reset_features(self.features)
        started = time.monotonic()
        try:
            way.apply(cluster, helm, nfd_module, self.work)
            self.pod = wait_pod_ready(cluster, way)
        except BaseException:
            # A way that never got Ready leaves nothing behind for the next one
            # (it cascaded into "namespace already exists" once).
            self.remove()
            raise
        self.took = time.monotonic() - started

    def containers(self) -> List[Ran]:
        return pod_containers(self.node, self.pod, USER_PATHS)

    def remove(self) -> None:
        self.way.remove(self.cluster, self.helm, self.work)
        clear_leftovers(self.cluster, self.helm, self.work)
        # The next way starts from a Node without NFD's labels and annotations.
        node = self.cluster.get("node", self.node.name)
        keep = ("kubernetes.io/", "beta.kubernetes.io/", "node.kubernetes.io/")
        labels = [f"{key}-" for key in node["metadata"].get("labels", {}) if not key.startswith(keep)]
        annotations = [f"{key}-" for key in node["metadata"].get("annotations", {}) if key.startswith("nfd.node.kubernetes.io/")]
        if labels:
            self.cluster.kubectl("label", "node", self.node.name, *labels)
        if annotations:
            self.cluster.kubectl("annotate", "node", self.node.name, *annotations)


def restart_pod(deployed: Deployed) -> dict:
    """Delete the DaemonSet's pod; the new one, Ready, once its worker has published."""
    old = deployed.pod["metadata"]["uid"]
    deployed.cluster.kubectl("delete", "pod", "-n", NFD_NAMESPACE, deployed.pod["metadata"]["name"], "--wait=false")
    pod = wait_pod_ready(deployed.cluster, deployed.way, not_uid=old)
    wait_for("the new worker to publish", lambda: node_feature_owner(deployed.cluster, deployed.node.name) == pod["metadata"]["uid"],
             timeout=120, interval=0.5)
    deployed.pod = pod
    return pod


def wait_labels(cluster: Cluster, node: str, expected: Dict[str, str], timeout: float = 120) -> Dict[str, str]:
    """The Node's labels once every expected one is there with its value."""
    def probe():
        labels = cluster.node_labels(node)
        return labels if all(labels.get(k) == v for k, v in expected.items()) and all(k in labels for k in NFD_OWN) else None
    return wait_for(f"node {node} to carry the hook's labels and NFD's own", probe, timeout=timeout, interval=1)


def hook_of(containers: List[Ran]) -> Ran:
    return next(ran for ran in containers if ran.name == "nfd-hooks")


def writer_of(containers: List[Ran]) -> Ran:
    """The container whose file the Node shows now: the watcher where there is one."""
    watcher = [ran for ran in containers if ran.name == "nfd-hooks-watch"]
    return watcher[0] if watcher else hook_of(containers)


@pytest.mark.parametrize("way", WAYS, ids=[way.name for way in WAYS])
def test_way_runs_as_documented(real_node, images, binaries, nfd_module, way):
    cluster, node = real_node
    documented = rows()[way.name]
    deployed = Deployed(cluster, node, way, binaries["helm"], nfd_module)
    report: List[str] = [f"applied and Ready in {deployed.took:.1f} s"]
    try:
        # 1. The pod ran; the hook exited 0 and said what it wrote.
        containers = deployed.containers()
        report += pod_phases(deployed.pod)
        hook = hook_of(containers)
        assert hook.state == "exited" and hook.exit_code == 0, hook.log
        unprivileged = not hook.privileged
        writer = writer_of(containers)
        shown = show_as_the_hook(writer, node, unprivileged=not writer.privileged)
        expected = labels_of(shown)
        hook_labels = labels_of(show_as_the_hook(hook, node, unprivileged))
        assert f"nfd-hooks: wrote {way.hook_dir}/nfd-hooks ({len(hook_labels)} labels)" in hook.log, hook.log

        # 2. The Node's labels from our file are exactly what show prints.
        labels = wait_labels(cluster, node.name, expected)
        assert local_labels(cluster, node.name) == expected
        ours = {k: v for k, v in labels.items() if k.startswith(LOCAL_PREFIXES)}
        assert ours == {k: v for k, v in expected.items() if k.startswith(LOCAL_PREFIXES)}

        # 3. Every container ran as the docs say.
        observed = {ran.name: ran for ran in containers}
        assert sorted(observed) == sorted(row.container for row in documented), "docs/deployment.md 'What runs' lists other containers"
        for row in documented:
            ran = observed[row.container]
            assert ran.privileged == ran.unmasked, f"{ran.name}: privileged request and runtime disagree"
            assert (ran.kind, f"{ran.uid}:{ran.gid}", "yes" if ran.privileged else "no", ran.capability_summary,
                    "read-only" if ran.readonly_root else "writable", tuple(ran.host_mounts)) == (
                row.kind, row.uid_gid, row.privileged, row.capabilities, row.root, row.host_paths), (
                f"docs/deployment.md 'What runs' row for {way.name} {row.container} does not match what ran: {ran.line()}, "
                f"host paths {ran.host_mounts}")
        for claim in claims_for(way.name):
            ran = observed[claim.container]
            said = {"uid:gid": claim.uid_gid, "privileged": claim.privileged, "capabilities": claim.capabilities, "root": claim.root}
            was = {"uid:gid": f"{ran.uid}:{ran.gid}" if ":" in claim.uid_gid else str(ran.uid), "privileged": "yes" if ran.privileged else "no",
                   "capabilities": ran.capability_summary, "root": "read-only" if ran.readonly_root else "writable"}
            wrong = {key: (value, was[key]) for key, value in said.items() if value and value != was[key]}
            wrong.update({mount: "not mounted so" for mount in claim.host_paths if mount not in ran.host_mounts})
            assert not wrong, f"{claim.doc}: {claim.phrase!r} does not match what ran ({claim.container}): {wrong}"
        report += ["containers as they ran (runtime spec; /proc for running ones):"] + [f"    {ran.line()}" for ran in containers]

        # 4. Deleting the pod churns no label.
        stream = NodeStream(cluster, node.name)
        try:
            before = cluster.node_labels(node.name)
            since = time.monotonic()
            restart_pod(deployed)
            time.sleep(5)
            versions = [v for stamp, v in list(stream.versions) if stamp >= since]
            churned = {k for v in versions for k in before if v.get(k) != before[k]}
            assert not churned, f"labels removed or changed while the pod was replaced: {sorted(churned)}"
            report.append(f"pod deleted and replaced: {len(versions)} Node updates seen, no label removed or changed")
        finally:
            stream.close()

        # 5. Hostile hardware, and an unwritable features.d (one-shot ways).
        if way.name in HOSTILE_WAYS:
            report += hostile_cases(deployed, unprivileged)

        # 6. Hotplug through the pod.
        if way.name == "overlays/hotplug":
            report += hotplug_through_the_pod(deployed)

        final = cluster.node_labels(node.name)
        report += ["Node labels:"] + [f"    {k}={v}" for k, v in sorted(final.items())]
    finally:
        REPORT.append((f"realnode way {way.name}", report))
        deployed.remove()


def hostile_cases(deployed: Deployed, unprivileged: bool) -> List[str]:
    cluster, node = deployed.cluster, deployed.node
    lines = []
    for case, make in HOSTILE.items():
        build_sysfs(deployed.sysfs)
        make(deployed.sysfs)
        started = time.monotonic()
        restart_pod(deployed)
        hook = hook_of(deployed.containers())
        assert hook.exit_code == 0, f"{case}: {hook.log}"
        expected = labels_of(show_as_the_hook(hook, node, unprivileged))
        labels = wait_labels(cluster, node.name, expected)
        assert local_labels(cluster, node.name) == expected, case
        notices = [line for line in hook.log.splitlines() if "wrote" not in line]
        lines.append(f"hostile {case}: pod Running and Ready in {time.monotonic() - started:.1f} s, hook exit 0, "
                     f"{len(expected)} labels from our file, NFD's own: {', '.join(k.split('/')[1] for k in NFD_OWN if k in labels)}; "
                     f"hook said: {' | '.join(notices)[:300] or '(nothing but what it wrote)'}")
    # The hook cannot write at all: the previous file stays, the pod still starts.
    build_sysfs(deployed.sysfs)
    previous = local_labels(cluster, node.name)
    subprocess.run(["chattr", "+i", str(deployed.features)], check=True)
    try:
        restart_pod(deployed)
        hook = hook_of(deployed.containers())
        assert hook.exit_code == 0 and "--best-effort" in hook.log, hook.log
        status = next(s for s in deployed.pod["status"]["initContainerStatuses"] if s["name"] == "nfd-hooks")
        message = status["state"]["terminated"].get("message", "")
        assert message.startswith("nfd-hooks: error: "), status
        labels = wait_labels(cluster, node.name, previous)
        assert local_labels(cluster, node.name) == previous
        lines.append(f"features.d unwritable (chattr +i): pod Running and Ready, hook exit 0, the previous file's "
                     f"{len(previous)} labels kept, NFD's own present: {all(k in labels for k in NFD_OWN)}; "
                     f"termination message: {message.strip()}")
    finally:
        subprocess.run(["chattr", "-i", str(deployed.features)], check=True)
    return lines


def _usb_links(sysfs: Path, device: str) -> List[Path]:
    links = sysfs / "bus" / "usb" / "devices"
    return sorted(link for link in links.iterdir() if link.name == device or link.name.startswith(f"{device}:"))


def hotplug_through_the_pod(deployed: Deployed) -> List[str]:
    """Unplug and plug the bundle's NCS2 under the running pod's /sys, 20 times; the Node follows."""
    cluster, node, sysfs = deployed.cluster, deployed.node, deployed.sysfs
    stash = deployed.work / "unplugged"
    stash.mkdir()
    links = {link.name: os.readlink(link) for link in _usb_links(sysfs, NCS2)}
    device = (sysfs / "bus" / "usb" / "devices" / NCS2).resolve()
    stream = NodeStream(cluster, node.name)
    latencies: List[Tuple[bool, float]] = []
    try:
        assert stream.wait(NCS2_LABEL, True, 0, 60) is not None
        for event in range(HOTPLUG_EVENTS):
            plug = event % 2 == 1
            time.sleep(1.5)  # past NFD's 1 s fsnotify window of the previous change
            started = time.monotonic()
            if plug:
                (stash / device.name).rename(device)
                for name, target in links.items():
                    (sysfs / "bus" / "usb" / "devices" / name).symlink_to(target)
            else:
                for name in links:
                    (sysfs / "bus" / "usb" / "devices" / name).unlink()
                device.rename(stash / device.name)
            arrived = stream.wait(NCS2_LABEL, plug, started, 60)
            assert arrived is not None, f"event {event + 1} ({'plug' if plug else 'unplug'}) never reached the Node"
            latencies.append((plug, arrived - started))
    finally:
        stream.close()
        if not device.exists() and (stash / device.name).exists():
            (stash / device.name).rename(device)
    values = [latency for _, latency in latencies]
    return [
        f"hotplug through the pod: {len(values)} events (NCS2 unplugged and plugged under the pod's /sys; "
        f"the watcher rescans every 10 s: a fake sysfs sends no uevents), Node followed each: "
        f"median {statistics.median(values):.2f} s, max {max(values):.2f} s",
        "    " + ", ".join(f"{'+' if plug else '-'}{latency:.1f}" for plug, latency in latencies),
    ]


def test_machine_left_as_found(real_node, binaries):
    """The node changed no global sysctl (its kubelet wrote to masked copies)."""
    _, node = real_node
    assert global_sysctls() == node.sysctls_before
    REPORT.append(("realnode: machine", [f"global sysctls unchanged while the node ran: {node.sysctls_before}"]))
