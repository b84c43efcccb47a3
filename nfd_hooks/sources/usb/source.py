"""The USB source: NFD's ``usb-<class>_<vendor>_<device>.present`` labels, and better.

Rules (docs/usb.md): a device's own class labels it when it is not ``00`` and
is allowlisted; every allowlisted class of its active configuration's
interfaces labels it too, whatever the device class. NFD stops at the device
class when it is not ``00`` (a UVC webcam, ``ef``, never gets its ``0e``), and
reads interfaces only from their sysfs directories, which recordings and
captures often lack. The keys are NFD's own, so each label is made as NFD makes
it (empty fields, the serial as read) and left out where NFD's worker drops it.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, List, NamedTuple, Optional, Sequence, Tuple

from nfd_hooks.errors import InputError
from nfd_hooks.features import Feature
from nfd_hooks.nfdfile import NFD_PREFIX, label_problem
from nfd_hooks.sources.base import SourceReport
from nfd_hooks.sources.usb import sysfs
from nfd_hooks.sources.usb.model import UsbDevice
from nfd_hooks.sources.usb.result import UsbEntry, UsbFound, UsbNames

if TYPE_CHECKING:
    from nfd_hooks.options import Options

NAME = "usb"
LABEL_PREFIX = NFD_PREFIX
DEFAULT_ALLOWLIST = ("0e", "ef", "fe", "ff")  # NFD's deviceClassWhitelist
LABEL_FIELDS = ("class", "vendor", "device", "serial")  # NFD's order, whatever order they are given in
DEFAULT_LABEL_FIELDS = ("class", "vendor", "device")
BACKENDS = ("auto", "sysfs", "udev", "libusb")
LIVE_SYSFS = Path("/sys")
DEV_BUS_USB = Path("/dev/bus/usb")
UDEV_RUNTIME = Path("/run/udev")

_CLASS = re.compile(r"[0-9A-Fa-f]{2}\Z")


class UsbOptions(NamedTuple):
    """What decides the USB labels: where and how to read, which classes, which fields.

    A NamedTuple for start-up time (see ``nfd_hooks.features.Feature``).
    """

    sysfs: Path = LIVE_SYSFS
    allowlist: Tuple[str, ...] = DEFAULT_ALLOWLIST
    label_fields: Tuple[str, ...] = DEFAULT_LABEL_FIELDS
    backend: str = "auto"
    details: bool = False  # show --format json: usb.ids names, and serials even if no label uses them


def parse_class(text: str) -> str:
    """``--usb-class``: two hex digits, any case, as lowercase."""
    if not _CLASS.match(text):
        raise InputError(f"--usb-class {text!r} must be two hex digits, e.g. ff or 0E")
    return text.lower()


def parse_label_fields(values: Iterable[str]) -> Tuple[str, ...]:
    """``--usb-label-fields``: names from LABEL_FIELDS, comma-separated or repeated, in NFD's order."""
    given = {part.strip() for value in values for part in value.split(",") if part.strip()}
    unknown = sorted(given - set(LABEL_FIELDS))
    if unknown or not given:
        raise InputError(f"--usb-label-fields takes {', '.join(LABEL_FIELDS)}; got {', '.join(unknown) or 'nothing'}")
    return tuple(field for field in LABEL_FIELDS if field in given)


def check_options(options: UsbOptions) -> UsbOptions:
    """Normalised options; InputError for any value that cannot work."""
    if options.backend not in BACKENDS:
        raise InputError(f"--usb-backend {options.backend!r} is not one of {', '.join(BACKENDS)}")
    if options.backend in ("udev", "libusb") and options.sysfs != LIVE_SYSFS:
        raise InputError(
            f"--usb-backend {options.backend} reads this machine's devices only; use sysfs for --sysfs {options.sysfs}"
        )
    return UsbOptions(
        sysfs=options.sysfs,
        allowlist=tuple(dict.fromkeys(parse_class(c) for c in options.allowlist)),
        label_fields=parse_label_fields(options.label_fields),
        backend=options.backend,
        details=options.details,
    )


def label_name(device: UsbDevice, device_class: str, fields: Sequence[str]) -> str:
    """NFD's label: ``feature.node.kubernetes.io/usb-<fields joined by _>.present``,
    the serial as read (trimmed, nothing replaced), so that the key is NFD's own.
    It can be invalid; see ``device_labels``."""
    values = {"class": device_class, "vendor": device.vendor, "device": device.product, "serial": device.serial or ""}
    return f"{LABEL_PREFIX}/usb-" + "_".join(values[field] for field in fields) + ".present"


def labelled_classes(device: UsbDevice, allowlist: Sequence[str]) -> List[str]:
    """The allowlisted classes that label ``device``: its own (unless 00) and its interfaces'."""
    classes = set(c for c in device.interface_classes if c in allowlist)
    if device.device_class != "00" and device.device_class in allowlist:
        classes.add(device.device_class)
    return sorted(classes)


def no_label_reason(device: UsbDevice, allowlist: Sequence[str], labels: Sequence[str]) -> Optional[str]:
    """Why ``device`` gives no label, for a person reading ``show``; None when it gives one."""
    if labels:
        return None
    if labelled_classes(device, allowlist):
        return "its serial makes no valid label name (NFD drops it too)"
    classes = sorted(set(device.interface_classes) | ({device.device_class} - {"00"}))
    if not classes:
        return "no interface read (unconfigured, or unplugged while read)"
    if classes == ["09"]:
        return "hub"
    return f"class{'es' if len(classes) > 1 else ''} {' '.join(classes)} not allowlisted"


def device_labels(device: UsbDevice, options: UsbOptions) -> Tuple[List[str], List[str]]:
    """The device's valid labels, and the names left out as not valid label names.

    Only a serial can make one invalid (a space, a ``/``, too long): NFD's worker
    drops such a label, so it is left out here too rather than changed into a
    key NFD never makes.
    """
    names = {label_name(device, c, options.label_fields) for c in labelled_classes(device, options.allowlist)}
    invalid = {name for name in names if label_problem(name, "true") is not None}
    return sorted(names - invalid), sorted(invalid)


def in_container() -> bool:
    """Docker, podman and Kubernetes pods leave one of these behind."""
    return (
        Path("/.dockerenv").exists()
        or Path("/run/.containerenv").exists()
        or "KUBERNETES_SERVICE_HOST" in os.environ
        or "container" in os.environ
    )


def choose_backend(options: UsbOptions) -> str:
    """``auto``: sysfs for a named root or in a container; udev on a host with udev; libusb
    when the host has /dev/bus/usb but no USB in sysfs; sysfs otherwise."""
    if options.backend != "auto":
        return options.backend
    if options.sysfs != LIVE_SYSFS or in_container():
        return "sysfs"
    if (options.sysfs / "bus" / "usb").is_dir():
        if UDEV_RUNTIME.is_dir() and importlib.util.find_spec("pyudev") is not None:
            return "udev"
        return "sysfs"
    if DEV_BUS_USB.is_dir():
        return "libusb"
    return "sysfs"


def read_with_backend(options: UsbOptions) -> Tuple[List[UsbDevice], List[str], str]:
    """Devices, notices and the backend that read them; udev or libusb failing falls back to sysfs.

    ``options`` as ``check_options`` returns them.
    """
    backend = choose_backend(options)
    # A serial identifies a device and costs a read per device: only when shown or labelled.
    with_serial = "serial" in options.label_fields or options.details
    if backend != "sysfs":
        try:
            if backend == "udev":
                from nfd_hooks.sources.usb import udev

                devices, notices = udev.read_devices(with_serial)
            else:
                from nfd_hooks.sources.usb import libusb

                # A control transfer to each device: for a label only, not for the JSON alone.
                devices, notices = libusb.read_devices("serial" in options.label_fields)
            return devices, notices, backend
        except (ImportError, OSError, ValueError, LookupError) as error:
            fallback = f"USB backend {backend} failed ({' '.join(str(error).split()) or type(error).__name__}); read sysfs instead"
            devices, notices = _read_sysfs(options, with_serial)
            return devices, [fallback] + notices, "sysfs"
    devices, notices = _read_sysfs(options, with_serial)
    return devices, notices, "sysfs"


def _read_sysfs(options: UsbOptions, with_serial: bool) -> Tuple[List[UsbDevice], List[str]]:
    if options.sysfs != LIVE_SYSFS and not options.sysfs.is_dir():
        raise InputError(f"{options.sysfs}: no such sysfs directory")
    return sysfs.read_devices(str(options.sysfs), with_serial)


def discover(options: UsbOptions, devices: Optional[Sequence[UsbDevice]] = None, backend: str = "given") -> SourceReport[UsbFound]:
    """USB labels for ``devices`` (read by ``backend``), or for the devices the chosen backend reads."""
    options = check_options(options)
    if devices is not None:
        return label_devices(options, devices, backend)
    devices, notices, backend = read_with_backend(options)
    report = label_devices(options, devices, backend)
    report.notices[:0] = notices
    return report


def label_devices(options: UsbOptions, devices: Sequence[UsbDevice], backend: str) -> SourceReport[UsbFound]:
    """The labels of ``devices`` (read by ``backend``) under ``options`` as ``check_options`` returns them."""
    report: SourceReport[UsbFound] = SourceReport(NAME)
    entries = []
    for device in sorted(devices):
        labels, invalid = device_labels(device, options)
        report.features += [Feature(label, "true") for label in labels]
        report.notices += [
            f"USB device {device.bus_path}: {name.partition('/')[2]!r} is not a valid label name: left out, as NFD leaves it out"
            for name in invalid
        ]
        entries.append(UsbEntry(device, tuple(labels), no_label_reason(device, options.allowlist, labels)))
    if "serial" in options.label_fields:
        report.expendable = {feature.name for feature in report.features}
    # Devices handed in (backend "given") are not this sysfs's: their strings are not read.
    usb_ids = _named(entries, options.sysfs if backend != "given" else None) if options.details else None
    report.found = UsbFound(
        backend, str(options.sysfs), options.allowlist, options.label_fields, tuple(entries), options.details, usb_ids
    )
    return report


def _named(entries: List[UsbEntry], sysfs_root: Optional[Path]) -> Optional[str]:
    """Names into ``entries``: usb.ids', the devices' own strings (from sysfs,
    whichever backend read the ids) and the classes'. The usb.ids path, or None without one."""
    from nfd_hooks.sources.usb.classes import BASE_CLASSES
    from nfd_hooks.sources.usb.ids import load_names

    names = load_names(entry.device.vendor for entry in entries)
    strings = sysfs.read_strings(str(sysfs_root), [entry.device.bus_path for entry in entries]) if sysfs_root else {}
    for entry in entries:
        device = entry.device
        classes = dict.fromkeys((device.device_class, *device.interface_classes))
        manufacturer, product_string = strings.get(device.bus_path, (None, None))
        entry.names = UsbNames(
            names.vendors.get(device.vendor) if names else None,
            names.products.get((device.vendor, device.product)) if names else None,
            tuple((c, BASE_CLASSES[c]) for c in classes if c in BASE_CLASSES),
            manufacturer,
            product_string,
        )
    return str(names.path) if names else None


class UsbSource:
    """The USB devices as a ``Source``. Above the devicetree in priority (its names
    have NFD's fixed form), below the accelerators."""

    name = NAME
    priority = 10
    static = False

    def configure(self, options: Options) -> Optional[UsbOptions]:
        checked = check_options(
            UsbOptions(
                sysfs=options.sysfs,
                allowlist=options.usb_classes,
                label_fields=options.usb_label_fields,
                backend=options.usb_backend,
                details=options.usb_details,
            )
        )
        return checked if options.use_usb else None

    def discover(self, options: UsbOptions, earlier: Sequence[SourceReport[Any]]) -> SourceReport[UsbFound]:
        devices, notices, backend = read_with_backend(options)
        report = label_devices(options, devices, backend)
        report.notices[:0] = notices
        return report

    def uevents(self, options: UsbOptions) -> Tuple[str, ...]:
        """Devices come, go and re-enumerate (a Coral once its firmware is loaded)."""
        return ("usb",)


SOURCE = UsbSource()
