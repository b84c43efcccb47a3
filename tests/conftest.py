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
SHARED = ROOT.parent / "shared"


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


def run_cli(args: List[str], cwd: Optional[Path] = None, **kwargs) -> subprocess.CompletedProcess:
    """Run ``nfd-hooks`` as a separate process, exactly as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "nfd_hooks", *args],
        capture_output=True,
        cwd=cwd,
        timeout=60,
        **kwargs,
    )
