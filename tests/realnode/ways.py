"""The ways users deploy nfd-hooks, applied to the real node as users apply them:
``kubectl apply -k`` of manifests/ and of each overlay beside NFD's master from
NFD's own kustomize deployment (the kustomization docs/deployment.md gives, its
GitHub URLs pointed at the same files in NFD's Go module), and NFD's Helm chart
0.19.0 (from NFD's module) installed by a real helm with manifests/helm/values.yaml.

The only differences from what users apply are the two host paths
(host-paths.yaml: /sys -> a fake sysfs, features.d -> a private directory);
images are imported into the node's containerd under the names the manifests use.
"""

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

from tests.conftest import ROOT
from tests.e2e.harness import NFD_NAMESPACE, Cluster, run_checked, wait_for

HERE = Path(__file__).resolve().parent
PATCH = HERE / "host-paths.yaml"
POST_RENDERER = HERE / "helm-post-renderer"
DEPLOYMENT_DOC = ROOT / "docs" / "deployment.md"
NFD_REPO = "https://github.com/kubernetes-sigs/node-feature-discovery/"
NFD_REF = "?ref=v0.19.0"
HELM_RELEASE = "nfd"
# Where the node's pods find the fake sysfs and the features.d (the patch's paths, in the node's /var/lib).
NODE_SYS = "/var/lib/nfd-hooks-realnode/sys"
NODE_FEATURES = "/var/lib/nfd-hooks-realnode/features.d"
USER_PATHS = {NODE_SYS: "/sys", NODE_FEATURES: "/etc/kubernetes/node-feature-discovery/features.d"}


def nfd_master_kustomization() -> str:
    """The kustomization.yaml docs/deployment.md tells users to apply for NFD's master."""
    text = DEPLOYMENT_DOC.read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    found = [block for block in blocks if "deployment/base/master" in block and "kind: Kustomization" in block]
    assert len(found) == 1, "docs/deployment.md should hold one kustomization for NFD's master"
    return found[0]


@dataclass
class Way:
    """One way to deploy: how to apply and remove it, and its DaemonSet's name."""

    name: str
    daemonset: str
    hook_dir: str  # the features.d path inside the hook container

    def apply(self, cluster: Cluster, helm: Path, nfd_module: Path, work: Path) -> None:
        raise NotImplementedError

    def remove(self, cluster: Cluster, helm: Path, work: Path) -> None:
        raise NotImplementedError


@dataclass
class Kustomized(Way):
    """NFD's master (docs/deployment.md), then ``kubectl apply -k`` of a root of manifests/."""

    root: str = "manifests"

    def apply(self, cluster: Cluster, helm: Path, nfd_module: Path, work: Path) -> None:
        master = work / "nfd-master"
        master.mkdir()
        shutil.copytree(nfd_module / "deployment", master / "nfd" / "deployment")
        text = nfd_master_kustomization().replace(NFD_REPO, "nfd/").replace(NFD_REF, "")
        (master / "kustomization.yaml").write_text(text)
        cluster.kubectl("create", "namespace", NFD_NAMESPACE)
        cluster.kubectl("apply", "-k", str(master))
        hooks = work / "hooks"
        hooks.mkdir()
        shutil.copy(PATCH, hooks / PATCH.name)
        # kustomize takes a relative path to a base outside its root, never an absolute one.
        base = os.path.relpath(ROOT / self.root, hooks)
        (hooks / "kustomization.yaml").write_text(
            f"resources:\n- {base}\npatches:\n- path: {PATCH.name}\n  target:\n    kind: DaemonSet\n")
        cluster.kubectl("apply", "-k", str(hooks))

    def remove(self, cluster: Cluster, helm: Path, work: Path) -> None:
        cluster.kubectl("delete", "-k", str(work / "hooks"), "--ignore-not-found", "--wait=true", "--timeout=120s", check=False)
        cluster.kubectl("delete", "-k", str(work / "nfd-master"), "--ignore-not-found", "--wait=true", "--timeout=120s", check=False)


@dataclass
class Helm(Way):
    """``helm install`` of NFD's chart with manifests/helm/values.yaml."""

    def apply(self, cluster: Cluster, helm: Path, nfd_module: Path, work: Path) -> None:
        chart = nfd_module / "deployment" / "helm" / "node-feature-discovery"
        run_checked(cluster.in_netns([
            helm, "install", HELM_RELEASE, chart, "--namespace", NFD_NAMESPACE, "--create-namespace",
            "-f", ROOT / "manifests" / "helm" / "values.yaml", "--post-renderer", POST_RENDERER,
            f"--kubeconfig={cluster.kubeconfig}",
        ]), env=helm_env(cluster, work), timeout=300)

    def remove(self, cluster: Cluster, helm: Path, work: Path) -> None:
        subprocess.run(cluster.in_netns([helm, "uninstall", HELM_RELEASE, "--namespace", NFD_NAMESPACE, "--wait",
                                         f"--kubeconfig={cluster.kubeconfig}"]),
                       env=helm_env(cluster, work), capture_output=True, timeout=300)
        # helm leaves the chart's CRDs (crds/) and the namespace it created.
        cluster.kubectl("delete", "namespace", NFD_NAMESPACE, "--ignore-not-found", "--wait=true", "--timeout=120s", check=False)
        cluster.kubectl("delete", "crd", "nodefeatures.nfd.k8s-sigs.io", "nodefeaturerules.nfd.k8s-sigs.io",
                        "nodefeaturegroups.nfd.k8s-sigs.io", "--ignore-not-found", check=False)


def helm_env(cluster: Cluster, work: Path) -> Dict[str, str]:
    """helm's caches and config in the test's directory, kubectl for the post-renderer."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "KUBECTL": str(cluster.kubectl_path), "HOME": str(work),
            "HELM_CACHE_HOME": str(work / "helm-cache"), "HELM_CONFIG_HOME": str(work / "helm-config"),
            "HELM_DATA_HOME": str(work / "helm-data")}


WAYS: List[Way] = [
    Kustomized("manifests", "nfd-worker", "/features.d", "manifests"),
    Kustomized("overlays/unprivileged", "nfd-worker", "/features.d", "manifests/overlays/unprivileged"),
    Kustomized("overlays/hotplug", "nfd-worker", "/features.d", "manifests/overlays/hotplug"),
    Kustomized("overlays/hotplug-regular-sidecar", "nfd-worker", "/features.d", "manifests/overlays/hotplug-regular-sidecar"),
    Helm("helm", f"{HELM_RELEASE}-node-feature-discovery-worker", "/etc/kubernetes/node-feature-discovery/features.d"),
]


def new_work_dir(parent: Path, way: Way) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"way-{way.name.replace('/', '-')}-", dir=parent))


def clear_leftovers(cluster: Cluster, helm: Path, work: Path) -> None:
    """Whatever any way left (a Helm release, NFD's namespace and its pods), gone, so
    the next way starts clean even after one that failed half-applied (each way's
    remove() deletes its cluster-scoped objects)."""
    releases = subprocess.run(cluster.in_netns([helm, "list", "-q", "--namespace", NFD_NAMESPACE, f"--kubeconfig={cluster.kubeconfig}"]),
                              env=helm_env(cluster, work), capture_output=True, text=True, timeout=120)
    if HELM_RELEASE in releases.stdout.split():
        subprocess.run(cluster.in_netns([helm, "uninstall", HELM_RELEASE, "--namespace", NFD_NAMESPACE, "--wait",
                                         f"--kubeconfig={cluster.kubeconfig}"]),
                       env=helm_env(cluster, work), capture_output=True, timeout=300)
    cluster.kubectl("delete", "namespace", NFD_NAMESPACE, "--ignore-not-found", "--wait=false", check=False)
    wait_for(f"namespace {NFD_NAMESPACE} to go", lambda: cluster.kubectl(
        "get", "namespace", NFD_NAMESPACE, check=False).returncode != 0, timeout=180, interval=1)
