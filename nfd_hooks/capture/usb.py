"""The node's USB devices for a bundle: the attribute files the sysfs reader opens, nothing else.

Every entry of ``bus/usb/devices`` keeps its kernel-shaped relative symlink
into ``devices/``; a device the reader would skip is left out, so that replay
reads what the node read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from nfd_hooks.bundle import USB_DEVICES
from nfd_hooks.capture.devicetree import read_regular
from nfd_hooks.sources.usb.sysfs import DEVICE_ATTRIBUTES, INTERFACE_ATTRIBUTES

SERIAL = "serial"  # identifies a device: captured only on request
MAX_ATTRIBUTE_SIZE = 64 * 1024  # sysfs text is a page; USB descriptors a few KiB

ID_ATTRIBUTES = ("idVendor", "idProduct", "bDeviceClass")  # what the reader skips a device for


def capture_usb(sysfs: Path, with_serials: bool, notices: List[str]) -> Tuple[Dict[str, bytes], Dict[str, str], int]:
    """Files (path under the bundle's ``sys`` -> bytes) and symlinks (path -> target)
    for the USB devices under ``<sysfs>/bus/usb/devices``, and how many devices.

    Only the attributes the sysfs USB reader opens are copied (its
    DEVICE_ATTRIBUTES and INTERFACE_ATTRIBUTES); every entry keeps its
    kernel-shaped relative symlink into ``devices/``.
    """
    files: Dict[str, bytes] = {}
    links: Dict[str, str] = {}
    top = sysfs.joinpath(*USB_DEVICES)
    try:
        names = sorted(os.listdir(top))
    except OSError:
        notices.append(f"no USB bus at {top}: the bundle has no USB devices")
        return files, links, 0
    real_root = os.path.realpath(sysfs)
    device_attributes = [a for a in DEVICE_ATTRIBUTES if with_serials or a != SERIAL]
    devices = 0
    for name in names:
        entry = top / name
        listed = "/".join(USB_DEVICES + (name,))
        real = os.path.realpath(entry)
        inside = os.path.relpath(real, real_root)
        if inside.startswith(".." + os.sep) or inside == ".." or not os.path.isdir(real):
            notices.append(f"skipped {entry}: not a directory inside {sysfs}")
            continue
        if entry.is_symlink():
            links[listed] = os.path.relpath(inside, "/".join(USB_DEVICES))
            target = inside
        else:
            target = listed
        if ":" in name:  # an interface: its device's entry copies its attributes
            continue
        unreadable = _unreadable_ids(Path(real))
        if unreadable:  # the reader skips such a device; absent from the bundle, it would be read with an empty id
            notices.append(f"skipped USB device {name}: {unreadable} cannot be read")
            continue
        copied = _copy_attributes(Path(real), target, device_attributes, files)
        if "idProduct" not in copied:
            continue
        devices += 1
        for sub in sorted(os.scandir(real), key=lambda e: e.name):
            if sub.is_dir(follow_symlinks=False) and os.path.isfile(os.path.join(sub.path, "bInterfaceClass")):
                _copy_attributes(Path(sub.path), f"{target}/{sub.name}", INTERFACE_ATTRIBUTES, files)
    return files, _captured_links(links, files), devices


def _captured_links(links: Dict[str, str], files: Dict[str, bytes]) -> Dict[str, str]:
    """The links whose target directory holds a captured file: a device torn
    out while captured (or one without idProduct) leaves no dangling link."""
    captured = {parent for path in files for parent in _parents(path)}
    top = "/".join(USB_DEVICES)
    return {path: target for path, target in links.items() if os.path.normpath(os.path.join(top, target)) in captured}


def _parents(path: str) -> List[str]:
    parts = path.split("/")
    return ["/".join(parts[:n]) for n in range(1, len(parts))]


def _unreadable_ids(directory: Path) -> Optional[str]:
    """The first id attribute that exists but is no readable regular file (a
    symlink, a FIFO): the live reader skips that device, so capture must too."""
    for name in ID_ATTRIBUTES:
        path = directory / name
        if os.path.lexists(path) and read_regular(path, MAX_ATTRIBUTE_SIZE) is None:
            return name
    return None


def _copy_attributes(directory: Path, target: str, names: Sequence[str], files: Dict[str, bytes]) -> List[str]:
    """Read the named attributes that exist into ``files``; return their names."""
    copied = []
    for name in names:
        value = read_regular(directory / name, MAX_ATTRIBUTE_SIZE)
        if value is not None:
            files[f"{target}/{name}"] = value
            copied.append(name)
    return copied
