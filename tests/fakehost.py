"""Build a fake host's sysfs: a devicetree expanded as the kernel shows it, and
USB devices, PCI functions and platform devices laid out as the kernel lays
them out (with their driver links and class devices), and a /dev as devtmpfs
fills it from sysfs.

Shared by the tests, scripts/make-sample-node and scripts/make-accelerator-fixtures.
The devicetree is expanded by tests/fdt_expand.py, written apart from pyfdt and
the project's reader, so a bug in either cannot bless itself.
"""

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from collections import deque
from typing import Dict, NamedTuple, Optional, Tuple

from tests.fdt_expand import expand

# Where a Raspberry Pi 4B's VL805 xHCI controller (PCIe) puts its two buses.
PI4_XHCI = "devices/platform/scb/fd500000.pcie/pci0000:00/0000:00:00.0/0000:01:00.0"


@dataclass
class UsbSpec:
    """One USB device: where it hangs, its ids and its interfaces' classes."""

    name: str  # e.g. "1-1.3"; a root hub is "usbN"
    parent: str  # its parent's directory under sysfs
    vendor: str
    product: str
    device_class: str
    interfaces: Tuple[str, ...]  # bInterfaceClass of interfaces 0, 1, ...
    serial: Optional[str] = None
    product_name: str = ""
    extra: Dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return f"{self.parent}/{self.name}"

    @property
    def interface_prefix(self) -> str:
        """Root hub ``usbN`` names its interfaces ``N-0:1.0``."""
        return f"{self.name[3:]}-0" if self.name.startswith("usb") else self.name


def descriptors(spec: UsbSpec) -> bytes:
    """The ``descriptors`` attribute: device descriptor, then the configuration
    with its interface descriptors (the kernel's raw copy, little endian)."""
    device = struct.pack(
        "<BBHBBBBHHHBBBB", 18, 1, 0x0200, int(spec.device_class, 16), 0, 0, 64,
        int(spec.vendor, 16), int(spec.product, 16), 0x0100, 1, 2, 3 if spec.serial else 0, 1,
    )
    interfaces = b"".join(
        struct.pack("<BBBBBBBBB", 9, 4, number, 0, 0, int(cls, 16), 0, 0, 0)
        for number, cls in enumerate(spec.interfaces)
    )
    config = struct.pack("<BBHBBBBB", 9, 2, 9 + len(interfaces), len(spec.interfaces), 1, 0, 0x80, 250)
    return device + config + interfaces


def add_usb_device(sysfs: Path, spec: UsbSpec) -> None:
    """The device's directory with its attributes (and kernel noise the scanner
    does not read), its interface directories, and the bus/usb/devices links."""
    device = sysfs / spec.path
    device.mkdir(parents=True)
    attributes = {
        "idVendor": spec.vendor,
        "idProduct": spec.product,
        "bDeviceClass": spec.device_class,
        "bConfigurationValue": "1",
        "bNumInterfaces": f"{len(spec.interfaces):2d}",
        "product": spec.product_name,
        "speed": "480",
        "uevent": f"DEVTYPE=usb_device\nPRODUCT={int(spec.vendor, 16):x}/{int(spec.product, 16):x}/100",
        **spec.extra,
    }
    if spec.serial is not None:
        attributes["serial"] = spec.serial
    for name, value in attributes.items():
        (device / name).write_text(value + "\n")
    (device / "descriptors").write_bytes(descriptors(spec))
    (device / "power").mkdir()
    (device / "power" / "control").write_text("on\n")
    links = sysfs / "bus" / "usb" / "devices"
    links.mkdir(parents=True, exist_ok=True)
    (links / spec.name).symlink_to(os.path.relpath(device, links))
    for number, cls in enumerate(spec.interfaces):
        name = f"{spec.interface_prefix}:1.{number}"
        interface = device / name
        interface.mkdir()
        for attribute, value in (
            ("bInterfaceClass", cls),
            ("bInterfaceSubClass", "01"),
            ("bInterfaceNumber", f"{number:02x}"),
            ("bAlternateSetting", " 0"),
        ):
            (interface / attribute).write_text(value + "\n")
        (links / name).symlink_to(os.path.relpath(interface, links))


# A Raspberry Pi 4B's own USB: the VL805's root hubs and the VIA Labs hub behind them.
PI4_HUBS = (
    UsbSpec("usb1", PI4_XHCI, "1d6b", "0002", "09", ("09",), serial="0000:01:00.0", product_name="xHCI Host Controller"),
    UsbSpec("1-1", f"{PI4_XHCI}/usb1", "2109", "3431", "09", ("09",), product_name="USB2.0 Hub"),
    UsbSpec("usb2", PI4_XHCI, "1d6b", "0003", "09", ("09",), serial="0000:01:00.0", product_name="xHCI Host Controller"),
)
# Intel Neural Compute Stick 2 (Movidius MyriadX) in a blue USB 3 port: class 00, one vendor-specific interface.
NCS2 = UsbSpec("2-1", f"{PI4_XHCI}/usb2", "03e7", "2485", "00", ("ff",), serial="03e72485", product_name="Movidius MyriadX")
# Logitech C270 webcam: a composite (IAD, class ef) with UVC video (0e) and audio (01) interfaces.
C270 = UsbSpec("1-1.3", f"{PI4_XHCI}/usb1/1-1", "046d", "0825", "ef", ("0e", "0e", "01", "01"), serial="A1B2C3D4")
PI4_NCS2_WEBCAM = PI4_HUBS + (NCS2, C270)


def make_host(sysfs: Path, dtb: Optional[bytes], usb: Tuple[UsbSpec, ...], with_fdt: bool = False) -> Path:
    """A fake host's sysfs at ``sysfs``; ``with_fdt`` also writes firmware/fdt (root-only, as on a board)."""
    if dtb is not None:
        expand(dtb, sysfs / "firmware" / "devicetree" / "base")
        if with_fdt:
            (sysfs / "firmware" / "fdt").write_bytes(dtb)
            os.chmod(sysfs / "firmware" / "fdt", 0o400)
    for spec in usb:
        add_usb_device(sysfs, spec)
    return sysfs


# A 7-port Genesys Logic GL850G hub, the commonest chip in 7-port USB 2.0 hubs.
GL850G = ("05e3", "0608")


def crowded_usb(count: int, interfaces: Tuple[str, ...] = ("0e", "ef", "fe", "ff"), serials: bool = False) -> Tuple[UsbSpec, ...]:
    """A Pi 4B's USB with ``count`` more devices of distinct ids, each with
    ``interfaces``, behind 7-port hubs filled from the Pi's own hub outwards
    (within the spec's five hub tiers): what makes a features file outgrow
    NFD's 64 KiB. The ids are under pid.codes' vendor 1209, which gives each
    open-hardware project its own product id."""
    devices = list(PI4_HUBS)
    free = deque((f"1-1.{port}", f"{PI4_XHCI}/usb1/1-1") for port in range(1, 5))
    while len(free) < count:
        name, parent = free.popleft()
        devices.append(UsbSpec(name, parent, *GL850G, "09", ("09",), product_name="USB2.0 Hub"))
        free.extend((f"{name}.{port}", f"{parent}/{name}") for port in range(1, 8))
    for number in range(count):
        name, parent = free.popleft()
        serial = f"PID{number:05d}" if serials else None
        devices.append(UsbSpec(name, parent, "1209", f"{0x1000 + number:04x}", "00", interfaces, serial=serial))
    return tuple(devices)


# ---------------------------------------------------------------- PCI, platform devices, /dev

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


def add_usb_xhci(
    sysfs: Path, bus_path: str, vendor: str, product: str, device_class: str, interface_classes=(), product_name: str = ""
) -> None:
    """A USB device behind an x86 host's xHCI controller, given by its ids (``add_usb_device`` lays it out)."""
    bus = bus_path[3:] if bus_path.startswith("usb") else bus_path.split("-")[0]
    parent = XHCI if bus_path.startswith("usb") else f"{XHCI}/usb{bus}"
    spec = UsbSpec(bus_path, parent, vendor, product, device_class, tuple(interface_classes), product_name=product_name)
    add_usb_device(sysfs, spec)
