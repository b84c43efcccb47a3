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
