"""Shared test helpers: fixture paths, tool requirements, running the CLI."""

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
DTB_DIR = FIXTURES / "dtb"
# The workplace's shared inputs (real USB recordings) sit beside the checkout;
# NFD_HOOKS_SHARED points elsewhere (a git worktree nested deeper, say).
SHARED = Path(os.environ.get("NFD_HOOKS_SHARED") or ROOT.parent / "shared")


def require_tool(name: str) -> str:
    """The tool's path; skip when absent, but fail under CI (NFD_HOOKS_REQUIRE_TOOLS=1),
    where scripts/test installs every tool the suite needs."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} not installed (Debian package listed in scripts/system-packages.txt)"
    if os.environ.get("NFD_HOOKS_REQUIRE_TOOLS") == "1":
        pytest.fail(message)
    pytest.skip(message)


# What Go's strings.TrimSpace trims (unicode.IsSpace), as NFD does to each line.
GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"


def labels_of(content: bytes, raw_features: bool = False) -> dict:
    """The labels NFD's local source reads from ``content`` (with ``raw_features``:
    every feature, ``# +no-label`` ones too, as in NFD's ``local.feature``),
    read here independently of nfd_hooks.check."""
    labels, raw_next = {}, False
    for line in content.decode("utf-8").split("\n"):  # bytes.Split on "\n" in local.go
        line = line.strip(GO_SPACE)
        if line == "# +no-label":
            raw_next = True
        elif line and not line.startswith("#"):
            name, _, value = line.partition("=")
            if raw_features or not raw_next:
                labels[name] = value
            raw_next = False
    return labels


def run_cli(args: List[str], cwd: Optional[Path] = None, **kwargs) -> subprocess.CompletedProcess:
    """Run ``nfd-hooks`` as a separate process, exactly as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "nfd_hooks", *args],
        capture_output=True,
        cwd=cwd,
        timeout=60,
        **kwargs,
    )


def features_entries(directory) -> List[str]:
    """The names a write left in ``directory``, past the writer's hidden scratch
    directories (kept between writes), which must hold no temporary."""
    names = []
    for name in sorted(os.listdir(directory)):
        if name.startswith(".nfd-hooks-tmp."):
            assert os.listdir(os.path.join(directory, name)) == [], f"temporary left in {name}"
        else:
            names.append(name)
    return names


# What `scripts/test -m "not slow"` leaves out (README, "Quick start"): the tests that build or
# boot something, NFD and Kubernetes from source (tests/e2e), the real node (tests/realnode),
# the container images, ARM ones under qemu (tests/deploy/test_deploy_container.py) and NFD's
# (tests/deploy/test_nfd_image.py). Paths under tests/, a directory or a file.
SLOW = ("e2e", "realnode", "deploy/test_deploy_container.py", "deploy/test_nfd_image.py")


def pytest_collection_modifyitems(config, items) -> None:
    tests = ROOT / "tests"
    for item in items:
        where = Path(str(item.fspath)).relative_to(tests).as_posix()
        if any(where == slow or where.startswith(slow + "/") for slow in SLOW):
            item.add_marker(pytest.mark.slow)
