"""Every shipped deployment, as rendered, beside the real nfd-worker: an
unplugged device's USB and accelerator labels leave the Node within the time
the manifests document, and no shipped one-shot hook lets its labels expire.

A feature file another tool dropped in the host's features.d reaches the Node
beside ours in every setup. The hook's arguments and the worker's configuration
come from the rendered overlays (``kubectl kustomize``) and Helm values, with
only the paths mapped to the test's fake host. The one-shot setups give the USB labels to NFD's own usb
source, which drops them at its next rescan: documented as one
``core.sleepInterval``, shortened here to 3 s so the test need not wait 60 s.
The hotplug setups give them to the watcher (NFD's usb source labels nothing),
documented as seconds; their rescan stays at 60 s, so only the watcher and
fsnotify can be what removed them.
"""

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

import pytest
import yaml

from tests.conftest import DTB_DIR, ROOT
from tests.e2e.conftest import REPORT
from tests.e2e.fleet import SYSFS_SKELETON
from tests.e2e.hotplug import NCS2_ACCELERATOR, NCS2_LABEL, NodeStream, unplug
from tests.fakehost import NCS2, PI4_HUBS, make_host

ONE_SHOT_RESCAN = 3.0
# What the test allows beyond the documented time: API and master round trips on a busy machine.
MARGIN = 10.0
HOOKS = ("nfd-hooks", "nfd-hooks-watch")
HOST_FILE, HOST_LABEL = "10-vendor-tool", "example.com/vendor-tool"


def rendered(root: str) -> Dict:
    """The hook containers and the worker config of a kustomize root, as Kubernetes would get them."""
    kubectl = Path(sys.executable).parent / "kubectl"
    text = subprocess.run([str(kubectl), "kustomize", str(ROOT / root)], capture_output=True, text=True, check=True).stdout
    docs = [d for d in yaml.safe_load_all(text) if d]
    spec = next(d for d in docs if d["kind"] == "DaemonSet")["spec"]["template"]["spec"]
    config = yaml.safe_load(next(d for d in docs if d["kind"] == "ConfigMap")["data"]["nfd-worker.conf"])
    hooks = [c for c in spec["initContainers"] + spec["containers"] if c["name"] in HOOKS]
    return {"hooks": hooks, "config": config}


def helm() -> Dict:
    """manifests/helm/values.yaml's hook in NFD's chart, whose worker config is NFD's default."""
    values = yaml.safe_load((ROOT / "manifests" / "helm" / "values.yaml").read_text())
    return {"hooks": values["worker"]["initContainers"], "config": {}}


SETUPS = {
    "manifests": lambda: rendered("manifests"),
    "overlays/unprivileged": lambda: rendered("manifests/overlays/unprivileged"),
    "overlays/hotplug": lambda: rendered("manifests/overlays/hotplug"),
    "overlays/hotplug-regular-sidecar": lambda: rendered("manifests/overlays/hotplug-regular-sidecar"),
    "helm": helm,
}


def local_args(args: List[str], sysfs: Path, features_dir: Path) -> List[str]:
    """The container's arguments on the test's host: its paths mapped, uevents off (a fake sysfs has none)."""
    mapped = []
    for index, arg in enumerate(args):
        before = args[index - 1] if index else ""
        mapped.append(str(sysfs) if before == "--sysfs" else str(features_dir) if before == "--features-dir"
                      else "0.5" if before == "--interval" else arg)
    return mapped + (["--no-uevents"] if args[0] == "watch" else [])


@pytest.mark.parametrize("setup", sorted(SETUPS))
def test_unplugged_ncs2_leaves_the_node_in_time(cluster, setup):
    shipped = SETUPS[setup]()
    hooks, config = shipped["hooks"], shipped["config"]
    watching = any(hook["args"][0] == "watch" for hook in hooks)
    for hook in hooks:
        if hook["args"][0] == "write" and not watching:
            assert "--expires-in" not in hook["args"], f"{setup}: a one-shot hook's labels would all expire"
    config.setdefault("core", {})
    if not watching:
        config["core"]["sleepInterval"] = f"{ONE_SHOT_RESCAN:g}s"
    rescan = float(str(config["core"].get("sleepInterval", "60s")).rstrip("s"))
    documented = 5.0 if watching else rescan

    directory = Path(tempfile.mkdtemp(prefix="overlay-", dir=cluster.dir))
    directory.chmod(0o755)
    sysfs = make_host(directory / "sys", (DTB_DIR / "rpi-4-b.dtb").read_bytes(), PI4_HUBS + (NCS2,))
    for path in SYSFS_SKELETON:
        (sysfs / path).mkdir(parents=True, exist_ok=True)
    features_dir = directory / "features.d"
    features_dir.mkdir()
    features_dir.chmod(0o755)
    # Another tool's file in the host's features.d (NFD's drop zone): it must reach the Node too.
    (features_dir / HOST_FILE).write_text(f"{HOST_LABEL}=1\n")
    (features_dir / HOST_FILE).chmod(0o644)
    node = f"overlay-{setup.replace('/', '-')}"
    watcher: Optional[subprocess.Popen] = None
    for hook in hooks:
        args = [sys.executable, "-m", "nfd_hooks", *local_args(hook["args"], sysfs, features_dir)]
        if hook["args"][0] == "write":
            subprocess.run(args, check=True, capture_output=True, cwd=ROOT)
        else:
            watcher = subprocess.Popen(args, stderr=subprocess.DEVNULL, cwd=ROOT)
    cluster.add_node(node, "arm64")
    stream = NodeStream(cluster, node)
    worker = cluster.start_worker(node, features_dir, sysfs, config=config)
    try:
        assert stream.wait(NCS2_LABEL, True, 0, 90) is not None, worker.log_text()[-3000:]
        labels = cluster.node_labels(node)
        assert labels.get(HOST_LABEL) == "1" and "beta.devicetree.org/brcm-bcm2711" in labels, labels
        # The accelerator label follows the device only where the watcher owns it.
        assert (NCS2_ACCELERATOR in labels) == watching
        time.sleep(1.5)
        unplugged = time.monotonic()
        unplug(sysfs, NCS2)
        gone = [stream.wait(key, False, unplugged, documented + MARGIN) for key in (NCS2_LABEL, NCS2_ACCELERATOR)]
        assert None not in gone, f"{setup}: still labelled {documented + MARGIN:g} s after the unplug"
        took = max(gone) - unplugged
        REPORT.append((f"e2e overlay {setup}: NCS2 unplugged -> labels gone", [
            f"{took:.2f} s (documented: {'the watcher, seconds' if watching else f'one rescan, core.sleepInterval = {rescan:g} s here'})"
        ]))
    finally:
        stream.close()
        worker.stop()
        if watcher:
            watcher.terminate()
            watcher.wait(10)
        cluster.kubectl("delete", "node", node, "--wait=false", check=False)
