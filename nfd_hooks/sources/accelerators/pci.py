"""A small PCI reader: ``<sysfs>/bus/pci/devices/*/vendor`` and ``device``.

Only the two ids the catalog matches on are read, from files sysfs writes as
``0x1e60\\n``. No library and no ``pci.ids`` lookup: names are not needed to
match, and the reader must work in the NFD worker's minimal image.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import List, NamedTuple, Optional

from nfd_hooks.safe_read import open_path, read_small_attribute

# sysfs id files are 7 bytes; anything longer is not one.
MAX_ID_FILE_SIZE = 64

_ID_RE = re.compile(r"0x([0-9a-fA-F]{4})\Z")


class PciDevice(NamedTuple):
    """One PCI function: its address (the sysfs entry name) and lowercase hex ids.

    A NamedTuple for start-up time (see ``nfd_hooks.features.Feature``).
    """

    address: str  # e.g. "0000:01:00.0"
    vendor: str  # 4 hex digits
    device: str  # 4 hex digits


def read_pci_devices(sysfs: Path, notices: List[str]) -> List[PciDevice]:
    """Every PCI function under ``<sysfs>/bus/pci/devices``, sorted by address.

    A host without PCI has no such directory: that is an empty list, not an
    error. An entry whose ids cannot be read is skipped with a notice.
    """
    root = sysfs / "bus" / "pci" / "devices"
    try:
        root_fd = os.open(sysfs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return []
    except OSError as error:
        notices.append(f"skipped PCI devices: cannot open {sysfs}: {error.strerror}")
        return []
    devices = []
    try:
        try:  # listed beneath the root: no name from outside it reaches a notice
            listing = open_path("bus/pci/devices", os.O_RDONLY | os.O_DIRECTORY, dir_fd=root_fd, beneath=True)
            try:
                names = sorted(os.listdir(listing))
            finally:
                os.close(listing)
        except FileNotFoundError:
            return []
        except OSError as error:
            notices.append(f"skipped PCI devices: cannot list {root}: {error.strerror}")
            return []
        for name in names:
            vendor = _read_id(root_fd, name, "vendor")
            device = _read_id(root_fd, name, "device")
            if vendor is None or device is None:
                notices.append(f"skipped PCI device {name}: no readable vendor and device ids")
                continue
            devices.append(PciDevice(name, vendor, device))
    finally:
        os.close(root_fd)
    return devices


def _read_id(root_fd: int, name: str, attribute: str) -> Optional[str]:
    """The 4 hex digits of a sysfs id file, or None if it is missing or malformed.

    Resolved beneath the sysfs root (the entry is a symlink into devices/; one
    leading out of the tree is not followed), the file itself never a symlink,
    opened non-blocking and checked to be a regular file, so a FIFO or device
    node planted in a fake or hostile tree cannot hang the hook.
    """
    path = os.path.join("bus", "pci", "devices", name, attribute)
    data = read_small_attribute(path, MAX_ID_FILE_SIZE, root_fd)
    if data is None:
        return None
    match = _ID_RE.match(data.decode("ascii", "replace").strip())
    return match.group(1).lower() if match else None
