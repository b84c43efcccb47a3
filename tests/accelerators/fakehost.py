"""Fake sysfs trees laid out as the kernel lays them out, for the accelerator tests."""

from pathlib import Path


def add_pci_device(sysfs: Path, address: str, vendor: str, device: str, bridge: str = "0000:00:1c.0") -> Path:
    """A PCI function as sysfs shows it: the real node under devices/, a symlink in bus/pci/devices.

    ``vendor`` and ``device`` are written as the kernel writes them, ``0x1e60\\n``.
    """
    node = sysfs / "devices" / "pci0000:00" / bridge / address
    node.mkdir(parents=True, exist_ok=True)
    (node / "vendor").write_text(f"0x{vendor}\n")
    (node / "device").write_text(f"0x{device}\n")
    (node / "class").write_text("0x120000\n")
    links = sysfs / "bus" / "pci" / "devices"
    links.mkdir(parents=True, exist_ok=True)
    (links / address).symlink_to(Path("../../..") / "devices" / "pci0000:00" / bridge / address)
    return node


def add_usb_device(
    sysfs: Path, bus_path: str, vendor: str, product: str, device_class: str, interface_classes=(), product_name: str = ""
) -> Path:
    """A USB device as sysfs shows it: the node under the xHCI controller, its interfaces
    ``<bus_path>:1.<n>`` beside it, and symlinks for both in bus/usb/devices."""
    bus = bus_path.split("-")[0]
    parent = sysfs / "devices" / "pci0000:00" / "0000:00:14.0" / f"usb{bus}"
    node = parent / bus_path
    node.mkdir(parents=True)
    attributes = {
        "idVendor": vendor,
        "idProduct": product,
        "bDeviceClass": device_class,
        "bConfigurationValue": "1",
        "bNumInterfaces": f"{len(interface_classes):2d}",
    }
    if product_name:
        attributes["product"] = product_name
    for name, value in attributes.items():
        (node / name).write_text(value + "\n")
    links = sysfs / "bus" / "usb" / "devices"
    links.mkdir(parents=True, exist_ok=True)
    target = Path("../../..") / node.relative_to(sysfs)
    (links / bus_path).symlink_to(target)
    for number, interface_class in enumerate(interface_classes):
        interface = node / f"{bus_path}:1.{number}"
        interface.mkdir()
        (interface / "bInterfaceClass").write_text(interface_class + "\n")
        (interface / "bInterfaceNumber").write_text(f"{number:02x}\n")
        (links / interface.name).symlink_to(target / interface.name)
    return node
