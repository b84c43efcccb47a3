"""Container checks (issue 4): build the image with podman from a local base,
run `nfd-hooks write` in it the way the DaemonSet does, and show why the hook
reads /host-sys: the runtime masks the container's own /sys/firmware.

Slow the first time (mmdebstrap builds the base, ~1-2 min); the base tarball is
cached under ${XDG_CACHE_HOME:-~/.cache}/nfd-hooks/ and podman caches the
image layers, so re-runs take seconds.
"""

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from deploytools import REPORT, ROOT, debian_tool, live_tree, missing, run
from tests.conftest import features_entries

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="containers need Linux")

IMAGE = "localhost/nfd-hooks:deploy-test"
CONTAINERS_CONF = ROOT / "scripts" / "podman-containers.conf"
EXPECTED = ROOT / "fixtures" / "dtb" / "expected"


class Podman:
    def __init__(self, env):
        self.env = env
        self.command = debian_tool("podman", "podman")

    def __call__(self, *args, timeout=300, check=True):
        result = run([self.command, *args], timeout=timeout, env=self.env)
        if check:
            assert result.returncode == 0, f"podman {' '.join(args)}\n{result.stdout}\n{result.stderr}"
        return result


@pytest.fixture(scope="session")
def podman():
    if os.geteuid() != 0:
        pytest.skip("container tests need root: rootful podman and mmdebstrap (CI runs as root)")
    debian_tool("mmdebstrap", "mmdebstrap")
    debian_tool("runc", "runc")
    env = dict(os.environ, CONTAINERS_CONF=str(CONTAINERS_CONF))
    return Podman(env)


@pytest.fixture(scope="session")
def base_image(podman):
    result = run([str(ROOT / "scripts" / "local-base-image")], timeout=900, env=podman.env)
    if result.returncode != 0:
        pytest.skip(f"cannot build the local base image with mmdebstrap: {result.stderr.strip()[-600:]}")
    image = result.stdout.strip().splitlines()[-1]
    probe = podman("run", "--rm", image, "true", check=False, timeout=120)
    if probe.returncode != 0:
        # Everything else in the suite still runs; this says exactly why these cannot.
        pytest.skip(f"podman cannot run a container on this machine: {probe.stderr.strip()[-600:]}")
    return image


def _build(podman, arch: str, tag: str) -> str:
    """Build the image for ``arch`` as the README says (scripts/build-image); its ID."""
    result = run([str(ROOT / "scripts" / "build-image"), arch, tag], timeout=2400, env=podman.env)
    assert result.returncode == 0, f"scripts/build-image {arch}: {result.stderr.strip()[-1500:]}"
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def image(podman, base_image):
    _build(podman, "amd64", IMAGE)
    return IMAGE


def _labels(content: str) -> set:
    lines = [line for line in content.splitlines() if line and not line.startswith("#")]
    raw_marked = set()
    previous = ""
    for line in content.splitlines():
        if previous == "# +no-label":
            raw_marked.add(line)
        previous = line
    return {line for line in lines if line not in raw_marked}


def _write_in_container(podman, image, sysfs: Path, features: Path, *extra):
    return podman(
        "run", "--rm", "--read-only", "--network=none",
        "--volume", f"{sysfs}:/host-sys:ro",
        "--volume", f"{features}:/features.d",
        *extra,
        image, "write", "--sysfs", "/host-sys", "--features-dir", "/features.d",
        check=False, timeout=120,
    )


@pytest.fixture
def rpi_sysfs(tmp_path):
    sysfs = tmp_path / "sys"
    live_tree(ROOT / "fixtures" / "dtb" / "rpi-4-b.dtb", sysfs / "firmware" / "devicetree" / "base")
    os.chmod(tmp_path, 0o755)
    return sysfs


def test_image_metadata(podman, image):
    (info,) = json.loads(podman("image", "inspect", image).stdout)
    config = info["Config"]
    assert config["Entrypoint"] == ["nfd-hooks"]
    labels = config["Labels"]
    for key in ("title", "description", "version", "licenses", "base.name"):
        assert labels.get(f"org.opencontainers.image.{key}"), key
    assert labels["org.opencontainers.image.version"] == "0.1.0"
    # No compilers, no pip in the runtime image.
    probe = podman("run", "--rm", "--entrypoint", "/bin/sh", image, "-c",
                   "for c in gcc cc c++ g++ clang make; do command -v $c; done; "
                   "ls /opt/nfd-hooks/bin", check=False)
    assert probe.stdout.split() and "nfd-hooks" in probe.stdout.split()
    assert not any(c in probe.stdout.split() for c in ("gcc", "cc", "make")), probe.stdout
    assert not any(word.startswith("pip") for word in probe.stdout.split()), probe.stdout
    assert podman("run", "--rm", image, "--version").stdout.strip() == "nfd-hooks 0.1.0"


def test_write_in_container_matches_the_board(podman, image, rpi_sysfs, tmp_path):
    features = tmp_path / "features.d"
    features.mkdir()
    result = _write_in_container(podman, image, rpi_sysfs, features)
    assert result.returncode == 0, result.stderr
    written = features / "nfd-hooks"
    assert stat.S_IMODE(written.stat().st_mode) == 0o644  # readable by the worker (65534)
    assert features_entries(features) == ["nfd-hooks"]  # no temporary left behind
    content = written.read_text()
    expected = set((EXPECTED / "rpi-4-b.labels").read_text().split())
    assert _labels(content) == expected
    assert "# +no-label\nbeta.devicetree.org/compatible/raspberrypi,4-model-b=1\n" in content
    # The same as the tool prints on the host for the same tree.
    host = subprocess.run([sys.executable, "-m", "nfd_hooks", "show", "--sysfs", str(rpi_sysfs), "--no-usb"],
                          capture_output=True, text=True, timeout=60)
    assert host.returncode == 0, host.stderr
    assert _labels(host.stdout) == _labels(content)


def test_write_in_container_unprivileged(podman, image, rpi_sysfs, tmp_path):
    """As manifests/overlays/unprivileged runs it: uid 0, no capabilities, into
    the host's features.d (root's, mode 0755)."""
    features = tmp_path / "features.d"
    features.mkdir()
    features.chmod(0o755)
    result = _write_in_container(podman, image, rpi_sysfs, features, "--user", "0:0",
                                 "--cap-drop", "ALL", "--security-opt", "no-new-privileges")
    assert result.returncode == 0, result.stderr
    assert _labels((features / "nfd-hooks").read_text()) == set((EXPECTED / "rpi-4-b.labels").read_text().split())


def test_write_in_container_without_devicetree_exits_0(podman, image, tmp_path):
    """An amd64 server: no /sys/firmware/devicetree at all."""
    sysfs = tmp_path / "sys"
    (sysfs / "firmware" / "acpi").mkdir(parents=True)
    features = tmp_path / "features.d"
    features.mkdir()
    result = _write_in_container(podman, image, sysfs, features)
    assert result.returncode == 0, result.stderr
    assert not [line for line in (features / "nfd-hooks").read_text().splitlines()
                if line and not line.startswith("#")]


def test_runtime_masks_own_sys_firmware_but_not_a_host_sys_mount(podman, base_image):
    host = sorted(os.listdir("/sys/firmware")) if os.path.isdir("/sys/firmware") else []
    if not host:
        pytest.skip("this machine's /sys/firmware is empty: nothing to show masked")
    script = "ls -1 /host-sys/firmware; echo ---; ls -1A /sys/firmware"
    shown = podman("run", "--rm", "--volume", "/sys:/host-sys:ro", base_image, "sh", "-c", script).stdout
    through_host_sys, own = shown.split("---\n")
    assert sorted(through_host_sys.split()) == host  # e.g. acpi: the hostPath is a separate mount
    assert own.split() == []  # the runtime's masked path
    # privileged: the mask is not applied (why the seeds' hook was privileged)
    privileged = podman("run", "--rm", "--privileged", base_image, "ls", "-1", "/sys/firmware").stdout
    assert sorted(privileged.split()) == host


# Debian architecture -> the image's Architecture and `uname -m` in it: the boards this tool is for.
ARM = {"arm64": ("arm64", "aarch64"), "armhf": ("arm", "armv7l")}
SAMPLE_NODE = ROOT / "fixtures" / "nodes" / "rpi4b-ncs2-webcam"
# arm64 boards and an armhf one, each laid out as the kernel shows it under /sys.
ARCH_DTBS = ["rpi-4-b", "jetson-nano", "coral-dev-board", "am572x-idk"]


@pytest.fixture(scope="session")
def arm_images(podman):
    """The image for linux/arm64 and linux/arm/v7, built under qemu-user on the
    trees scripts/test-arm tests in."""
    if shutil.which("update-binfmts") is None or not Path("/usr/libexec/qemu-binfmt/aarch64-binfmt-P").exists():
        missing("qemu-user-static and binfmt-support not installed (scripts/system-packages.txt)")
    enable = run([str(ROOT / "scripts" / "enable-qemu-binfmt")])
    if enable.returncode != 0:
        missing(f"cannot register qemu-user: {enable.stderr.strip()}")
    # Both at once: mmdebstrap under qemu takes minutes per base, cold.
    builds = {
        arch: subprocess.Popen([str(ROOT / "scripts" / "build-image"), arch, f"{IMAGE}-{arch}"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=podman.env)
        for arch in ARM
    }
    images = {}
    for arch, build in builds.items():
        out, err = build.communicate(timeout=2400)
        assert build.returncode == 0, f"scripts/build-image {arch}: {err.strip()[-1500:]}"
        images[arch] = out.strip().splitlines()[-1]
    return images


def _write_as_the_manifests_do(podman, image, tmp_path: Path, *args) -> bytes:
    features = tmp_path / "features.d"
    features.mkdir()
    result = podman(
        "run", "--rm", "--read-only", "--network=none",
        "--volume", f"{tmp_path}:/input:ro", "--volume", f"{features}:/features.d",
        image, "write", "--features-dir", "/features.d", *args,
        check=False, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert features_entries(features) == ["nfd-hooks"]
    return (features / "nfd-hooks").read_bytes()


def test_images_write_the_same_bytes_on_amd64_arm64_and_armv7(podman, image, arm_images, tmp_path):
    """issue 16: the image for each platform, run under emulation with a
    read-only root, writes byte-identical files for the sample node and real boards."""
    from nfd_hooks.nodes import differences

    images = {"amd64": image, **arm_images}
    for arch, image_id in arm_images.items():
        (info,) = json.loads(podman("image", "inspect", image_id).stdout)
        assert info["Architecture"] == ARM[arch][0]
        # Its binaries are that machine's (run by qemu-user): podman 4.3 keeps no variant to check.
        machine = podman("run", "--rm", "--entrypoint", "uname", image_id, "-m").stdout.strip()
        assert machine == ARM[arch][1]
    cases = {"sample node": ["--replay", "/input/bundle"]}
    for name in ARCH_DTBS:
        cases[name] = ["--sysfs", f"/input/{name}"]
    written = {}
    for arch, image_id in images.items():
        for case, args in cases.items():
            scratch = tmp_path / arch / case.replace(" ", "-")
            scratch.mkdir(parents=True)
            if case == "sample node":
                shutil.copytree(SAMPLE_NODE, scratch / "bundle", symlinks=True)
            else:
                live_tree(ROOT / "fixtures" / "dtb" / f"{case}.dtb", scratch / case / "firmware" / "devicetree" / "base")
            os.chmod(scratch, 0o755)
            written[arch, case] = _write_as_the_manifests_do(podman, image_id, scratch, *args)
    for case in cases:
        assert written["arm64", case] == written["amd64", case], case
        assert written["armhf", case] == written["amd64", case], case
    REPORT.append(("images built and run: linux/amd64, linux/arm64, linux/arm/v7", [
        f"{arch}: {podman('image', 'inspect', '--format', '{{.Id}} {{.Architecture}} {{.Size}}', image_id).stdout.strip()}"
        f" (id, architecture, bytes); wrote {len(cases)} cases: {', '.join(cases)}"
        for arch, image_id in images.items()
    ] + ["the three architectures wrote byte-identical files for every case"]))
    # ... and what was written is right, not merely the same.
    sample = written["amd64", "sample node"]
    assert differences((SAMPLE_NODE / "expected.features").read_bytes(), sample) == []
    for name in ARCH_DTBS:
        expected = set((EXPECTED / f"{name}.labels").read_text().split())
        devicetree = {label for label in _labels(written["amd64", name].decode())
                      if label.startswith("beta.devicetree.org/")}  # the catalog adds accelerators
        assert devicetree == expected, name
