"""CDI specs: one file per prepared device, holding exactly its device nodes.

The container runtime (containerd 1.7+ with CDI on, CRI-O) reads every spec in
/var/run/cdi and, for a container the kubelet hands ``<kind>=<name>``, applies
that device's edits: here, device nodes only, each with its host path and its
number, so the container gets ``/dev/bus/usb/002/003`` (or ``/dev/apex_0``) and
a device-cgroup rule for that one node, nothing else of the host's /dev.

/var/run is a tmpfs: a reboot empties it. The driver's checkpoint survives
(it lives under the kubelet's plugin directory), and a kubelet that restarts
pods after a reboot calls NodePrepareResources again, which rewrites the spec
(``Prepared.prepare`` is idempotent), so nothing is lost.

A spec also carries the claim it was written for (annotations), so a lost or
corrupt checkpoint is rebuilt from the specs (``prepared.Prepared.load``).
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from nfd_hooks.allocation.files import read_bounded, replace

CDI_VERSION = "0.6.0"  # the first with top-level annotations
KIND = "nfd-hooks.io/accelerator"
PREFIX = "nfd-hooks.io-accelerator_"  # file names: PREFIX + <claim uid>_<device>.json
ANNOTATION = "nfd-hooks.io/"

MAX_SPEC = 64 * 1024  # ours are a few hundred bytes

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


class Node(NamedTuple):
    """One device node: its path in the container (under /dev) and on the host, and its number."""

    path: str  # "/dev/bus/usb/002/003"
    host_path: str  # the host's path to it (the host's /dev, not the driver's view of it)
    major: int
    minor: int


class Entry(NamedTuple):
    """What a spec says: the claim and request it serves, the device, its nodes."""

    claim_uid: str
    namespace: str
    claim: str
    request: str
    device: str
    nodes: Tuple[Node, ...]


def device_id(claim_uid: str, device: str) -> str:
    """The CDI device name: unique per claim and device."""
    return f"{claim_uid}-{device}"


def qualified(claim_uid: str, device: str) -> str:
    """What the kubelet passes to the runtime: ``<kind>=<name>``."""
    return f"{KIND}={device_id(claim_uid, device)}"


def file_name(claim_uid: str, device: str) -> str:
    return _SAFE.sub("_", f"{PREFIX}{claim_uid}_{device}") + ".json"


def look_up_nodes(names: Tuple[str, ...], dev: Path, host_dev: Path) -> Tuple[Node, ...]:
    """The nodes named relative to /dev, with numbers from ``dev`` (the driver's view of the
    host's /dev); OSError if one is missing or no character device."""
    nodes = []
    for name in names:
        status = os.stat(dev / name, follow_symlinks=False)
        if not stat.S_ISCHR(status.st_mode):
            raise OSError(f"{dev / name} is not a character device")
        nodes.append(Node(f"/dev/{name}", str(host_dev / name), os.major(status.st_rdev), os.minor(status.st_rdev)))
    return tuple(nodes)


def render(entry: Entry) -> bytes:
    spec: Dict[str, Any] = {
        "cdiVersion": CDI_VERSION,
        "kind": KIND,
        "annotations": {
            ANNOTATION + "claim-uid": entry.claim_uid,
            ANNOTATION + "claim": f"{entry.namespace}/{entry.claim}",
            ANNOTATION + "request": entry.request,
            ANNOTATION + "device": entry.device,
        },
        "devices": [{
            "name": device_id(entry.claim_uid, entry.device),
            "containerEdits": {
                "deviceNodes": [
                    {"path": n.path, "hostPath": n.host_path, "type": "c", "major": n.major, "minor": n.minor, "permissions": "rw"}
                    for n in entry.nodes
                ],
            },
        }],
    }
    return (json.dumps(spec, indent=2, sort_keys=True) + "\n").encode()


def write(directory: Path, entry: Entry) -> Path:
    """Write (or replace) the spec atomically: the runtime never reads half a file."""
    path = directory / file_name(entry.claim_uid, entry.device)
    replace(path, render(entry))
    return path


def remove(directory: Path, claim_uid: str, device: str) -> None:
    try:
        os.unlink(directory / file_name(claim_uid, device))
    except FileNotFoundError:
        pass


def current(directory: Path, entry: Entry) -> bool:
    """Whether the spec on disk is exactly the one ``entry`` renders."""
    try:
        return (directory / file_name(entry.claim_uid, entry.device)).read_bytes() == render(entry)
    except OSError:
        return False


def read_all(directory: Path) -> Tuple[List[Entry], List[str]]:
    """Every spec of ours in ``directory``, and one problem line per unreadable one."""
    entries, problems = [], []
    try:
        names = sorted(name for name in os.listdir(directory) if name.startswith(PREFIX) and name.endswith(".json"))
    except OSError as error:
        return [], [f"cannot list {directory}: {error.strerror}"]
    for name in names:
        entry = _parse(directory / name)
        if entry is None:
            problems.append(f"{directory / name}: not a spec this driver wrote; left alone")
        else:
            entries.append(entry)
    return entries, problems


def node_from(values: Any) -> Node:
    """A Node from its JSON form ``[path, host path, major, minor]``; ValueError if it is not one."""
    if not (isinstance(values, list) and len(values) == 4):
        raise ValueError("a device node is [path, host path, major, minor]")
    path, host_path, major, minor = values
    if not (isinstance(path, str) and isinstance(host_path, str) and path.startswith("/dev/") and host_path):
        raise ValueError("a device node's paths are strings, its path under /dev")
    for number in (major, minor):
        if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number < 1 << 32:
            raise ValueError("a device node's major and minor are integers")
    return Node(path, host_path, major, minor)


def _parse(path: Path) -> Optional[Entry]:
    """The entry a spec of ours describes, or None when it is not exactly what ``render`` writes."""
    try:
        spec = json.loads(read_bounded(path, MAX_SPEC))
    except (OSError, ValueError, RecursionError):
        return None
    try:
        notes = spec["annotations"]
        namespace, _, claim = notes[ANNOTATION + "claim"].partition("/")
        edits = spec["devices"][0]["containerEdits"]["deviceNodes"]
        nodes = tuple(node_from([n["path"], n["hostPath"], n["major"], n["minor"]]) for n in edits)
        entry = Entry(notes[ANNOTATION + "claim-uid"], namespace, claim, notes[ANNOTATION + "request"],
                      notes[ANNOTATION + "device"], nodes)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None
    if not all(isinstance(value, str) and value for value in entry[:3] + entry[4:5]) or not isinstance(entry.request, str):
        return None
    return entry if json.loads(render(entry)) == spec else None  # exactly what we write: nothing more
