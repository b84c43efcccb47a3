"""Fake sysfs trees laid out as the kernel lays them out, for the accelerator tests:
PCI functions and platform devices here (with their driver links and class
devices), USB devices through the shared tests/fakehost.py, and a /dev as
devtmpfs fills it from sysfs."""

import os
from pathlib import Path
from typing import NamedTuple, Optional

from tests.fakehost import UsbSpec
from tests.fakehost import add_usb_device as add_usb_spec

# An x86 host's xHCI controller, where its USB buses hang.
XHCI = "devices/pci0000:00/0000:00:14.0"


class ClassDevice(NamedTuple):
    """A character device a driver creates under its device: ``<device>/<cls>/<name>``."""

    cls: str  # the class, e.g. "apex"
    name: str  # e.g. "apex_0"; also its DEVNAME
    major: int
    minor: int = 0


def _link(link: Path, target: Path) -> None:
    """A relative symlink, as sysfs writes them."""
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(target, link.parent))


def bind(sysfs: Path, device: Path, bus: str, driver: str, class_device: Optional[ClassDevice] = None) -> None:
    """``device`` bound to ``driver``: its ``driver`` link, the driver's link back, and
    the class device the driver made (``dev``, ``uevent`` with DEVNAME, ``subsystem``)."""
    drivers = sysfs / "bus" / bus / "drivers" / driver
    drivers.mkdir(parents=True, exist_ok=True)
    _link(device / "driver", drivers)
    _link(drivers / device.name, device)
    if class_device is not None:
        node = device / class_device.cls / class_device.name
        node.mkdir(parents=True)
        (node / "dev").write_text(f"{class_device.major}:{class_device.minor}\n")
        (node / "uevent").write_text(
            f"MAJOR={class_device.major}\nMINOR={class_device.minor}\nDEVNAME={class_device.name}\n"
        )
        _link(node / "subsystem", sysfs / "class" / class_device.cls)
        _link(sysfs / "class" / class_device.cls / class_device.name, node)


def add_pci_device(
    sysfs: Path, address: str, vendor: str, device: str, bridge: str = "0000:00:1c.0",
    driver: Optional[str] = None, class_device: Optional[ClassDevice] = None, pci_class: str = "0x120000",
    host: Optional[str] = None,
) -> Path:
    """A PCI function as sysfs shows it: the real node under devices/, a symlink in bus/pci/devices.

    ``vendor`` and ``device`` are written as the kernel writes them, ``0x1e60\\n``;
    ``driver`` binds it (see ``bind``); ``host`` is the host bridge's directory
    (default ``devices/pciDDDD:00``, an x86 host).
    """
    root = host or f"devices/pci{address.split(':')[0]}:00"  # the host bridge of the function's PCI domain
    node = sysfs / root / bridge / address
    node.mkdir(parents=True, exist_ok=True)
    (node / "vendor").write_text(f"0x{vendor}\n")
    (node / "device").write_text(f"0x{device}\n")
    (node / "class").write_text(f"{pci_class}\n")
    (node / "uevent").write_text(
        (f"DRIVER={driver}\n" if driver else "")
        + f"PCI_CLASS={pci_class[2:].upper()}\nPCI_ID={vendor.upper()}:{device.upper()}\nPCI_SLOT_NAME={address}\n"
    )
    _link(sysfs / "bus" / "pci" / "devices" / address, node)
    if driver:
        bind(sysfs, node, "pci", driver, class_device)
    return node


def add_platform_device(
    sysfs: Path, name: str, of_node: str, compatible: str, driver: Optional[str] = None, parent: str = "devices/platform"
) -> Path:
    """A platform device the kernel made from devicetree node ``of_node`` (``/gpu@57000000``):
    its ``of_node`` link into firmware/devicetree/base (dangling when the tree was read
    from a blob, as a link text it is the same), ``uevent``, the bus/platform link."""
    node = sysfs / parent / name
    node.mkdir(parents=True)
    of_name = of_node.rstrip("/").rpartition("/")[2].partition("@")[0]
    (node / "uevent").write_text(
        (f"DRIVER={driver}\n" if driver else "")
        + f"OF_NAME={of_name}\nOF_FULLNAME={of_node}\nOF_COMPATIBLE_0={compatible}\nOF_COMPATIBLE_N=1\n"
        + f"MODALIAS=of:N{of_name}T(null)C{compatible}\n"
    )
    _link(node / "of_node", sysfs / "firmware" / "devicetree" / "base" / of_node.lstrip("/"))
    _link(sysfs / "bus" / "platform" / "devices" / name, node)
    if driver:
        bind(sysfs, node, "platform", driver)
    return node


def populate_dev(sysfs: Path, dev: Path) -> list:
    """What devtmpfs does: a character device node under ``dev`` for each class device
    of ``sysfs`` (a directory with ``dev`` and a DEVNAME in ``uevent``); their names."""
    made = []
    for directory, _, files in sorted(os.walk(sysfs)):
        if "dev" in files and "uevent" in files:
            major, minor = (int(n) for n in Path(directory, "dev").read_text().strip().split(":"))
            fields = dict(line.split("=", 1) for line in Path(directory, "uevent").read_text().splitlines() if "=" in line)
            name = fields.get("DEVNAME")
            if name:
                (dev / name).parent.mkdir(parents=True, exist_ok=True)
                os.mknod(dev / name, 0o600 | 0o020000, os.makedev(major, minor))
                made.append(name)
    return made


def add_usb_device(
    sysfs: Path, bus_path: str, vendor: str, product: str, device_class: str, interface_classes=(), product_name: str = ""
) -> None:
    """A USB device behind an xHCI controller, laid out by the shared tests/fakehost.py."""
    bus = bus_path[3:] if bus_path.startswith("usb") else bus_path.split("-")[0]
    parent = XHCI if bus_path.startswith("usb") else f"{XHCI}/usb{bus}"
    spec = UsbSpec(bus_path, parent, vendor, product, device_class, tuple(interface_classes), product_name=product_name)
    add_usb_spec(sysfs, spec)
