"""The plain sysfs backend: a few file reads per device under any sysfs root.

It works on a live /sys, on the host's sysfs mounted into a container
(``/host-sys``), on a fixture tree and on a captured copy: pyudev cannot, as it
ignores ``SYSFS_PATH``. No pyudev or pyusb import on this path; it is the fast
one.
"""

from __future__ import annotations

import errno
import os
from typing import Dict, List, Optional, Tuple

from nfd_hooks.safe_read import open_path, read_regular_file
from nfd_hooks.sources.usb.descriptors import MAX_DESCRIPTORS_SIZE
from nfd_hooks.sources.usb.model import (
    UsbDevice,
    active_configuration,
    has_interface_classes,
    hex_value,
    id_value,
    interface_config,
    resolve_interface_classes,
    text_value,
)

# The device's own names (its iManufacturer and iProduct string descriptors, as
# the kernel reads them at enumeration): for people (show --format table/json), never labels.
STRING_ATTRIBUTES = ("manufacturer", "product")
# Every attribute file this reader opens: a capture of a node's USB devices
# needs exactly these (device attributes, plus bInterfaceClass of interfaces).
DEVICE_ATTRIBUTES = ("idVendor", "idProduct", "bDeviceClass", "bConfigurationValue", "serial", "descriptors", *STRING_ATTRIBUTES)
INTERFACE_ATTRIBUTES = ("bInterfaceClass",)
ATTRIBUTES = DEVICE_ATTRIBUTES + INTERFACE_ATTRIBUTES

_MAX_TEXT = 4096  # sysfs text attributes are at most a page
_GONE = (errno.ENOENT, errno.ENOTDIR, errno.ENODEV)


class Unreadable(Exception):
    """An attribute exists but cannot be read (permissions, I/O error)."""


def read_attribute(path: str, limit: int = _MAX_TEXT, *, directory: Optional["Directory"] = None) -> Optional[bytes]:
    """The attribute's bytes; None when absent (or the device vanished meanwhile).

    ``path`` is relative to ``directory`` when one is given, and resolved
    beneath it. Real attributes are regular files: a symlink is refused, never
    followed, and a FIFO or device node planted in a captured tree is not
    opened for reading (non-blocking open, then fstat), so it cannot hang the hook.
    """
    try:
        if directory is None:
            return read_regular_file(path, limit, follow_symlinks=False)
        return read_regular_file(path, limit, follow_symlinks=False, dir_fd=directory.fd, beneath="/" in path)
    except OSError as error:
        if error.errno in _GONE:
            return None
        raise Unreadable(f"{_shown(path, directory)}: {error.strerror}") from None


class Directory:
    """A device directory opened once, so that its attributes are opened
    relative to it: the kernel then resolves one name per attribute instead of
    the whole path through bus/usb/devices and every hub above the device."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self.fd = fd

    @classmethod
    def open(cls, root_fd: int, relative: str, shown: str) -> Optional["Directory"]:
        """``relative`` resolved beneath the sysfs root (symlinks included: a
        bundle's or fixture's link cannot lead outside it); None when gone or
        not a directory (as its attributes would be)."""
        try:
            return cls(shown, open_path(relative, os.O_RDONLY | os.O_DIRECTORY, dir_fd=root_fd, beneath=True))
        except OSError as error:
            if error.errno in _GONE:
                return None
            raise Unreadable(f"{shown}: {error.strerror}") from None

    def close(self) -> None:
        os.close(self.fd)


def _shown(path: str, directory: Optional[Directory]) -> str:
    return os.path.join(directory.path, path) if directory else path


_DEVICES = ("bus", "usb", "devices")


def devices_dir(root: str) -> str:
    return os.path.join(root, *_DEVICES)


def read_devices(root: str, with_serial: bool = True) -> Tuple[List[UsbDevice], List[str]]:
    """Every device under ``<root>/bus/usb/devices``, sorted by bus path, and notices.

    The serial is read only ``with_serial`` (a serial label, or the JSON output):
    it is one more file per device. Entries without idProduct (interfaces,
    devices torn down while read) are skipped silently, as NFD skips them; a
    device without idVendor is read with an empty vendor, as NFD reads it; one
    with unreadable or malformed ids is skipped with a notice.
    """
    top = devices_dir(root)
    notices: List[str] = []
    try:
        names = os.listdir(top)
    except OSError as error:
        if error.errno in _GONE:
            return [], [f"no USB bus at {top}: no USB labels on this node"]
        return [], [f"cannot list {top}: {error.strerror}: no USB labels"]
    try:
        root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as error:
        return [], [f"cannot open {root}: {error.strerror}: no USB labels"]
    devices = []
    try:
        for name in names:
            if ":" in name:  # an interface, <device>:<cfg>.<n>
                continue
            try:
                device = _read_device(root_fd, os.path.join(top, name), name, with_serial, notices)
            except Unreadable as error:
                notices.append(f"skipped USB device {name}: {error}")
                continue
            if device is not None:
                devices.append(device)
    finally:
        os.close(root_fd)
    return sorted(devices), notices


def _read_device(root_fd: int, path: str, name: str, with_serial: bool, notices: List[str]) -> Optional[UsbDevice]:
    directory = Directory.open(root_fd, os.path.join(*_DEVICES, name), path)
    if directory is None:
        return None
    try:
        return _read_device_in(directory, name, with_serial, notices)
    finally:
        directory.close()


def _read_device_in(directory: Directory, name: str, with_serial: bool, notices: List[str]) -> Optional[UsbDevice]:
    raw_product = read_attribute("idProduct", directory=directory)
    if raw_product is None:  # NFD's test for a device; interfaces and ports have none
        return None
    raw_vendor = read_attribute("idVendor", directory=directory)
    raw_class = read_attribute("bDeviceClass", directory=directory)
    vendor, product, device_class = id_value(raw_vendor, 4), id_value(raw_product, 4), hex_value(raw_class, 2)
    if vendor is None or product is None or device_class is None:
        ids = (("idVendor", raw_vendor, 4), ("idProduct", raw_product, 4), ("bDeviceClass", raw_class, 2))
        notices.append(f"skipped USB device {name}: {_id_problem(ids)}")
        return None
    active = active_configuration(_optional("bConfigurationValue", directory, name, notices))
    interfaces = _read_interfaces(directory, name, notices)
    descriptors = None
    if not has_interface_classes(interfaces):
        descriptors = _optional("descriptors", directory, name, notices, MAX_DESCRIPTORS_SIZE)
    return UsbDevice(
        bus_path=name,
        vendor=vendor,
        product=product,
        device_class=device_class,
        interface_classes=resolve_interface_classes(active, interfaces, name, descriptors),
        serial=text_value(_optional("serial", directory, name, notices)) if with_serial else None,
    )


# A string descriptor holds at most 126 UTF-16 code units (bLength is one byte):
# 378 bytes once the kernel has made them UTF-8, and its newline.
MAX_STRING = 512


def read_strings(root: str, names: List[str]) -> Dict[str, Tuple[Optional[str], Optional[str]]]:
    """Each named device's own manufacturer and product strings (None: absent,
    unreadable or empty), read as the labels' attributes are: beneath ``root``,
    never through a symlink, never from anything but a regular file, bounded."""
    strings: Dict[str, Tuple[Optional[str], Optional[str]]] = {}
    try:
        root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return strings
    try:
        for name in names:
            try:
                directory = Directory.open(root_fd, os.path.join(*_DEVICES, name), os.path.join(devices_dir(root), name))
            except Unreadable:
                continue
            if directory is None:
                continue
            try:
                strings[name] = (_string("manufacturer", directory), _string("product", directory))
            finally:
                directory.close()
    finally:
        os.close(root_fd)
    return strings


def _string(attribute: str, directory: Directory) -> Optional[str]:
    try:
        raw = read_attribute(attribute, MAX_STRING + 1, directory=directory)
    except Unreadable:
        return None
    return text_value(raw[:MAX_STRING]) if raw is not None else None


def _optional(attribute: str, directory: Directory, name: str, notices: List[str], limit: int = _MAX_TEXT) -> Optional[bytes]:
    """An attribute the device's labels do not depend on: unreadable, it is
    left empty with a notice, and the device keeps its labels (so the JSON
    view, which reads the serial, lists the same features as the file)."""
    try:
        return read_attribute(attribute, limit, directory=directory)
    except Unreadable as error:
        notices.append(f"USB device {name}: {attribute} left empty: {error}")
        return None


def _id_problem(ids: Tuple[Tuple[str, Optional[bytes], int], ...]) -> str:
    """What is wrong with the first bad id attribute (the caller knows one is): missing, or not hex."""
    problems = [
        f"no {attribute}" if raw is None else f"{attribute} {text_value(raw) or ''!r} is not {digits} hex digits"
        for attribute, raw, digits in ids
        if (hex_value if attribute == "bDeviceClass" else id_value)(raw, digits) is None
    ]
    return problems[0]


def _read_interfaces(directory: Directory, name: str, notices: List[str]) -> Dict[str, Optional[str]]:
    """bInterfaceClass of each ``<name>:<cfg>.<n>`` directory; None for an unreadable one."""
    try:
        with os.scandir(directory.fd) as listing:  # the opened directory, not its path again
            entries = [entry.name for entry in listing if not entry.is_symlink()]
    except OSError:
        return {}
    classes: Dict[str, Optional[str]] = {}
    for entry in entries:
        if ":" not in entry or interface_config(entry, name) is None:  # most entries are attributes
            continue
        try:
            raw = read_attribute(os.path.join(entry, "bInterfaceClass"), directory=directory)
        except Unreadable as error:
            notices.append(f"skipped USB interface {entry}: {error}")
            raw = None
        classes[entry] = hex_value(raw, 2)
    return classes
