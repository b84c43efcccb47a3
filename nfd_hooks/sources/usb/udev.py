"""The pyudev backend: the live host's USB devices as udev enumerates them.

libudev reads the same sysfs attributes as the plain reader, through its own
device database, and only ever under /sys (pyudev ignores ``SYSFS_PATH``), so
this backend serves a live host and nothing else. pyudev is imported here only.
"""

import os
from typing import Any, Dict, List, Optional, Tuple

from nfd_hooks.sources.usb.descriptors import MAX_DESCRIPTORS_SIZE
from nfd_hooks.sources.usb.model import (
    UsbDevice,
    active_configuration,
    has_interface_classes,
    hex_value,
    id_value,
    interface_owner,
    resolve_interface_classes,
    text_value,
)
from nfd_hooks.sources.usb.sysfs import Unreadable, read_attribute


def _attribute(device: Any, name: str) -> Optional[bytes]:  # a pyudev.Device (untyped)
    """A sysfs attribute through libudev; None when the device has none by that name."""
    value = device.attributes.get(name)
    return bytes(value) if value is not None else None


def _binary_attribute(sys_path: str, name: str) -> Optional[bytes]:
    """Read directly: libudev returns attribute values as C strings, cut at the first NUL."""
    try:
        return read_attribute(os.path.join(sys_path, name), MAX_DESCRIPTORS_SIZE)
    except Unreadable:
        return None


def read_devices(with_serial: bool = True) -> Tuple[List[UsbDevice], List[str]]:
    """Every USB device udev knows of (those with idProduct, as NFD), and notices.

    The serial only ``with_serial``, as the other backends."""
    import pyudev

    context = pyudev.Context()
    candidates = []
    interfaces: Dict[str, Dict[str, Optional[str]]] = {}
    for device in context.list_devices(subsystem="usb"):
        name = device.sys_name
        if ":" in name:
            owner = interface_owner(name)
            if owner is not None:
                interfaces.setdefault(owner, {})[name] = hex_value(_attribute(device, "bInterfaceClass"), 2)
        else:
            candidates.append(device)
    notices: List[str] = []
    devices = []
    for device in candidates:
        record = _record(device, interfaces.get(device.sys_name, {}), with_serial, notices)
        if record is not None:
            devices.append(record)
    return sorted(devices), notices


def _record(device: Any, interfaces: Dict[str, Optional[str]], with_serial: bool, notices: List[str]) -> Optional[UsbDevice]:
    name = device.sys_name
    raw_product = _attribute(device, "idProduct")
    if raw_product is None:  # as NFD and the sysfs backend: no idProduct, no device
        return None
    vendor, product = id_value(_attribute(device, "idVendor"), 4), id_value(raw_product, 4)
    device_class = hex_value(_attribute(device, "bDeviceClass"), 2)
    if vendor is None or product is None or device_class is None:
        notices.append(f"skipped USB device {name}: idVendor, idProduct or bDeviceClass is not hex")
        return None
    descriptors = None
    if not has_interface_classes(interfaces):
        descriptors = _binary_attribute(device.sys_path, "descriptors")
    return UsbDevice(
        bus_path=name,
        vendor=vendor,
        product=product,
        device_class=device_class,
        interface_classes=resolve_interface_classes(
            active_configuration(_attribute(device, "bConfigurationValue")), interfaces, name, descriptors
        ),
        serial=text_value(_attribute(device, "serial")) if with_serial else None,
    )
