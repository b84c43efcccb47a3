"""What the accelerator source found: each catalog entry present, and every device behind it.

One ``MatchedDevice`` per USB device, PCI function or devicetree node that
matched, with where it is attached, its id, its driver and whether it is
ready: the device model that allocating accelerators builds on. Typed, so that
the JSON view (``details``) and the table read the same fields. Plain classes
with ``__slots__`` for start-up time (see ``devicetree/result.py``).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

from nfd_hooks.sources.accelerators.catalog import Accelerator

USB, PCI, DEVICETREE = "usb", "pci", "devicetree"  # MatchedDevice.bus, Inputs' names


class MatchedDevice:
    """A device that made a catalog entry match.

    ``bus`` is USB, PCI or DEVICETREE; ``address`` its USB bus path, PCI
    address or devicetree node path; ``id`` its ``vvvv:pppp`` (USB, PCI) or
    the compatible string matched (devicetree); ``ready`` whether the entry's
    ready rule finds it usable; ``driver`` and ``device_nodes`` what the kernel
    bound to it (read only for an entry whose ready rule names a driver);
    ``serial`` a USB device's, when read.
    """

    __slots__ = ("bus", "address", "id", "ready", "driver", "device_nodes", "serial")

    def __init__(
        self,
        bus: str,
        address: str,
        id: str,
        ready: bool,
        driver: Optional[str] = None,
        device_nodes: Tuple[str, ...] = (),
        serial: Optional[str] = None,
    ) -> None:
        self.bus = bus
        self.address = address
        self.id = id
        self.ready = ready
        self.driver = driver
        self.device_nodes = device_nodes
        self.serial = serial


class Match:
    """A catalog entry present on the node, and its devices: USB by bus path, then
    PCI by address, then devicetree nodes by path (a node once per string matched)."""

    __slots__ = ("entry", "devices")

    def __init__(self, entry: Accelerator, devices: Tuple[MatchedDevice, ...]) -> None:
        self.entry = entry
        self.devices = devices

    @property
    def physical(self) -> Tuple[MatchedDevice, ...]:
        """One device per physical accelerator: what allocation offers and the labels
        count (``nfd_hooks.sources.accelerators.devices``). Every USB device and PCI
        function is one; a board device the devicetree describes may also sit on the
        SoC's PCIe bus (the Coral Dev Board's Edge TPU does), so devicetree nodes are
        devices of their own only beyond as many as there are PCI functions: the
        count is ``usb + max(pci, devicetree)``."""
        return physical(self.devices)

    @property
    def present(self) -> int:
        """How many physical devices (``<id>.count``)."""
        return len(self.physical)

    @property
    def ready(self) -> int:
        """How many of them are ready (``<id>.ready-count``)."""
        return sum(1 for device in self.physical if device.ready)


def physical(devices: Sequence[MatchedDevice]) -> Tuple[MatchedDevice, ...]:
    """``devices`` (as ``Match`` orders them) one per physical accelerator, each address once
    (a devicetree node matched by two of an entry's strings is one node)."""
    seen = set()
    by_bus: Dict[str, List[MatchedDevice]] = {USB: [], PCI: [], DEVICETREE: []}
    for device in devices:
        if (device.bus, device.address) not in seen:
            seen.add((device.bus, device.address))
            by_bus[device.bus].append(device)
    nodes = sorted(by_bus[DEVICETREE], key=lambda device: device.address)
    return tuple(by_bus[USB] + by_bus[PCI] + nodes[len(by_bus[PCI]):])


class Inputs:
    """Which kinds of devices were there to match (a source turned off reads none)."""

    __slots__ = ("usb", "pci", "devicetree")

    def __init__(self, usb: bool, pci: bool, devicetree: bool) -> None:
        self.usb = usb
        self.pci = pci
        self.devicetree = devicetree

    def read(self) -> Dict[str, bool]:
        """Each kind by name (USB, PCI, DEVICETREE), in that order."""
        return {USB: self.usb, PCI: self.pci, DEVICETREE: self.devicetree}


class AcceleratorsFound:
    """The entries present (``matches``, by id), out of the catalog's ``entries``
    read from ``catalogs``; ``compat_labels`` when their compat labels were written."""

    __slots__ = ("prefix", "entries", "inputs", "compat_labels", "matches", "catalogs")

    def __init__(
        self,
        prefix: str,
        entries: Tuple[str, ...],
        inputs: Inputs,
        compat_labels: bool,
        matches: Tuple[Match, ...],
        catalogs: Tuple[str, ...] = (),
    ) -> None:
        self.prefix = prefix
        self.entries = entries
        self.inputs = inputs
        self.compat_labels = compat_labels
        self.matches = matches
        self.catalogs = catalogs

    def details(self) -> Dict[str, Any]:
        return {
            "prefix": self.prefix,
            "entries": list(self.entries),
            "inputs": self.inputs.read(),
            "compat_labels": self.compat_labels,
            "matches": [_match(match, self.compat_labels) for match in self.matches],
            "catalogs": list(self.catalogs),
        }


def _match(match: Match, compat_labels: bool) -> Dict[str, Any]:
    """Which device or node made this entry match, and which is ready."""
    entry, rule = match.entry, match.entry.ready
    return {
        "id": entry.id,
        "name": entry.name,
        "catalog": entry.origin,
        "count": match.present,
        "ready_count": match.ready,
        "usb": [
            {"bus_path": d.address, "id": d.id, "serial": d.serial, "ready": d.ready} for d in match.devices if d.bus == USB
        ],
        "pci": [{"address": d.address, "id": d.id, **_binding(d), "ready": d.ready} for d in match.devices if d.bus == PCI],
        "devicetree": [
            {"node": d.address, "compatible": d.id, **_binding(d), "ready": d.ready}
            for d in match.devices
            if d.bus == DEVICETREE
        ],
        "ready_rule": {
            "usb": [f"{v}:{p}" for v, p in rule.usb],
            "drivers": list(rule.drivers),
            "device_class": rule.device_class,
        } if rule else None,
        "compat": [f"{name}={value}" for name, value in entry.compat] if compat_labels else [],
    }


def _binding(device: MatchedDevice) -> Dict[str, Any]:
    return {"driver": device.driver, "device_nodes": list(device.device_nodes)}


