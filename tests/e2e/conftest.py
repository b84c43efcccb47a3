"""Fixtures of the end-to-end tests: the real binaries, one control plane per
session, and the report printed at the end of the run (what NFD published for
each fleet node, where the scheduler put each pod).

Without Go the whole directory skips with one line; under CI
(NFD_HOOKS_REQUIRE_TOOLS=1) a missing piece fails instead.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest

from tests.e2e.fleet import Published, bring_up
from tests.e2e.harness import Cluster, E2EUnavailable, build_binaries

# Sections of the end-of-run report: (title, lines), filled by the tests.
REPORT: List[Tuple[str, List[str]]] = []


def unavailable(reason: str) -> None:
    if os.environ.get("NFD_HOOKS_REQUIRE_TOOLS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def e2e_binaries() -> Dict[str, Path]:
    """NFD, Kubernetes and etcd binaries (built on first use: minutes cold, cached after)."""
    print("\ne2e: scripts/build-e2e-binaries (cached after the first build)", file=sys.stderr)
    try:
        return build_binaries()
    except E2EUnavailable as missing:
        unavailable(str(missing))


@pytest.fixture(scope="session")
def cluster(e2e_binaries: Dict[str, Path]) -> Iterator[Cluster]:
    """etcd, kube-apiserver, NFD's CRDs, nfd-master and kube-scheduler, stopped at session end."""
    # World-traversable: the workers run as uid 65534 and read their kubeconfig here.
    directory = Path(tempfile.mkdtemp(prefix="nfd-hooks-e2e-"))
    directory.chmod(0o755)
    control_plane = Cluster(e2e_binaries, directory)
    try:
        control_plane.start()
    except E2EUnavailable as missing:
        control_plane.stop()
        shutil.rmtree(directory, ignore_errors=True)
        unavailable(str(missing))
    except BaseException:
        control_plane.stop()
        shutil.rmtree(directory, ignore_errors=True)
        raise
    try:
        yield control_plane
    finally:
        control_plane.stop()
        if os.environ.get("NFD_HOOKS_E2E_KEEP") == "1":
            print(f"\ne2e: logs and state kept in {directory}", file=sys.stderr)
        else:
            shutil.rmtree(directory, ignore_errors=True)


def pytest_terminal_summary(terminalreporter) -> None:
    for title, lines in REPORT:
        terminalreporter.section(title)
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def fleet(cluster: Cluster) -> Dict[str, Published]:
    """Every fleet node written by nfd-hooks, published by its nfd-worker, labelled by nfd-master."""
    # World-readable: each worker runs as uid 65534 and reads its features.d.
    directory = Path(tempfile.mkdtemp(prefix="fleet-", dir=cluster.dir))
    directory.chmod(0o755)
    published = bring_up(cluster, directory)
    REPORT.append(("e2e fleet: Node labels as NFD published them", [
        line for item in published.values() for line in (
            f"{item.node.name} ({item.node.description}):",
            *(f"    {key}={value}" for key, value in sorted(item.labels.items())),
        )
    ]))
    return published
