"""Fixtures of the real-node tests (``scripts/test tests/realnode``): the binaries,
a control plane with one real node (tests/e2e/node.py), our image and NFD's
built locally and imported under the names the manifests use, and the report
printed at the end of the run (each way's pod, each container as it ran, the
Node's labels).

Needs root, Go, podman, runc, iptables and Debian's CNI plugins; without them
the directory skips with one line, under CI (NFD_HOOKS_REQUIRE_TOOLS=1) it fails.
"""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest
import yaml

from tests.conftest import ROOT
from tests.e2e.harness import E2EUnavailable, build_binaries, run_checked
from tests.e2e.node import RealNode, real_node_cluster

# (title, lines) printed at the end of the run.
REPORT: List[Tuple[str, List[str]]] = []
CONTAINERS_CONF = ROOT / "scripts" / "podman-containers.conf"
# Per worktree, so that sessions in other worktrees never share a tag.
TAG = hashlib.sha256(str(ROOT).encode()).hexdigest()[:10]
HOOK_IMAGE = f"localhost/realnode/nfd-hooks:{TAG}"
NFD_IMAGE = f"localhost/realnode/node-feature-discovery:{TAG}"
# The name NFD's kustomize bases and chart 0.19.0 use for its image.
NFD_NAMES = ("registry.k8s.io/nfd/node-feature-discovery:v0.19.0",)


def hook_names() -> Tuple[str, ...]:
    """The names the manifests give our image, read from them (a hard-coded copy went
    stale once and every pod waited on an image never imported): the base's images:
    entry and the Helm values' initContainer."""
    base = yaml.safe_load((ROOT / "manifests" / "base" / "kustomization.yaml").read_text())
    values = yaml.safe_load((ROOT / "manifests" / "helm" / "values.yaml").read_text())
    names = {f"{image['newName']}:{image['newTag']}" for image in base["images"] if image["name"] == "nfd-hooks"}
    names |= {container["image"] for container in values["worker"]["initContainers"]}
    return tuple(sorted(names))


def unavailable(reason: str) -> None:
    if os.environ.get("NFD_HOOKS_REQUIRE_TOOLS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def pytest_terminal_summary(terminalreporter) -> None:
    for title, lines in REPORT:
        terminalreporter.section(title)
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def binaries() -> Dict[str, Path]:
    if os.geteuid() != 0:
        unavailable("the real node needs root (kubelet, containerd, namespaces, cgroups)")
    print("\nrealnode: scripts/build-e2e-binaries (cached after the first build)", file=sys.stderr)
    try:
        return build_binaries()
    except E2EUnavailable as missing:
        unavailable(str(missing))
        raise


@pytest.fixture(scope="session")
def nfd_module(binaries: Dict[str, Path]) -> Path:
    """NFD v0.19.0's module (its deployment/ and Helm chart), from Go's module cache."""
    go = os.environ.get("GO") or "/usr/local/go/bin/go"
    done = run_checked([go, "mod", "download", "-json", "sigs.k8s.io/node-feature-discovery@v0.19.0"], cwd="/")
    return Path(json.loads(done.stdout)["Dir"])


@pytest.fixture(scope="session")
def real_node(binaries: Dict[str, Path]) -> Iterator[Tuple]:
    """(cluster, node): a control plane and one real node, torn down at the end (on failure too)."""
    try:
        with real_node_cluster(binaries) as pair:
            yield pair
    except E2EUnavailable as missing:
        unavailable(str(missing))
    _, node = pair
    left = node._cgroup_dirs()
    REPORT.append(("realnode: teardown", [
        f"every process under cgroup /{node.cgroup} ended; cgroups left: {len(left)}; "
        f"node directory removed: {not node.dir.exists()}"]))
    assert not left, f"cgroups left behind: {left}"


def _podman(*args: str, timeout: float = 2400) -> subprocess.CompletedProcess:
    env = dict(os.environ, CONTAINERS_CONF=str(CONTAINERS_CONF))
    return run_checked(["podman", *args], env=env, timeout=timeout)


def _build(script: str, tag: str) -> Tuple[str, float]:
    import time

    started = time.monotonic()
    env = dict(os.environ, CONTAINERS_CONF=str(CONTAINERS_CONF))
    done = subprocess.run([str(ROOT / "scripts" / script), "amd64", tag], capture_output=True, text=True, env=env, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"scripts/{script} amd64 {tag} failed:\n{done.stderr[-3000:]}")
    return done.stdout.strip().splitlines()[-1], time.monotonic() - started


@pytest.fixture(scope="session")
def images(real_node: Tuple, tmp_path_factory) -> Dict[str, str]:
    """Our image (scripts/build-image) and NFD's (scripts/build-nfd-image), in the node's containerd."""
    _, node = real_node
    node: RealNode
    for tool in ("podman", "mmdebstrap"):
        if not any(Path(d, tool).exists() for d in os.environ.get("PATH", "").split(os.pathsep)):
            unavailable(f"{tool} not installed (scripts/system-packages.txt)")
    directory = tmp_path_factory.mktemp("images")
    built = {}
    lines = []
    for script, tag, names in (("build-image", HOOK_IMAGE, hook_names()), ("build-nfd-image", NFD_IMAGE, NFD_NAMES)):
        image_id, took = _build(script, tag)
        archive = directory / (tag.split("/")[-1].replace(":", "-") + ".tar")
        _podman("save", "--format", "oci-archive", "-o", str(archive), tag)
        node.load_image(archive, names)
        archive.unlink()
        built[tag] = image_id
        lines.append(f"{tag} ({image_id[:12]}, scripts/{script} amd64, {took:.0f} s) imported as {', '.join(names)}")
    REPORT.append(("realnode: images", lines))
    return built
