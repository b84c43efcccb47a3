"""Prepared claims: which claim holds which device, on disk so a restart keeps them.

The kubelet calls NodePrepareResources once per claim and pod start, and does
not call it again when the plugin restarts; it calls NodeUnprepareResources
when the pod is gone. In between, only the driver knows that the device is
held: the checkpoint keeps that across restarts, so a device prepared for one
claim is still refused to another after the driver comes back, and its CDI spec
is still removed at unprepare.

The checkpoint is one JSON file, replaced atomically, with a SHA-256 of its
content. A checkpoint that is missing, truncated, corrupt or fails its sum
is set aside (renamed ``.corrupt-<time>-<random>``) with one log line, and the prepared claims
are rebuilt from the CDI specs, which name their claim: a known way DRA drivers
crash-loop is a checkpoint they cannot parse. The union of both is kept: a spec
written just before a crash that never reached the checkpoint is adopted,
and dropped later if its claim no longer exists (``Driver`` asks the API server).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from nfd_hooks.allocation import cdi
from nfd_hooks.allocation.cdi import Entry
from nfd_hooks.allocation.files import read_bounded, replace
from nfd_hooks.sources.accelerators.devices import Device

VERSION = 1
MAX_CHECKPOINT = 4 * 1024 * 1024

Log = Callable[[str], None]


class ClaimError(Exception):
    """This claim cannot be prepared (or unprepared): the message goes to the kubelet."""


def _sum(claims: object) -> str:
    return hashlib.sha256(json.dumps(claims, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def encode(entries: Mapping[str, Sequence[Entry]]) -> bytes:
    claims = {
        uid: {
            "namespace": items[0].namespace,
            "name": items[0].claim,
            "devices": [{"request": e.request, "device": e.device, "nodes": [list(n) for n in e.nodes]} for e in items],
        }
        for uid, items in sorted(entries.items())
    }
    return (json.dumps({"version": VERSION, "checksum": _sum(claims), "claims": claims}, sort_keys=True, indent=1) + "\n").encode()


def decode(data: bytes) -> Dict[str, List[Entry]]:
    """The claims of a checkpoint; ValueError with a one-line reason if it is not a sound one."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as error:
        raise ValueError(f"not JSON ({' '.join(str(error).split())})") from None
    if not isinstance(document, dict) or document.get("version") != VERSION:
        raise ValueError(f"not a version {VERSION} checkpoint")
    claims = document.get("claims")
    if not isinstance(claims, dict) or document.get("checksum") != _sum(claims):
        raise ValueError("checksum does not match its content")
    return {uid: _claim_entries(uid, claim) for uid, claim in claims.items()}


def _claim_entries(uid: str, claim: Any) -> List[Entry]:
    """One checkpointed claim's entries; ValueError unless it is exactly what ``encode`` writes."""
    if not (isinstance(claim, dict) and uid and isinstance(claim.get("namespace"), str) and claim["namespace"]
            and isinstance(claim.get("name"), str) and claim["name"] and isinstance(claim.get("devices"), list)
            and claim["devices"]):
        raise ValueError(f"malformed claim {uid!r}")
    entries = []
    for device in claim["devices"]:
        if not (isinstance(device, dict) and isinstance(device.get("request"), str) and isinstance(device.get("device"), str)
                and device["device"] and isinstance(device.get("nodes"), list)):
            raise ValueError(f"malformed device in claim {uid!r}")
        nodes = tuple(cdi.node_from(node) for node in device["nodes"])
        entries.append(Entry(uid, claim["namespace"], claim["name"], device["request"], device["device"], nodes))
    if len({entry.device for entry in entries}) != len(entries):
        raise ValueError(f"claim {uid!r} lists a device twice")
    return entries


class Prepared:
    """The prepared claims of this node, their CDI specs and the checkpoint, kept in step."""

    def __init__(self, checkpoint: Path, cdi_dir: Path, dev: Path, host_dev: Path, log: Log) -> None:
        self.checkpoint, self.cdi_dir, self.dev, self.host_dev, self.log = checkpoint, cdi_dir, dev, host_dev, log
        self.claims: Dict[str, List[Entry]] = {}

    # -- start ------------------------------------------------------------------------
    def load(self) -> None:
        """Read the checkpoint, and adopt specs it lacks; rewrite it if that changed anything."""
        claims = self._read_checkpoint()
        recovered, problems = cdi.read_all(self.cdi_dir)
        for problem in problems:
            self.log(problem)
        adopted = 0
        for entry in recovered:
            held = claims.setdefault(entry.claim_uid, [])
            if all(e.device != entry.device for e in held):
                held.append(entry)
                adopted += 1
        self.claims = claims
        if adopted:
            self.log(f"adopted {adopted} prepared device(s) from CDI specs in {self.cdi_dir}")
            self._save_or_log()

    def _read_checkpoint(self) -> Dict[str, List[Entry]]:
        try:
            return decode(read_bounded(self.checkpoint, MAX_CHECKPOINT))
        except FileNotFoundError:
            return {}
        except OSError as error:
            self._set_aside(f"cannot read it: {error.strerror or error}")
        except ValueError as error:
            self._set_aside(str(error))
        return {}

    def _set_aside(self, reason: str) -> None:
        """Rename the checkpoint out of the way, to a name no earlier one has (a directory
        cannot be renamed over another), so the next save can write a good one."""
        aside = self.checkpoint.with_name(f"{self.checkpoint.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}-{os.urandom(3).hex()}")
        try:
            os.rename(self.checkpoint, aside)
            where = f"moved to {aside.name}"
        except OSError as error:
            where = f"not moved: {error.strerror}"
        self.log(f"checkpoint {self.checkpoint} unusable ({reason}; {where}): rebuilding it from the CDI specs")

    def _save(self) -> None:
        replace(self.checkpoint, encode(self.claims), mode=0o600)

    def _save_or_log(self) -> None:
        try:
            self._save()
        except OSError as error:
            self.log(f"cannot write checkpoint {self.checkpoint}: {error.strerror or error}")

    # -- queries ----------------------------------------------------------------------
    def holder(self, device: str) -> Optional[str]:
        """The uid of the claim the device is prepared for, if any."""
        return next((uid for uid, entries in self.claims.items() if any(e.device == device for e in entries)), None)

    def held(self) -> Dict[str, str]:
        """Device name -> claim uid."""
        return {e.device: uid for uid, entries in self.claims.items() for e in entries}

    # -- changes ----------------------------------------------------------------------
    def prepare(
        self, uid: str, namespace: str, name: str, results: Sequence[Tuple[str, str]], devices: Mapping[str, Device]
    ) -> List[Entry]:
        """Prepare ``results`` ((request, device name) pairs) for claim ``uid``; idempotent.

        Already prepared: the same entries, with any CDI spec that went missing
        (a reboot empties /var/run/cdi) written again. Otherwise every device must
        be here, allocatable and not held by another claim; all specs are written
        and the checkpoint saved, or nothing is (ClaimError).
        """
        if uid in self.claims:
            entries = self.claims[uid]
            for entry in entries:
                if not cdi.current(self.cdi_dir, entry):
                    self._write_spec(entry)
            return entries
        names = [device_name for _, device_name in results]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ClaimError(f"device {twice[0]} is allocated to more than one request of the claim; refused")
        entries = []
        for request, device_name in results:
            holder = self.holder(device_name)
            if holder is not None:
                raise ClaimError(f"device {device_name} is prepared for another claim ({self._describe(holder)}); refused")
            device = devices.get(device_name)
            if device is None:
                raise ClaimError(f"device {device_name} is not on this node now (unplugged?)")
            if not device.allocatable:
                raise ClaimError(f"device {device_name} is not ready")
            try:
                nodes = cdi.look_up_nodes(device.device_nodes, self.dev, self.host_dev)
            except OSError as error:
                raise ClaimError(f"device {device_name}: its device node is gone: {error.strerror or error}") from None
            entries.append(Entry(uid, namespace, name, request, device_name, nodes))
        written = []
        try:
            for entry in entries:
                self._write_spec(entry)
                written.append(entry)
            self.claims[uid] = entries
            try:
                self._save()
            except OSError as error:
                del self.claims[uid]
                raise ClaimError(f"cannot write checkpoint {self.checkpoint}: {error.strerror or error}") from None
        except ClaimError:
            for entry in written:
                cdi.remove(self.cdi_dir, entry.claim_uid, entry.device)
            raise
        return entries

    def unprepare(self, uid: str) -> None:
        """Remove the claim's specs and forget it; an unknown claim is already done."""
        entries = self.claims.get(uid)
        if entries is None:
            return
        for entry in entries:
            try:
                cdi.remove(self.cdi_dir, uid, entry.device)
            except OSError as error:
                raise ClaimError(f"cannot remove CDI spec of {entry.device}: {error.strerror or error}") from None
        del self.claims[uid]
        try:
            self._save()
        except OSError as error:
            self.claims[uid] = entries
            raise ClaimError(f"cannot write checkpoint {self.checkpoint}: {error.strerror or error}") from None

    def refresh(self, devices: Mapping[str, Device]) -> List[str]:
        """After a held device re-enumerated (same port, new ``/dev/bus/usb`` number),
        rewrite its spec with the new node, so a restarted container gets it; the
        names of the devices whose spec changed."""
        changed = []
        for entries in self.claims.values():
            for index, entry in enumerate(entries):
                device = devices.get(entry.device)
                if device is None or not device.allocatable:
                    continue
                try:
                    nodes = cdi.look_up_nodes(device.device_nodes, self.dev, self.host_dev)
                except OSError:
                    continue
                if nodes != entry.nodes:
                    entries[index] = entry._replace(nodes=nodes)
                    changed.append(entry.device)
                    try:
                        self._write_spec(entries[index])
                    except ClaimError as error:
                        self.log(str(error))
        if changed:
            self._save_or_log()
        return changed

    def forget(self, uid: str) -> None:
        """Drop a claim the API server no longer has (its unprepare was never received)."""
        try:
            self.unprepare(uid)
        except ClaimError as error:
            self.log(str(error))

    def _write_spec(self, entry: Entry) -> None:
        try:
            cdi.write(self.cdi_dir, entry)
        except OSError as error:
            raise ClaimError(f"cannot write CDI spec in {self.cdi_dir}: {error.strerror or error}") from None

    def _describe(self, uid: str) -> str:
        entry = self.claims[uid][0]
        return f"{entry.namespace}/{entry.claim}"
