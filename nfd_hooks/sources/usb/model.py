"""The USB device record every backend (sysfs, pyudev, pyusb) produces.

Backends differ in how they read a device; the labels depend only on this
record, which is how the backends are held to one result.
"""

from dataclasses import dataclass
from typing import Optional, Tuple


@dataclass(frozen=True, order=True)
class UsbDevice:
    """One USB device: ids and classes as lowercase hex, as NFD writes them."""

    bus_path: str  # the sysfs device name, e.g. "1-1.2" or "usb1"
    vendor: str  # idVendor, 4 hex digits
    product: str  # idProduct, 4 hex digits
    device_class: str  # bDeviceClass, 2 hex digits
    interface_classes: Tuple[str, ...] = ()  # distinct, sorted, active configuration
    serial: Optional[str] = None
