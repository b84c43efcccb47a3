"""The docs' machine-readable statement of what runs (docs/deployment.md, "What
runs"): for each way and container, its uid:gid, privileged flag, capabilities,
root filesystem and host paths. The real-node tests compare every row with the
containers as they ran, so a doc that drifts from what runs fails the suite."""

import re
from dataclasses import dataclass
from typing import Dict, List, Tuple

from tests.conftest import ROOT

DOC = ROOT / "docs" / "deployment.md"
BEGIN, END = "<!-- what-runs:begin", "<!-- what-runs:end -->"
FEATURES_D = "/etc/kubernetes/node-feature-discovery/features.d"


@dataclass(frozen=True)
class Row:
    way: str
    container: str
    kind: str
    uid_gid: str
    privileged: str
    capabilities: str
    root: str
    host_paths: Tuple[Tuple[str, str, str], ...]


def _code(cell: str) -> str:
    return cell.strip().strip("`")


def _mounts(cell: str) -> Tuple[Tuple[str, str, str], ...]:
    mounts = []
    for part in cell.split(","):
        match = re.fullmatch(r"\s*`?([^`]+?)`?\s*→\s*`([^`]+)`\s+(ro|rw)\s*", part)
        assert match, f"{DOC.name}: cannot read host path {part!r}"
        host = FEATURES_D if match.group(1) == "features.d" else match.group(1)
        mounts.append((host, match.group(2), match.group(3)))
    return tuple(sorted(mounts))


def rows() -> Dict[str, List[Row]]:
    """The table's rows by way."""
    text = DOC.read_text()
    start, end = text.index(BEGIN), text.index(END)
    by_way: Dict[str, List[Row]] = {}
    for line in text[start:end].splitlines()[1:]:
        if not line.startswith("|") or line.startswith("| ---") or line.startswith("| way"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        way, container, uid_gid, privileged, capabilities, root, host_paths = cells
        name, kind = re.fullmatch(r"`([^`]+)`\s*\(([^)]+)\)", container).groups()
        row = Row(_code(way), name, kind, uid_gid, privileged, capabilities, root, _mounts(host_paths))
        by_way.setdefault(row.way, []).append(row)
    return by_way


@dataclass(frozen=True)
class Claim:
    """A sentence of the README or docs about how a container runs: the phrase must
    still be there, and what it says must match the container as it ran."""

    doc: str
    phrase: str
    way: str
    container: str
    uid_gid: str = ""  # "UID:GID", or "UID" where the sentence names the uid only
    privileged: str = ""
    capabilities: str = ""
    root: str = ""
    host_paths: Tuple[Tuple[str, str, str], ...] = ()


# Prose that states uids, privileges, capabilities or host paths (whitespace-normalised phrases).
CLAIMS = (
    Claim("README.md", "a privileged one-shot `nfd-hooks write --sysfs /host-sys --features-dir /features.d` initContainer (uid 0) "
          "writes into the host's `/etc/kubernetes/node-feature-discovery/features.d`",
          "manifests", "nfd-hooks", uid_gid="0", privileged="yes",
          host_paths=((FEATURES_D, "/features.d", "rw"),)),
    Claim("README.md", "the unprivileged nfd-worker (`registry.k8s.io/nfd/node-feature-discovery:v0.19.0`, uid 65534,",
          "manifests", "nfd-worker", uid_gid="65534", privileged="no", capabilities="none",
          host_paths=((FEATURES_D, FEATURES_D, "ro"),)),
    Claim("README.md", "(an initContainer with `restartPolicy: Always`): not privileged, all capabilities dropped, "
          "read-only root filesystem, as uid 0", "overlays/hotplug", "nfd-hooks-watch",
          uid_gid="0", privileged="no", capabilities="none", root="read-only"),
    Claim("docs/hotplug.md", "so it runs as uid/gid 0, the directory's owner, which needs no capability to write there: "
          "all capabilities dropped, `allowPrivilegeEscalation: false`, a read-only root filesystem",
          "overlays/hotplug", "nfd-hooks-watch", uid_gid="0:0", capabilities="none", root="read-only"),
    Claim("docs/deployment.md", "not privileged, all capabilities dropped, no privilege escalation, read-only root filesystem; "
          "but as uid/gid 0", "overlays/unprivileged", "nfd-hooks",
          uid_gid="0:0", privileged="no", capabilities="none", root="read-only"),
    Claim("docs/deployment.md", "the hooks run as uid 0 (the base hook privileged; the unprivileged overlay's hook and the "
          "watcher with every capability dropped)", "manifests", "nfd-hooks", uid_gid="0", privileged="yes", capabilities="all"),
)


def normalised(text: str) -> str:
    return " ".join(text.split())


def claims_for(way: str) -> List[Claim]:
    """The claims about ``way``, each checked to be still in its document."""
    found = []
    for claim in CLAIMS:
        if claim.way != way:
            continue
        assert normalised(claim.phrase) in normalised((ROOT / claim.doc).read_text()), (
            f"{claim.doc} no longer says {claim.phrase!r}: update tests/realnode/what_runs.py CLAIMS with what it says now")
        found.append(claim)
    return found
