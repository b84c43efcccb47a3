"""Helpers shared by the deployment tests (tests/deploy/)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
MANIFESTS = ROOT / "manifests"


# (title, lines) the deploy tests print at the end of the run (conftest.py): what CI shows was built and run.
REPORT: List[Tuple[str, List[str]]] = []


def missing(message: str) -> None:
    """Skip, or fail under CI (NFD_HOOKS_REQUIRE_TOOLS=1), where everything is installed."""
    if os.environ.get("NFD_HOOKS_REQUIRE_TOOLS") == "1":
        pytest.fail(message)
    pytest.skip(message)


def pypi_tool(command: str, package: str) -> str:
    """A command installed by a PyPI package: the test virtualenv's bin first, then PATH."""
    beside = Path(sys.executable).parent / command
    if beside.exists():
        return str(beside)
    found = shutil.which(command)
    if found:
        return found
    missing(f"{command} not installed (PyPI package {package}, listed in scripts/test-requirements.txt)")
    raise AssertionError("unreachable")


def debian_tool(command: str, package: str) -> str:
    """A command from a Debian package listed in scripts/system-packages.txt."""
    found = shutil.which(command)
    if found:
        return found
    missing(f"{command} not installed (Debian package {package}, listed in scripts/system-packages.txt)")
    raise AssertionError("unreachable")


def run(args: List[str], timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)


def live_tree(dtb: Path, base: Path) -> None:
    """Lay a DTB out as the kernel does under /sys/firmware/devicetree/base (``base``):
    a directory per node, a file per property (raw bytes), a `name` file per node."""
    import struct

    from pyfdt.pyfdt import FdtBlobParse, FdtNode, FdtPropertyBytes, FdtPropertyStrings, FdtPropertyWords

    def lay(node, directory: Path) -> None:
        directory.mkdir(parents=True)
        if node.get_name() != "/":
            (directory / "name").write_bytes(node.get_name().split("@")[0].encode() + b"\0")
        for item in node:
            if isinstance(item, FdtNode):
                lay(item, directory / item.get_name())
            elif isinstance(item, FdtPropertyStrings):
                (directory / item.get_name()).write_bytes(b"".join(s.encode() + b"\0" for s in item.strings))
            elif isinstance(item, FdtPropertyWords):
                (directory / item.get_name()).write_bytes(struct.pack(f">{len(item.words)}I", *item.words))
            elif isinstance(item, FdtPropertyBytes):
                (directory / item.get_name()).write_bytes(bytes(b & 0xFF for b in item.bytes))
            else:
                (directory / item.get_name()).write_bytes(b"")

    with dtb.open("rb") as stream:
        root = FdtBlobParse(stream).to_fdt().get_rootnode()
    lay(root, base)
