"""Fake sysfs trees laid out as the kernel lays them out, for the accelerator tests:
PCI functions here, USB devices through the shared tests/fakehost.py."""

from pathlib import Path

from tests.fakehost import UsbSpec
from tests.fakehost import add_usb_device as add_usb_spec

# An x86 host's xHCI controller, where its USB buses hang.
XHCI = "devices/pci0000:00/0000:00:14.0"


def add_pci_device(sysfs: Path, address: str, vendor: str, device: str, bridge: str = "0000:00:1c.0") -> Path:
    """A PCI function as sysfs shows it: the real node under devices/, a symlink in bus/pci/devices.

    ``vendor`` and ``device`` are written as the kernel writes them, ``0x1e60\\n``.
    """
    root = f"pci{address.split(':')[0]}:00"  # the host bridge of the function's PCI domain
    node = sysfs / "devices" / root / bridge / address
    node.mkdir(parents=True, exist_ok=True)
    (node / "vendor").write_text(f"0x{vendor}\n")
    (node / "device").write_text(f"0x{device}\n")
    (node / "class").write_text("0x120000\n")
    links = sysfs / "bus" / "pci" / "devices"
    links.mkdir(parents=True, exist_ok=True)
    (links / address).symlink_to(Path("../../..") / "devices" / root / bridge / address)
    return node



def add_usb_device(
    sysfs: Path, bus_path: str, vendor: str, product: str, device_class: str, interface_classes=(), product_name: str = ""
) -> None:
    """A USB device behind an xHCI controller, laid out by the shared tests/fakehost.py."""
    bus = bus_path[3:] if bus_path.startswith("usb") else bus_path.split("-")[0]
    parent = XHCI if bus_path.startswith("usb") else f"{XHCI}/usb{bus}"
    spec = UsbSpec(bus_path, parent, vendor, product, device_class, tuple(interface_classes), product_name=product_name)
    add_usb_spec(sysfs, spec)
