"""The USB base classes by name, shipped: usb.ids is often absent (a laptop, our image).

From the USB-IF's "Defined Class Codes" (https://www.usb.org/defined-class-codes),
the Description column, as of its 2023 revision (MCTP and I3C added).
"""

from typing import Dict

BASE_CLASSES: Dict[str, str] = {
    "00": "Use class information in the Interface Descriptors",
    "01": "Audio",
    "02": "Communications and CDC Control",
    "03": "HID (Human Interface Device)",
    "05": "Physical",
    "06": "Image",
    "07": "Printer",
    "08": "Mass Storage",
    "09": "Hub",
    "0a": "CDC-Data",
    "0b": "Smart Card",
    "0d": "Content Security",
    "0e": "Video",
    "0f": "Personal Healthcare",
    "10": "Audio/Video Devices",
    "11": "Billboard Device Class",
    "12": "USB Type-C Bridge Class",
    "13": "USB Bulk Display Protocol Device Class",
    "14": "MCTP over USB Protocol Endpoint Device Class",
    "3c": "I3C Device Class",
    "dc": "Diagnostic Device",
    "e0": "Wireless Controller",
    "ef": "Miscellaneous",
    "fe": "Application Specific",
    "ff": "Vendor Specific",
}
