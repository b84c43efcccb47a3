"""The accelerator source: one capability label per kind of accelerator.

A workload that needs an Edge TPU should not have to know whether it is a USB
stick, a PCIe card or built into the board. The catalog lists every way each
kind shows up; a match on any of them yields

    <prefix>/<id>.present=true
    <prefix>/<id>.count=<n>

Counting: USB devices by bus path, PCI functions by address, devicetree nodes by
path (the root is one node). A device described by the devicetree may also sit
on the SoC's PCIe bus (the Coral Dev Board's Edge TPU does), so the two are not
added: ``n = usb + max(pci, devicetree)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from nfd_hooks.features import Feature
from nfd_hooks.sources import SourceReport
from nfd_hooks.sources.accelerators.catalog import BUILTIN_NAME, Accelerator, load_catalog
from nfd_hooks.sources.accelerators.pci import PciDevice, read_pci_devices
from nfd_hooks.sources.usb.model import UsbDevice

DEFAULT_PREFIX = "accelerator.feature.node.kubernetes.io"


class AcceleratorOptions(NamedTuple):
    """``catalogs`` are the user's files, applied in order over the shipped catalog.

    A NamedTuple for start-up time (see ``nfd_hooks.features.Feature``).
    """

    sysfs: Path = Path("/sys")
    prefix: str = DEFAULT_PREFIX
    catalogs: Tuple[Path, ...] = ()


@dataclass
class _Match:
    """What one catalog entry matched on this node."""

    usb: List[UsbDevice]
    pci: List[PciDevice]
    devicetree: List[Tuple[str, str]]  # (node path, compatible string)

    @property
    def count(self) -> int:
        nodes = {node for node, _ in self.devicetree}
        return len({d.bus_path for d in self.usb}) + max(len({d.address for d in self.pci}), len(nodes))


def discover(
    options: AcceleratorOptions,
    usb_devices: Optional[Sequence[UsbDevice]],
    devicetree_nodes: Optional[Mapping[str, Sequence[str]]],
) -> SourceReport:
    """Load the catalog, read PCI, and match; ``None`` inputs were not read (their source is off)."""
    catalog = load_catalog(options.catalogs)
    notices: List[str] = []
    pci_devices = read_pci_devices(options.sysfs, notices)
    report = match(catalog, options.prefix, usb_devices, pci_devices, devicetree_nodes)
    report.notices[:0] = notices
    report.details["catalogs"] = [BUILTIN_NAME] + [str(path) for path in options.catalogs]
    return report


def match(
    catalog: Mapping[str, Accelerator],
    prefix: str,
    usb_devices: Optional[Sequence[UsbDevice]],
    pci_devices: Optional[Sequence[PciDevice]],
    devicetree_nodes: Optional[Mapping[str, Sequence[str]]],
) -> SourceReport:
    """Labels and provenance for the devices and nodes given; pure, for tests."""
    report = SourceReport("accelerators")
    matches: List[Dict[str, Any]] = []
    for ident in sorted(catalog):
        entry = catalog[ident]
        found = _match_entry(entry, usb_devices or (), pci_devices or (), devicetree_nodes or {})
        count = found.count
        if not count:
            continue
        report.features += [
            Feature(f"{prefix}/{ident}.present", "true"),
            Feature(f"{prefix}/{ident}.count", str(count)),
        ]
        matches.append(_describe(entry, found, count))
    report.details = {
        "prefix": prefix,
        "entries": sorted(catalog),
        "inputs": {
            "usb": usb_devices is not None,
            "pci": pci_devices is not None,
            "devicetree": devicetree_nodes is not None,
        },
        "matches": matches,
    }
    return report


def _match_entry(
    entry: Accelerator,
    usb_devices: Sequence[UsbDevice],
    pci_devices: Sequence[PciDevice],
    devicetree_nodes: Mapping[str, Sequence[str]],
) -> _Match:
    usb_ids = set(entry.usb)
    pci_ids = set(entry.pci)
    return _Match(
        usb=sorted(d for d in usb_devices if (d.vendor.lower(), d.product.lower()) in usb_ids),
        pci=sorted(d for d in pci_devices if (d.vendor, d.device) in pci_ids),
        devicetree=sorted(
            (node, text) for text in entry.devicetree for node in devicetree_nodes.get(text, ())
        ),
    )


def _describe(entry: Accelerator, found: _Match, count: int) -> Dict[str, Any]:
    """``show --format json``: which device or node made this entry match."""
    return {
        "id": entry.id,
        "name": entry.name,
        "catalog": entry.origin,
        "count": count,
        "usb": [
            {"bus_path": d.bus_path, "id": f"{d.vendor}:{d.product}", "serial": d.serial} for d in found.usb
        ],
        "pci": [{"address": d.address, "id": f"{d.vendor}:{d.device}"} for d in found.pci],
        "devicetree": [{"node": node, "compatible": text} for node, text in found.devicetree],
    }
