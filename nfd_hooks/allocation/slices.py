"""What the node offers: which devices are in its ResourceSlice, and which are tainted.

A device that is allocatable is offered. One that went away (unplugged, or no
longer ready) is not dropped at once:

1. for ``grace`` seconds nothing changes: a USB device that re-enumerates (a
   reset, a firmware reboot) is gone from sysfs for a moment and comes back on
   the same port under the same name, and the pod holding it keeps it;
2. then it is tainted ``NoExecute`` (key ``UNPLUGGED``), when the API server
   keeps device taints (the DRADeviceTaints feature gate, alpha in 1.35):
   the scheduler no longer allocates it, and kube-controller-manager's
   device-taint-eviction controller deletes the pods whose claims have it
   (pkg/controller/devicetainteviction: it reads the taints of the device in
   the pool's current slice, so the device must stay in the slice, tainted,
   until they are gone). It stays tainted while a claim on this node holds it
   (until the kubelet unprepares it) and at least ``taint_window`` seconds;
3. then it leaves the slice.

Without the gate the API server drops the taints field on write, which the
driver sees in its answer (``taints_kept``): then step 2 is skipped. New pods
no longer get the device; pods holding it keep running, and their claims stay
allocated to a device that is no longer listed (docs/allocation.md).

Coming back at any point clears all of it.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional, Set

from nfd_hooks.sources.accelerators.devices import Device

DEFAULT_DRIVER = "accelerator.nfd-hooks.io"
UNPLUGGED = "unplugged"  # taint key: <driver>/unplugged
MAX_ATTRIBUTE = 64  # a string attribute's longest value
_NOT_NAME = re.compile(r"[^a-z0-9.-]+")


class Lifecycle:
    """Which devices to offer, from what each scan saw; times are ``time.monotonic()``."""

    def __init__(self, grace: float, taint_window: float) -> None:
        self.grace, self.taint_window = grace, taint_window
        self.known: Dict[str, Device] = {}  # every device offered, by name, as last seen
        self.gone_since: Dict[str, float] = {}
        self.tainted_since: Dict[str, float] = {}

    def seen(self, now: float, devices: Mapping[str, Device]) -> None:
        """A scan: ``devices`` are the allocatable devices present now."""
        for name, device in devices.items():
            self.known[name] = device
            self.gone_since.pop(name, None)
            self.tainted_since.pop(name, None)
        for name in self.known:
            if name not in devices:
                self.gone_since.setdefault(name, now)

    def offer(self, now: float, held: Set[str], taints_kept: Optional[bool]) -> Dict[str, bool]:
        """Device name -> tainted, for the slice; drops devices whose time is up."""
        offered: Dict[str, bool] = {}
        for name in sorted(self.known):
            since = self.gone_since.get(name)
            if since is None or now - since < self.grace:
                offered[name] = False
                continue
            if taints_kept is False:
                self._drop(name)
                continue
            tainted = self.tainted_since.setdefault(name, now)
            if name in held or now - tainted < self.taint_window:
                offered[name] = True
            else:
                self._drop(name)
        return offered

    def next_change(self, now: float, held: Set[str]) -> Optional[float]:
        """Seconds until ``offer`` would answer differently without a new scan."""
        times = [since + self.grace for name, since in self.gone_since.items() if name not in self.tainted_since]
        times += [since + self.taint_window for name, since in self.tainted_since.items() if name not in held]
        return max(0.0, min(times) - now) if times else None

    def _drop(self, name: str) -> None:
        self.known.pop(name, None)
        self.gone_since.pop(name, None)
        self.tainted_since.pop(name, None)


def slice_name(node: str, driver: str) -> str:
    """One slice per node and driver: ``<node>-<driver>``, a DNS subdomain."""
    return _NOT_NAME.sub("-", f"{node}-{driver}".lower())[:253].strip("-.")


def attributes(device: Device) -> Dict[str, Dict[str, Any]]:
    """The device's attributes, in the driver's domain (a DeviceClass's CEL reads
    ``device.attributes["<driver>"].id``). Strings over 64 characters are left out."""
    values: Dict[str, Any] = {
        "id": device.accelerator,
        "bus": device.bus,
        "attachment": device.attachment,
        "vendorProduct": device.ids,
        "serial": device.serial,
        "kernelDriver": device.driver,
    }
    found: Dict[str, Dict[str, Any]] = {
        key: {"string": value} for key, value in values.items() if value and len(value) <= MAX_ATTRIBUTE
    }
    found["ready"] = {"bool": device.ready}
    return found


def body(
    driver: str, node: str, node_uid: Optional[str], generation: int, devices: Mapping[str, Device], offered: Mapping[str, bool]
) -> Dict[str, Any]:
    """The ResourceSlice (resource.k8s.io/v1) of the node: one pool named after it, one slice,
    owned by the Node so it goes when the Node object does."""
    entries: List[Dict[str, Any]] = []
    for name, tainted in sorted(offered.items()):
        entry: Dict[str, Any] = {"name": name, "attributes": attributes(devices[name])}
        if tainted:
            entry["taints"] = [{"key": f"{driver}/{UNPLUGGED}", "value": "true", "effect": "NoExecute"}]
        entries.append(entry)
    metadata: Dict[str, Any] = {"name": slice_name(node, driver)}
    if node_uid:
        metadata["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": node, "uid": node_uid, "controller": True}]
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": metadata,
        "spec": {
            "driver": driver,
            "nodeName": node,
            "pool": {"name": node, "generation": generation, "resourceSliceCount": 1},
            "devices": entries,
        },
    }


def taints_kept(tainted: Set[str], answer: Dict[str, Any]) -> Optional[bool]:
    """From the API server's answer to a write with ``tainted`` devices: did it keep
    their taints (True), or drop the field (False: the gate is off)? None: nothing was tainted."""
    if not tainted:
        return None
    devices = answer.get("spec", {}).get("devices", []) or []
    return all(bool(d.get("taints")) for d in devices if d.get("name") in tainted)
