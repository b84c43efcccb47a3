"""The USB device record every backend (sysfs, pyudev, pyusb) produces.

Backends differ in how they read a device; the labels depend only on this
record, which is how the backends are held to one result. The helpers below
are the one place raw attribute text becomes record fields, shared by the
backends that read sysfs attributes (plain files and pyudev).
"""

from __future__ import annotations

import re
from typing import Dict, Iterable, NamedTuple, Optional, Tuple

from nfd_hooks.nfdfile import go_trimmed
from nfd_hooks.sources.usb.descriptors import interface_classes_by_configuration


class UsbDevice(NamedTuple):
    """One USB device: ids and classes as lowercase hex, as NFD writes them.

    Sorted by bus path first. A NamedTuple for start-up time (see ``Feature``).
    """

    bus_path: str  # the sysfs device name, e.g. "1-1.2" or "usb1"
    vendor: str  # idVendor, 4 hex digits; "" when absent or empty (NFD lists the device all the same)
    product: str  # idProduct, 4 hex digits; "" when empty
    device_class: str  # bDeviceClass, 2 hex digits
    interface_classes: Tuple[str, ...] = ()  # distinct, sorted, active configuration
    serial: Optional[str] = None


UNCONFIGURED = 0  # bConfigurationValue when no configuration is active (empty in sysfs)

_INTERFACE_NAME = re.compile(r"(?P<device>[^:]+):(?P<config>[0-9]+)\.(?P<number>[0-9]+)\Z")


def hex_value(raw: Optional[bytes], digits: int) -> Optional[str]:
    """Attribute text as exactly ``digits`` lowercase hex digits, or None if it is not."""
    if raw is None:
        return None
    text = raw.strip().decode("ascii", "replace").lower()
    if len(text) != digits or any(c not in "0123456789abcdef" for c in text):
        return None
    return text


def id_value(raw: Optional[bytes], digits: int) -> Optional[str]:
    """An id NFD puts in a label as it reads it: absent or empty is "" (NFD's empty
    field); otherwise ``digits`` hex digits, lowercased, or None if it is not."""
    if raw is None or not raw.strip():
        return ""
    return hex_value(raw, digits)


def text_value(raw: Optional[bytes]) -> Optional[str]:
    """Attribute text, trimmed as NFD trims it (sysfs ends values with a newline;
    recordings may not); None when nothing is left."""
    if raw is None:
        return None
    return go_trimmed(raw.decode("utf-8", "replace")) or None


def active_configuration(raw: Optional[bytes]) -> Optional[int]:
    """bConfigurationValue: None when unknown (absent), UNCONFIGURED when empty."""
    if raw is None:
        return None
    text = raw.strip()
    if not text:
        return UNCONFIGURED
    return int(text) if text.isdigit() else None


def interface_owner(interface_name: str) -> Optional[str]:
    """The device an interface ``<device>:<cfg>.<n>`` belongs to; a root hub ``usbB``
    names its interfaces ``B-0:<cfg>.<n>``. None if the name is no interface's."""
    match = _INTERFACE_NAME.match(interface_name)
    if not match:
        return None
    device = match.group("device")
    bus, _, port = device.partition("-")
    return f"usb{bus}" if port == "0" else device


def interface_config(interface_name: str, device_name: str) -> Optional[int]:
    """The configuration of interface ``interface_name`` if it belongs to ``device_name``, else None."""
    match = _INTERFACE_NAME.match(interface_name)
    if not match or interface_owner(interface_name) != device_name:
        return None
    return int(match.group("config"))


def resolve_interface_classes(
    active: Optional[int],
    interfaces: Dict[str, Optional[str]],
    device_name: str,
    descriptors: Optional[bytes],
) -> Tuple[str, ...]:
    """Interface classes of the active configuration.

    ``interfaces`` maps interface directory names to their bInterfaceClass
    (None: unreadable, skipped). When none is readable, the classes come from
    the binary descriptors; an unknown active configuration then counts only if
    the device has a single one.
    """
    if has_interface_classes(interfaces):
        return _distinct(
            cls
            for name, cls in interfaces.items()
            if cls is not None and (active is None or interface_config(name, device_name) == active)
        )
    if not descriptors:
        return ()
    by_config = interface_classes_by_configuration(descriptors)
    if active is None and len(by_config) == 1:
        return next(iter(by_config.values()))
    return by_config.get(active, ()) if active else ()


def has_interface_classes(interfaces: Dict[str, Optional[str]]) -> bool:
    """Whether any interface directory gave a class (else the descriptors are needed)."""
    return any(cls is not None for cls in interfaces.values())


def _distinct(classes: Iterable[str]) -> Tuple[str, ...]:
    return tuple(sorted(set(classes)))
