"""Benchmark inputs, written at bench time into a scratch directory, never committed.

- Live-style devicetrees expanded from the real DTBs in fixtures/dtb (by the
  test suite's expander, tests/fdt_expand.py, independent of nfd_hooks).
- Synthetic trees K times the size of a real one: the real root, with K
  ``bus@N`` nodes each holding a hard-linked copy of all its subnodes (with
  phandles of its own, so that dtc accepts the tree).
- Kernel-shaped USB sysfs trees of N devices: devices nested under their hub
  in ``devices/pci0000:00/<controller>/usbB/B-P.P...``, interfaces as
  ``B-P:1.I`` subdirectories, relative symlinks for both in
  ``bus/usb/devices``, attribute files ending in a newline as the kernel writes
  them. Ids are real devices (all in usb.ids) an edge node might carry.
"""

import itertools
import os
import shutil
import struct
import subprocess
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Deque, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.fdt_expand import expand  # noqa: E402  (the independent expander)

# Each xHCI controller (PCI 0000:NN:00.0, like the Pi 4's VL805) has a USB 2 and a USB 3 bus.
LEAVES_PER_BUS = 100  # with their hubs, under the 127 addresses of a bus
HUB_PORTS = 7
ROOT_PORTS = 4
MAX_TIER = 5  # the USB spec allows five hubs between the root hub and a device


@dataclass(frozen=True)
class Model:
    """A real USB device: ids, classes, interface classes (USB-IF class codes)."""

    vendor: int
    product: int
    device_class: int
    interfaces: Tuple[int, ...]
    manufacturer: str
    product_name: str
    bcd_usb: int = 0x0200


HUB = Model(0x05E3, 0x0610, 0x09, (0x09,), "GenesysLogic", "USB2.0 Hub")
ROOT_HUBS = (Model(0x1D6B, 0x0003, 0x09, (0x09,), "Linux 6.1.0 xhci-hcd", "xHCI Host Controller", 0x0300),
             Model(0x1D6B, 0x0002, 0x09, (0x09,), "Linux 6.1.0 xhci-hcd", "xHCI Host Controller"))  # even, odd bus
DEVICES = (
    Model(0x03E7, 0x2485, 0x00, (0xFF,), "Intel", "Movidius MyriadX"),  # Neural Compute Stick 2
    Model(0x1A6E, 0x089A, 0x00, (0xFE,), "Global Unichip Corp.", "Coral USB Accelerator (DFU)"),
    Model(0x18D1, 0x9302, 0x00, (0xFF,), "Google Inc.", "Coral USB Accelerator", 0x0300),
    Model(0x046D, 0xC52B, 0x00, (0x03, 0x03, 0x03), "Logitech", "USB Receiver"),
    Model(0x0781, 0x5581, 0x00, (0x08,), "SanDisk", "Ultra", 0x0300),
    Model(0x0403, 0x6001, 0x00, (0xFF,), "FTDI", "FT232R USB UART"),
    Model(0x046D, 0x0825, 0xEF, (0x0E, 0x0E, 0x01, 0x01), "Logitech", "Webcam C270"),
    Model(0x0BDA, 0x8153, 0x00, (0xFF,), "Realtek", "USB 10/100/1000 LAN", 0x0300),
)


def devicetree(dtb: Path, target: Path) -> Path:
    """A /proc/device-tree-style directory of ``dtb``."""
    return expand(dtb.read_bytes(), target)


def scaled_tree(base: Path, factor: int, target: Path) -> Path:
    """``base`` with its subnodes copied ``factor`` times under ``bus@N`` nodes."""
    target.mkdir(parents=True)
    for entry in base.iterdir():
        if entry.is_file():
            os.link(entry, target / entry.name)
    children = [str(entry) for entry in base.iterdir() if entry.is_dir()]
    for copy in range(factor):
        bus = target / f"bus@{copy:x}"
        bus.mkdir()
        (bus / "name").write_bytes(b"bus\0")
        (bus / "compatible").write_bytes(b"simple-bus\0")
        subprocess.run(["cp", "-al", *children, str(bus)], check=True)
        _renumber_phandles(bus, copy << 20)
    return target


def _renumber_phandles(tree: Path, offset: int) -> None:
    """Give a copy its own phandles (dtc refuses duplicates); references inside
    other properties keep pointing at the original, which dtc does not check."""
    for directory, _, names in os.walk(tree):
        for name in ("phandle", "linux,phandle"):
            if name in names:
                path = Path(directory) / name
                (value,) = struct.unpack(">I", path.read_bytes())
                path.unlink()  # a hard link to the original: replace, do not write through
                path.write_bytes(struct.pack(">I", value + offset))


def count_tree(tree: Path) -> Tuple[int, int]:
    """(nodes, property files) of a live-style tree."""
    nodes = files = 0
    for _, _, names in os.walk(tree):
        nodes += 1
        files += len(names)
    return nodes, files


def usb_sysfs(devices: int, target: Path) -> Tuple[Path, int]:
    """A sysfs root with ``devices`` leaf devices behind as few hub tiers as they
    need (hubs fill the shallowest free ports first), on as many xHCI
    controllers as keep each bus under the kernel's 127 addresses.

    Returns the root and the number of USB devices the kernel would list
    (leaves, hubs and root hubs; interfaces not counted).
    """
    target.mkdir(parents=True)
    (target / "bus" / "usb" / "devices").mkdir(parents=True)
    buses = 2 * max(1, -(-devices // (2 * LEAVES_PER_BUS)))
    total = 0
    for bus in range(1, buses + 1):
        leaves = devices // buses + (1 if bus <= devices % buses else 0)
        path = target / "devices" / "pci0000:00" / f"0000:{(bus + 1) // 2:02x}:00.0" / f"usb{bus}"
        numbers = itertools.count(1)
        _device(target, path, f"usb{bus}", ROOT_HUBS[bus % 2], bus, f"{bus}-0", ROOT_PORTS, next(numbers))
        free: Deque[Tuple[str, Path, int]] = deque((f"{bus}-{port}", path, 1) for port in range(1, ROOT_PORTS + 1))
        while len(free) < leaves:
            name, parent, tier = free.popleft()
            if tier > MAX_TIER:
                raise ValueError(f"{devices} devices do not fit in {MAX_TIER} hub tiers")
            _device(target, parent / name, name, HUB, bus, name, HUB_PORTS, next(numbers))
            free.extend((f"{name}.{port}", parent / name, tier + 1) for port in range(1, HUB_PORTS + 1))
        for index in range(leaves):
            name, parent, _ = free.popleft()
            _device(target, parent / name, name, DEVICES[(index + bus) % len(DEVICES)], bus, name, 0, next(numbers))
        total += next(numbers) - 1
    return target, total


def _device(sysfs: Path, path: Path, name: str, model: Model, bus: int, interface_base: str, ports: int,
            number: int) -> None:
    """One device directory (``number`` its devnum), its interfaces, and their bus/usb/devices links."""
    path.mkdir(parents=True)
    attributes = {
        "idVendor": f"{model.vendor:04x}", "idProduct": f"{model.product:04x}",
        "bDeviceClass": f"{model.device_class:02x}", "bDeviceSubClass": "02" if model.device_class == 0xEF else "00",
        "bDeviceProtocol": "01" if model.device_class in (0x09, 0xEF) else "00", "bMaxPacketSize0": "64",
        "bNumConfigurations": "1", "bConfigurationValue": "1", "bNumInterfaces": f"{len(model.interfaces):2d}",
        "bmAttributes": "e0", "bMaxPower": "100mA", "bcdDevice": "0100", "busnum": str(bus), "devnum": str(number),
        "devpath": name.split("-", 1)[1] if "-" in name else "0", "maxchild": str(ports),
        "speed": "5000" if model.bcd_usb >= 0x0300 else "480", "version": " 3.00" if model.bcd_usb >= 0x0300 else " 2.00",
        "manufacturer": model.manufacturer, "product": model.product_name, "serial": f"{number:012d}",
        "authorized": "1", "avoid_reset_quirk": "0", "quirks": "0x0", "removable": "removable", "urbnum": "42",
        "ltm_capable": "no", "rx_lanes": "1", "tx_lanes": "1",
        "uevent": f"MAJOR=189\nMINOR={number}\nDEVNAME=bus/usb/{bus:03d}/{number:03d}\nDEVTYPE=usb_device\n"
                  f"DRIVER=usb\nPRODUCT={model.vendor:x}/{model.product:x}/100\nTYPE={model.device_class}/0/0\nBUSNUM={bus:03d}\nDEVNUM={number:03d}",
    }
    for attribute, value in attributes.items():
        (path / attribute).write_text(value + "\n")
    (path / "descriptors").write_bytes(_descriptors(model))
    for extra in ("power", "ep_00"):
        (path / extra).mkdir()
        (path / extra / "uevent").write_text("\n")
    _link(sysfs, path, name)
    for number_, cls in enumerate(model.interfaces):
        interface = path / f"{interface_base}:1.{number_}"
        interface.mkdir()
        for attribute, value in {
            "bInterfaceClass": f"{cls:02x}", "bInterfaceSubClass": "00", "bInterfaceProtocol": "00",
            "bInterfaceNumber": f"{number_:02x}", "bAlternateSetting": " 0", "bNumEndpoints": "01",
            "supports_autosuspend": "1", "authorized": "1",
            "modalias": f"usb:v{model.vendor:04X}p{model.product:04X}d0100dc{model.device_class:02X}dsc00dp00ic{cls:02X}isc00ip00in{number_:02X}",
            "uevent": f"DEVTYPE=usb_interface\nINTERFACE={cls}/0/0",
        }.items():
            (interface / attribute).write_text(value + "\n")
        (interface / "ep_81").mkdir()
        _link(sysfs, interface, interface.name)


def _link(sysfs: Path, path: Path, name: str) -> None:
    link = sysfs / "bus" / "usb" / "devices" / name
    link.symlink_to(os.path.relpath(path, link.parent))


def _descriptors(model: Model) -> bytes:
    """Device descriptor, then the configuration with its interfaces (USB 2.0 9.6)."""
    device = struct.pack("<BBHBBBBHHHBBBB", 18, 1, model.bcd_usb, model.device_class, 0, 0, 64,
                         model.vendor, model.product, 0x0100, 1, 2, 3, 1)
    interfaces = b"".join(struct.pack("<BBBBBBBBB", 9, 4, n, 0, 0, cls, 0, 0, 0)
                          for n, cls in enumerate(model.interfaces))
    config = struct.pack("<BBHBBBBB", 9, 2, 9 + len(interfaces), len(model.interfaces), 1, 0, 0xE0, 50)
    return device + config + interfaces


def combined_sysfs(usb: Path, tree: Path, target: Path) -> Path:
    """A sysfs root holding ``usb``'s devices and ``tree`` as the live devicetree,
    as a node shows it to the hook (``--sysfs`` alone, no ``--devicetree``)."""
    shutil.copytree(usb, target, symlinks=True)
    base = target / "firmware" / "devicetree" / "base"
    base.parent.mkdir(parents=True)
    subprocess.run(["cp", "-al", str(tree), str(base)], check=True)
    return target


def usb_count(sysfs: Path) -> int:
    """Devices (not interfaces) in ``bus/usb/devices``, as the kernel lists them."""
    return sum(1 for name in os.listdir(sysfs / "bus" / "usb" / "devices") if ":" not in name)
