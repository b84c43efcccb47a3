"""The accelerator source: one capability label per kind of accelerator.

A workload that needs an Edge TPU should not have to know whether it is a USB
stick, a PCIe card or built into the board. The catalog lists every way each
kind shows up; a match on any of them yields

    <prefix>/<id>.present=true
    <prefix>/<id>.count=<n>

and, once some of those devices are usable by the entry's ``ready`` rule (a
USB id the device has after its firmware loaded, a driver bound, a device node
present),

    <prefix>/<id>.ready=true
    <prefix>/<id>.ready-count=<r>

Counting: USB devices by bus path, PCI functions by address, devicetree nodes by
path (the root is one node). A device described by the devicetree may also sit
on the SoC's PCIe bus (the Coral Dev Board's Edge TPU does), so the two are not
added: ``n = usb + max(pci, devicetree)``, and ``r`` the same over ready ones.
With ``compat_labels`` an entry that is present also writes the labels its
``compat`` table declares, those a vendor's device plugin is scheduled by.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from nfd_hooks.errors import InputError
from nfd_hooks.features import Feature
from nfd_hooks.sources import SourceReport
from nfd_hooks.sources.accelerators.binding import UNBOUND, Binding, SysfsProbe
from nfd_hooks.sources.accelerators.catalog import BUILTIN_NAME, Accelerator, Readiness, load_catalog
from nfd_hooks.sources.accelerators.pci import PciDevice, read_pci_devices
from nfd_hooks.sources.usb.model import UsbDevice

DEFAULT_PREFIX = "accelerator.feature.node.kubernetes.io"


class AcceleratorOptions(NamedTuple):
    """``catalogs`` are the user's files, applied in order over the shipped catalog;
    ``dev`` the host's /dev (None: no device node is visible, as in a replay);
    ``reserved`` label prefixes other sources write, which no compat label may use.

    A NamedTuple for start-up time (see ``nfd_hooks.features.Feature``).
    """

    sysfs: Path = Path("/sys")
    prefix: str = DEFAULT_PREFIX
    catalogs: Tuple[Path, ...] = ()
    dev: Optional[Path] = Path("/dev")
    compat_labels: bool = False
    reserved: Tuple[str, ...] = ()


class Probe(NamedTuple):
    """Where bindings come from: ``pci(address, device_class)``, ``devicetree(node, device_class)``."""

    pci: Callable[[str, Optional[str]], Binding]
    devicetree: Callable[[str, Optional[str]], Binding]


NOTHING_BOUND = Probe(lambda *_: UNBOUND, lambda *_: UNBOUND)


@dataclass
class _Match:
    """What one catalog entry matched on this node, and which of it is ready."""

    usb: List[UsbDevice]
    pci: List[Tuple[PciDevice, Binding]]
    devicetree: List[Tuple[str, str, Binding]]  # (node path, compatible string, binding)
    ready_usb: List[UsbDevice]
    ready_pci: List[PciDevice]
    ready_nodes: List[str]

    @property
    def count(self) -> int:
        nodes = {node for node, _, _ in self.devicetree}
        return len({d.bus_path for d in self.usb}) + max(len({d.address for d, _ in self.pci}), len(nodes))

    @property
    def ready_count(self) -> int:
        """As ``count``, over the ready devices: a ready Dev Board TPU is its PCI function."""
        return len({d.bus_path for d in self.ready_usb}) + max(
            len({d.address for d in self.ready_pci}), len(set(self.ready_nodes))
        )


def discover(
    options: AcceleratorOptions,
    usb_devices: Optional[Sequence[UsbDevice]],
    devicetree_nodes: Optional[Mapping[str, Sequence[str]]],
) -> SourceReport:
    """Load the catalog, read PCI, and match; ``None`` inputs were not read (their source is off)."""
    catalog = load_catalog(options.catalogs)
    if options.compat_labels:
        _check_reserved(catalog, options.reserved + (options.prefix,))
    notices: List[str] = []
    pci_devices = read_pci_devices(options.sysfs, notices)
    probe = SysfsProbe(options.sysfs, options.dev, notices)
    try:
        report = match(
            catalog, options.prefix, usb_devices, pci_devices, devicetree_nodes,
            Probe(probe.pci, probe.devicetree), options.compat_labels,
        )
    finally:
        probe.close()
    report.notices[:0] = notices
    report.details["catalogs"] = [BUILTIN_NAME] + [str(path) for path in options.catalogs]
    return report


def _check_reserved(catalog: Mapping[str, Accelerator], prefixes: Sequence[str]) -> None:
    """A compat label in a namespace our other labels use could contradict one of them."""
    for ident in sorted(catalog):
        for name, _ in catalog[ident].compat:
            prefix = name.rpartition("/")[0]
            if prefix in prefixes or name.startswith("feature.node.kubernetes.io/usb-"):
                raise InputError(
                    f"{catalog[ident].origin}: accelerator {ident!r}: compat label {name!r} is in a namespace "
                    "nfd-hooks writes its own labels to"
                )


def match(
    catalog: Mapping[str, Accelerator],
    prefix: str,
    usb_devices: Optional[Sequence[UsbDevice]],
    pci_devices: Optional[Sequence[PciDevice]],
    devicetree_nodes: Optional[Mapping[str, Sequence[str]]],
    probe: Probe = NOTHING_BOUND,
    compat_labels: bool = False,
) -> SourceReport:
    """Labels and provenance for the devices and nodes given; pure but for ``probe``."""
    report = SourceReport("accelerators")
    matches: List[Dict[str, Any]] = []
    for ident in sorted(catalog):
        entry = catalog[ident]
        found = _match_entry(entry, usb_devices or (), pci_devices or (), devicetree_nodes or {}, probe)
        count = found.count
        if not count:
            continue
        report.features += [
            Feature(f"{prefix}/{ident}.present", "true"),
            Feature(f"{prefix}/{ident}.count", str(count)),
        ]
        ready = found.ready_count
        if ready:
            report.features += [
                Feature(f"{prefix}/{ident}.ready", "true"),
                Feature(f"{prefix}/{ident}.ready-count", str(ready)),
            ]
        if compat_labels:
            report.features += [Feature(name, value) for name, value in entry.compat]
        matches.append(_describe(entry, found, count, compat_labels))
    report.details = {
        "prefix": prefix,
        "entries": sorted(catalog),
        "inputs": {
            "usb": usb_devices is not None,
            "pci": pci_devices is not None,
            "devicetree": devicetree_nodes is not None,
        },
        "compat_labels": compat_labels,
        "matches": matches,
    }
    return report


def _match_entry(
    entry: Accelerator,
    usb_devices: Sequence[UsbDevice],
    pci_devices: Sequence[PciDevice],
    devicetree_nodes: Mapping[str, Sequence[str]],
    probe: Probe,
) -> _Match:
    usb_ids = set(entry.usb)
    pci_ids = set(entry.pci)
    rule = entry.ready or Readiness()

    def bind(read: Callable[[str, Optional[str]], Binding], key: str) -> Binding:
        """Read only for matched devices of an entry with a driver rule."""
        return read(key, rule.device_class) if rule.drivers else UNBOUND

    usb = sorted(d for d in usb_devices if (d.vendor.lower(), d.product.lower()) in usb_ids)
    pci = [(d, bind(probe.pci, d.address)) for d in sorted(d for d in pci_devices if (d.vendor, d.device) in pci_ids)]
    nodes = sorted((node, text) for text in entry.devicetree for node in devicetree_nodes.get(text, ()))
    devicetree = [(node, text, bind(probe.devicetree, node)) for node, text in nodes]
    return _Match(
        usb=usb,
        pci=pci,
        devicetree=devicetree,
        ready_usb=[d for d in usb if (d.vendor.lower(), d.product.lower()) in rule.usb],
        ready_pci=[d for d, binding in pci if _bound(rule, binding)],
        ready_nodes=[node for node, _, binding in devicetree if _bound(rule, binding)],
    )


def _bound(rule: Readiness, binding: Binding) -> bool:
    """Bound to one of the rule's drivers, with a device node of its class if it names one."""
    return binding.driver in rule.drivers and (rule.device_class is None or bool(binding.device_nodes))


def _describe(entry: Accelerator, found: _Match, count: int, compat_labels: bool) -> Dict[str, Any]:
    """``show --format json``: which device or node made this entry match, and which is ready."""
    rule = entry.ready or Readiness()
    return {
        "id": entry.id,
        "name": entry.name,
        "catalog": entry.origin,
        "count": count,
        "ready_count": found.ready_count,
        "usb": [
            {"bus_path": d.bus_path, "id": f"{d.vendor}:{d.product}", "serial": d.serial, "ready": d in found.ready_usb}
            for d in found.usb
        ],
        "pci": [
            {"address": d.address, "id": f"{d.vendor}:{d.device}", **_binding(binding), "ready": d in found.ready_pci}
            for d, binding in found.pci
        ],
        "devicetree": [
            {"node": node, "compatible": text, **_binding(binding), "ready": node in found.ready_nodes}
            for node, text, binding in found.devicetree
        ],
        "ready_rule": {
            "usb": [f"{v}:{p}" for v, p in rule.usb],
            "drivers": list(rule.drivers),
            "device_class": rule.device_class,
        } if entry.ready else None,
        "compat": [f"{name}={value}" for name, value in entry.compat] if compat_labels else [],
    }


def _binding(binding: Binding) -> Dict[str, Any]:
    return {"driver": binding.driver, "device_nodes": list(binding.device_nodes)}
