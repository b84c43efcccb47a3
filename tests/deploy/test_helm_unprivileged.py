"""The Helm chart's features-d is a root-owned hostPath (mode 0755). Its
unprivileged hook must run as that owner with no capabilities: uid 65534
cannot create the file there. Both run through the real CLI, with the
capabilities and uids the securityContexts give (setpriv)."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import DTB_DIR, ROOT, features_entries, require_tool

NO_CAPS = ["--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all", "--no-new-privs"]


def write_as(uid: int, directory) -> subprocess.CompletedProcess:
    setpriv = require_tool("setpriv")
    return subprocess.run(
        [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *NO_CAPS, "--",
         sys.executable, "-m", "nfd_hooks", "write", "--devicetree", str(DTB_DIR / "rpi-4-b.dtb"), "--no-usb",
         "--features-dir", str(directory)],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )


@pytest.fixture
def host_features_d():
    """/etc/kubernetes/node-feature-discovery/features.d as a node has it: root's, 0755, searchable."""
    if os.getuid() != 0:
        pytest.skip("needs root to create a root-owned directory and drop to other uids")
    parent = Path(tempfile.mkdtemp(prefix="nfd-hooks-hostpath-"))  # not pytest's: its parents are 0700
    parent.chmod(0o755)
    directory = parent / "features.d"
    directory.mkdir(mode=0o755)
    yield directory
    shutil.rmtree(parent)


def test_root_without_capabilities_writes_the_root_owned_hostpath(host_features_d):
    done = write_as(0, host_features_d)
    assert done.returncode == 0, done.stderr
    assert features_entries(host_features_d) == ["nfd-hooks"]
    assert "beta.devicetree.org/raspberrypi-4-model-b=1" in (host_features_d / "nfd-hooks").read_text()


def test_uid_65534_cannot_and_says_so_in_one_line(host_features_d):
    done = write_as(65534, host_features_d)
    assert done.returncode == 1
    assert done.stderr.startswith("nfd-hooks: error: ") and len(done.stderr.strip().splitlines()) == 1
    assert "Permission denied" in done.stderr
    assert features_entries(host_features_d) == []


def test_a_directory_behind_an_unsearchable_parent_is_one_line_not_a_traceback(host_features_d):
    host_features_d.parent.chmod(0o700)
    done = write_as(65534, host_features_d)
    assert done.returncode == 1
    assert done.stderr.startswith("nfd-hooks: error: cannot use features directory") and "Traceback" not in done.stderr
