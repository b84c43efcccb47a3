"""The device model: one device per physical accelerator, named by where it is attached.

The accelerator source says *which kinds* a node has (``edgetpu.count=1``);
allocation needs *which device*: a name that stays the same while the device
stays in its socket, so an allocation made to it still means it after the
device re-enumerates. A USB device's number changes on every enumeration
(``/dev/bus/usb/002/003`` becomes ``.../004``), and a Coral changes its ids once
its firmware is loaded (``1a6e:089a`` becomes ``18d1:9302``), an NCS2 once
booted (``03e7:2485`` becomes ``03e7:f63b``); its port path (``1-1.3``) does not.
So a device is named by its attachment:

    usb-1-1-3          USB port path 1-1.3 (dots become dashes: a device name is a DNS label)
    pci-0000-01-00-0   PCI address 0000:01:00.0
    dt-gpu-57000000    devicetree node /gpu@57000000

USB port paths have exactly one dash, after the bus number, and PCI addresses a
fixed form, so both renderings are one-to-one. Devicetree paths are cleaned to
the DNS label alphabet; two that clean alike get ``-2``, ``-3`` in path order.

Which matches are devices is ``Match.physical`` (result.py), the rule the labels
count by: every USB device and PCI function, and devicetree nodes beyond as many
as there are PCI functions of the same kind (the Coral Dev Board's root
``compatible`` and the Edge TPU on its SoC's PCIe are one device; a Jetson's GPU
node is a device of its own). ``<id>.count`` is the number of devices here, and
``<id>.ready-count`` the number that are ready.

A device is *allocatable* when it is ready (the catalog's rule) and has device
nodes present under the dev root to hand to a container: the USB device's own
node, or the nodes of the driver's class (``/dev/apex_0``, ``/dev/hailo0``).

The model is built from the accelerator source's typed result
(``AcceleratorsFound``) plus one look per USB device at its driver and node; it is
small and imports nothing heavy.
"""

from __future__ import annotations

import re
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from nfd_hooks.sources.accelerators.binding import SysfsProbe
from nfd_hooks.sources.accelerators.result import DEVICETREE, PCI, USB, AcceleratorsFound, MatchedDevice

MAX_NAME = 63  # a DNS label

_NOT_LABEL = re.compile(r"[^a-z0-9]+")


class Device(NamedTuple):
    """One physical accelerator on this node.

    ``device_nodes`` are paths relative to /dev (``bus/usb/002/003``, ``apex_0``).
    A NamedTuple for start-up time (see ``nfd_hooks.features.Feature``).
    """

    name: str  # DNS label, stable while the device stays attached where it is
    accelerator: str  # catalog id
    bus: str  # USB, PCI or DEVICETREE
    attachment: str  # port path, PCI address or devicetree node path
    ids: str  # current "vvvv:pppp" (USB, PCI); "" for a devicetree node
    serial: Optional[str]
    driver: Optional[str]  # the bound kernel driver, None when unbound
    ready: bool
    device_nodes: Tuple[str, ...]

    @property
    def allocatable(self) -> bool:
        """Usable by a container: ready, with device nodes to hand over."""
        return self.ready and bool(self.device_nodes)


def usb_name(bus_path: str) -> str:
    return "usb-" + bus_path.replace(".", "-")


def pci_name(address: str) -> str:
    return "pci-" + address.replace(":", "-").replace(".", "-").lower()


def devicetree_name(node: str) -> str:
    cleaned = _NOT_LABEL.sub("-", node.lower()).strip("-") or "root"
    return ("dt-" + cleaned)[:MAX_NAME].rstrip("-")


def from_found(found: AcceleratorsFound, probe: SysfsProbe) -> Tuple[List[Device], List[str]]:
    """The devices of the accelerator source's result, sorted by name, and notices.

    ``probe`` reads each USB device's driver and node (the result has their ids
    and readiness; PCI and devicetree bindings are in it already).
    """
    devices: List[Device] = []
    notices: List[str] = []
    seen: Dict[str, str] = {}
    taken_names: Dict[str, str] = {}
    for match in found.matches:
        for matched in match.physical:
            device = _device(match.entry.id, matched, probe, taken_names)
            first = seen.setdefault(device.name, device.accelerator)
            if first != device.accelerator:
                notices.append(
                    f"device {device.name} ({device.bus} {device.attachment}) matches both {first!r} and "
                    f"{device.accelerator!r} in the catalog; it is offered as {first!r}"
                )
                continue
            devices.append(device)
    return sorted(devices), notices


def _device(ident: str, matched: MatchedDevice, probe: SysfsProbe, taken: Dict[str, str]) -> Device:
    if matched.bus == USB:
        binding = probe.usb(matched.address)
        return Device(usb_name(matched.address), ident, USB, matched.address, matched.id, matched.serial,
                      binding.driver, matched.ready, binding.device_nodes)
    if matched.bus == PCI:
        return Device(pci_name(matched.address), ident, PCI, matched.address, matched.id, None,
                      matched.driver, matched.ready, matched.device_nodes)
    return Device(_unique(devicetree_name(matched.address), matched.address, taken), ident, DEVICETREE,
                  matched.address, "", None, matched.driver, matched.ready, matched.device_nodes)


def _unique(name: str, node: str, taken: Dict[str, str]) -> str:
    """``name``, or ``name-N`` when another devicetree node cleaned to it first."""
    candidate, number = name, 1
    while taken.setdefault(candidate, node) != node:
        number += 1
        suffix = f"-{number}"
        candidate = name[: MAX_NAME - len(suffix)].rstrip("-") + suffix
    return candidate


def find(devices: Sequence[Device], name: str) -> Optional[Device]:
    return next((device for device in devices if device.name == name), None)
