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

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from nfd_hooks.errors import InputError
from nfd_hooks.features import Feature
from nfd_hooks.nfdfile import prefix_problem
from nfd_hooks.sources.accelerators.binding import UNBOUND, Binding, SysfsProbe
from nfd_hooks.sources.accelerators.catalog import BUILTIN_NAME, Accelerator, Readiness, load_catalog
from nfd_hooks.sources.accelerators.pci import PciDevice, read_pci_devices
from nfd_hooks.sources.accelerators.result import DEVICETREE, PCI, USB, AcceleratorsFound, Inputs, Match, MatchedDevice
from nfd_hooks.sources.base import SourceReport, found_in
from nfd_hooks.sources.devicetree.result import DevicetreeFound
from nfd_hooks.sources.usb.model import UsbDevice
from nfd_hooks.sources.usb.result import UsbFound
from nfd_hooks.sources.usb.source import LABEL_PREFIX as USB_PREFIX

if TYPE_CHECKING:
    from nfd_hooks.options import Options

NAME = "accelerators"
DEFAULT_PREFIX = "accelerator.feature.node.kubernetes.io"

# Compatible string -> paths of the devicetree nodes that list it (DevicetreeFound.compatible_nodes).
CompatibleNodes = Mapping[str, Sequence[str]]


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


def discover(
    options: AcceleratorOptions,
    usb_devices: Optional[Sequence[UsbDevice]],
    devicetree_nodes: Optional[CompatibleNodes],
) -> SourceReport[AcceleratorsFound]:
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
            Probe(probe.pci, probe.devicetree), options.compat_labels, (BUILTIN_NAME, *(str(path) for path in options.catalogs)),
        )
    finally:
        probe.close()
    report.notices[:0] = notices
    return report


def _check_reserved(catalog: Mapping[str, Accelerator], prefixes: Sequence[str]) -> None:
    """A compat label in a namespace our other labels use could contradict one of them."""
    for ident in sorted(catalog):
        for name, _ in catalog[ident].compat:
            prefix = name.rpartition("/")[0]
            if prefix in prefixes or name.startswith(f"{USB_PREFIX}/usb-"):
                raise InputError(
                    f"{catalog[ident].origin}: accelerator {ident!r}: compat label {name!r} is in a namespace "
                    "nfd-hooks writes its own labels to"
                )


def match(
    catalog: Mapping[str, Accelerator],
    prefix: str,
    usb_devices: Optional[Sequence[UsbDevice]],
    pci_devices: Optional[Sequence[PciDevice]],
    devicetree_nodes: Optional[CompatibleNodes],
    probe: Probe = NOTHING_BOUND,
    compat_labels: bool = False,
    catalogs: Tuple[str, ...] = (),
) -> SourceReport[AcceleratorsFound]:
    """Labels and what matched, for the devices and nodes given; pure but for
    ``probe``. ``catalogs`` names the files ``catalog`` was read from."""
    report: SourceReport[AcceleratorsFound] = SourceReport(NAME)
    matches: List[Match] = []
    for ident in sorted(catalog):
        entry = catalog[ident]
        found = Match(entry, _matched(entry, usb_devices or (), pci_devices or (), devicetree_nodes or {}, probe))
        count = found.present
        if not count:
            continue
        report.features += [
            Feature(f"{prefix}/{ident}.present", "true"),
            Feature(f"{prefix}/{ident}.count", str(count)),
        ]
        ready = found.ready
        if ready:
            report.features += [
                Feature(f"{prefix}/{ident}.ready", "true"),
                Feature(f"{prefix}/{ident}.ready-count", str(ready)),
            ]
        if compat_labels:
            report.features += [Feature(name, value) for name, value in entry.compat]
        matches.append(found)
    inputs = Inputs(usb=usb_devices is not None, pci=pci_devices is not None, devicetree=devicetree_nodes is not None)
    report.found = AcceleratorsFound(prefix, tuple(sorted(catalog)), inputs, compat_labels, tuple(matches), catalogs)
    return report


def _matched(
    entry: Accelerator,
    usb_devices: Sequence[UsbDevice],
    pci_devices: Sequence[PciDevice],
    devicetree_nodes: CompatibleNodes,
    probe: Probe,
) -> Tuple[MatchedDevice, ...]:
    """The devices that match ``entry``, each with its binding and readiness."""
    usb_ids = set(entry.usb)
    pci_ids = set(entry.pci)
    rule = entry.ready or Readiness()

    def bind(read: Callable[[str, Optional[str]], Binding], key: str) -> Binding:
        """Read only for matched devices of an entry with a driver rule."""
        return read(key, rule.device_class) if rule.drivers else UNBOUND

    def bound(binding: Binding) -> bool:
        """Bound to one of the rule's drivers, with a device node of its class if it names one."""
        return binding.driver in rule.drivers and (rule.device_class is None or bool(binding.device_nodes))

    found = [
        MatchedDevice(USB, d.bus_path, f"{d.vendor}:{d.product}", (d.vendor.lower(), d.product.lower()) in rule.usb, serial=d.serial)
        for d in sorted(d for d in usb_devices if (d.vendor.lower(), d.product.lower()) in usb_ids)
    ]
    for d in sorted(d for d in pci_devices if (d.vendor, d.device) in pci_ids):
        binding = bind(probe.pci, d.address)
        found.append(MatchedDevice(PCI, d.address, f"{d.vendor}:{d.device}", bound(binding), *binding))
    for node, text in sorted((path, string) for string in entry.devicetree for path in devicetree_nodes.get(string, ())):
        binding = bind(probe.devicetree, node)
        found.append(MatchedDevice(DEVICETREE, node, text, bound(binding), *binding))
    return tuple(found)


class AcceleratorSource:
    """The accelerator catalog as a ``Source``: it matches the devices the
    devicetree and USB sources found (``found_in``) and the PCI functions it reads
    itself. Highest in priority: its label names have a fixed form."""

    name = NAME
    priority = 20
    static = False

    def configure(self, options: Options) -> Optional[AcceleratorOptions]:
        problem = prefix_problem(options.accelerator_prefix)
        if problem:
            raise InputError(f"--accelerator-prefix {options.accelerator_prefix!r} {problem}")
        if not options.use_accelerators:
            return None
        return AcceleratorOptions(
            sysfs=options.sysfs, prefix=options.accelerator_prefix, catalogs=options.catalogs, dev=options.dev,
            compat_labels=options.compat_labels, reserved=(options.prefix,),
        )

    def discover(self, options: AcceleratorOptions, earlier: Sequence[SourceReport[Any]]) -> SourceReport[AcceleratorsFound]:
        usb = found_in(earlier, UsbFound)
        devicetree = found_in(earlier, DevicetreeFound)
        return discover(
            options, usb.devices if usb is not None else None, devicetree.compatible_nodes() if devicetree is not None else None
        )

    def uevents(self, options: AcceleratorOptions) -> Tuple[str, ...]:
        """PCI and platform devices get drivers bound and unbound; the catalog's
        device classes get device nodes."""
        catalog = load_catalog(options.catalogs)
        classes = {e.ready.device_class for e in catalog.values() if e.ready and e.ready.device_class}
        return ("pci", "platform", *sorted(classes))


SOURCE = AcceleratorSource()
