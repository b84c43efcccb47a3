"""NFD's worker image for the architectures NFD does not publish (issue 24 item 7):
scripts/build-nfd-image builds it from NFD's own source for linux/arm64 and
linux/arm/v7 (Go cross-compiles; cgo for the CPU hwcap reader, as NFD's
Dockerfile does), laid out as NFD's image; each runs ``nfd-worker -version``
under qemu-user, by image ID (podman 4.3 cannot run --platform from a list).
The amd64 build is the image the real-node tests run (tests/realnode)."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from deploytools import REPORT, ROOT, debian_tool, missing, run

CONTAINERS_CONF = ROOT / "scripts" / "podman-containers.conf"
ARCHES = {"arm64": ("arm64", "aarch64-linux-gnu-gcc"), "armhf": ("arm", "arm-linux-gnueabihf-gcc")}
TAG = "localhost/nfd-hooks-e2e/node-feature-discovery:v0.19.0-"


@pytest.fixture(scope="module")
def podman_env():
    if os.geteuid() != 0:
        pytest.skip("podman image builds need root here (CI runs as root)")
    debian_tool("podman", "podman")
    for arch, (_, compiler) in ARCHES.items():
        debian_tool(compiler, f"gcc-{compiler[:-4]}")
    go = os.environ.get("GO") or shutil.which("go") or "/usr/local/go/bin/go"
    if not os.access(go, os.X_OK):
        missing("Go not installed (needed to build NFD: scripts/build-nfd-image)")
    if shutil.which("update-binfmts") is None or not Path("/usr/libexec/qemu-binfmt/aarch64-binfmt-P").exists():
        missing("qemu-user-static and binfmt-support not installed (scripts/system-packages.txt)")
    enable = run([str(ROOT / "scripts" / "enable-qemu-binfmt")])
    if enable.returncode != 0:
        missing(f"cannot register qemu-user: {enable.stderr.strip()}")
    return dict(os.environ, CONTAINERS_CONF=str(CONTAINERS_CONF), GO=go)


@pytest.mark.parametrize("arch", sorted(ARCHES))
def test_nfd_worker_image_builds_and_runs(podman_env, arch):
    done = run([str(ROOT / "scripts" / "build-nfd-image"), arch, TAG + arch], timeout=3600, env=podman_env)
    assert done.returncode == 0, done.stderr[-3000:]
    image_id = done.stdout.strip().splitlines()[-1]
    (info,) = json.loads(run(["podman", "image", "inspect", image_id], env=podman_env).stdout)
    # Laid out as NFD's image: a numeric non-root user (the manifests' runAsNonRoot needs it), the binaries.
    assert info["Architecture"] == ARCHES[arch][0]
    assert info["Config"]["User"] == "65534:65534"
    version = subprocess.run(["podman", "run", "--rm", "--network=none", "--read-only", image_id, "nfd-worker", "-version"],
                             capture_output=True, text=True, env=podman_env, timeout=300)
    assert version.returncode == 0, version.stderr
    printed = (version.stdout + version.stderr).strip()
    assert "v0.19.0" in printed, printed
    REPORT.append((f"NFD image built from source: linux/{'arm/v7' if arch == 'armhf' else 'arm64'}", [
        f"{image_id[:12]} architecture {info['Architecture']}, user {info['Config']['User']}, {info['Size']} bytes; "
        f"under qemu-user: {printed}",
    ]))
