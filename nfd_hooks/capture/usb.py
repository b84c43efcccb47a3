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
from nfd_hooks.safe_read import DIRECTORY, Tree, entries
from nfd_hooks.sources.usb.sysfs import ATTRIBUTE_LIMITS, DEVICE_ATTRIBUTES, INTERFACE_ATTRIBUTES

SERIAL = "serial"  # identifies a device: captured only on request

ID_ATTRIBUTES = ("idVendor", "idProduct", "bDeviceClass")  # what the reader skips a device for


def capture_usb(sysfs: Path, with_serials: bool, notices: List[str]) -> Tuple[Dict[str, bytes], Dict[str, str], int]:
    """Files (path under the bundle's ``sys`` -> bytes) and symlinks (path -> target)
    for the USB devices under ``<sysfs>/bus/usb/devices``, and how many devices.

    Only the attributes the sysfs USB reader opens are copied (its
    DEVICE_ATTRIBUTES and INTERFACE_ATTRIBUTES), each as much of it as the
    reader reads (``ATTRIBUTE_LIMITS``); every entry keeps its kernel-shaped
    relative symlink into ``devices/``. Everything is read beneath ``sysfs``
    for real, as the reader reads it.
    """
    files: Dict[str, bytes] = {}
    links: Dict[str, str] = {}
    top = sysfs.joinpath(*USB_DEVICES)
    listed_top = "/".join(USB_DEVICES)
    try:
        tree = Tree.open(str(sysfs))
    except OSError:
        notices.append(f"no USB bus at {top}: the bundle has no USB devices")
        return files, links, 0
    with tree:
        try:
            bus = tree.open_directory(listed_top)
            try:
                names = sorted(name for name, _ in entries(bus))
            finally:
                os.close(bus)
        except OSError:
            notices.append(f"no USB bus at {top}: the bundle has no USB devices")
            return files, links, 0
        real_root = os.path.realpath(sysfs)
        device_attributes = [a for a in DEVICE_ATTRIBUTES if with_serials or a != SERIAL]
        devices = 0
        for name in names:
            entry = top / name
            listed = f"{listed_top}/{name}"
            try:  # confined for real: the entry resolves to a directory beneath sysfs
                os.close(tree.subtree(listed).fd)
            except OSError:
                notices.append(f"skipped {entry}: not a directory inside {sysfs}")
                continue
            inside = os.path.relpath(os.path.realpath(entry), real_root)  # where it leads, for the link's text
            if inside == ".." or inside.startswith(".." + os.sep):
                notices.append(f"skipped {entry}: not a directory inside {sysfs}")
                continue
            if entry.is_symlink():
                links[listed] = os.path.relpath(inside, listed_top)
                target = inside
            else:
                target = listed
            if ":" in name:  # an interface: its device's entry copies its attributes
                continue
            unreadable = _unreadable_ids(tree, inside)
            if unreadable:  # the reader skips such a device; absent from the bundle, it would be read with an empty id
                notices.append(f"skipped USB device {name}: {unreadable} cannot be read")
                continue
            copied = _copy_attributes(tree, inside, target, device_attributes, files)
            if "idProduct" not in copied:
                continue
            devices += 1
            for sub in _subdirectories(tree, inside):
                _copy_attributes(tree, f"{inside}/{sub}", f"{target}/{sub}", INTERFACE_ATTRIBUTES, files)
    return files, _captured_links(links, files), devices


def _subdirectories(tree: Tree, directory: str) -> List[str]:
    """The real subdirectories of ``directory`` (interfaces among them), sorted."""
    try:
        fd = tree.open_directory(directory)
        try:
            return sorted(name for name, kind in entries(fd) if kind == DIRECTORY)
        finally:
            os.close(fd)
    except OSError:
        return []


def _captured_links(links: Dict[str, str], files: Dict[str, bytes]) -> Dict[str, str]:
    """The links whose target directory holds a captured file: a device torn
    out while captured (or one without idProduct) leaves no dangling link."""
    captured = {parent for path in files for parent in _parents(path)}
    top = "/".join(USB_DEVICES)
    return {path: target for path, target in links.items() if os.path.normpath(os.path.join(top, target)) in captured}


def _parents(path: str) -> List[str]:
    parts = path.split("/")
    return ["/".join(parts[:n]) for n in range(1, len(parts))]


def _read(tree: Tree, path: str) -> Optional[bytes]:
    """As much of the attribute ``path`` as the reader reads; None if it cannot be read."""
    try:
        return tree.read(path, ATTRIBUTE_LIMITS[os.path.basename(path)])
    except OSError:
        return None


def _unreadable_ids(tree: Tree, directory: str) -> Optional[str]:
    """The first id attribute that exists but is no readable regular file (a
    symlink, a FIFO): the live reader skips that device, so capture must too."""
    for name in ID_ATTRIBUTES:
        try:
            tree.read(f"{directory}/{name}", ATTRIBUTE_LIMITS[name])
        except FileNotFoundError:
            continue
        except OSError:
            return name
    return None


def _copy_attributes(tree: Tree, directory: str, target: str, names: Sequence[str], files: Dict[str, bytes]) -> List[str]:
    """Read the named attributes of ``directory`` that exist into ``files`` under
    ``target``; return their names."""
    copied = []
    for name in names:
        value = _read(tree, f"{directory}/{name}")
        if value is not None:
            files[f"{target}/{name}"] = value
            copied.append(name)
    return copied
