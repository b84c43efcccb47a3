"""Vendor, product and class names from usb.ids (Debian package usb.ids), for JSON only.

Loaded only when asked (``show --format json``): the file is ~700 KB and the
labels never need it. Absent file, absent names: ids alone are still right.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, Optional, Sequence, Set, Tuple

USB_IDS_PATHS = (
    Path("/usr/share/misc/usb.ids"),
    Path("/usr/share/hwdata/usb.ids"),
    Path("/var/lib/usbutils/usb.ids"),
)

_VENDOR = re.compile(r"([0-9a-f]{4})  (.+)")
_PRODUCT = re.compile(r"\t([0-9a-f]{4})  (.+)")
_CLASS = re.compile(r"C ([0-9a-f]{2})  (.+)")


@dataclass
class UsbNames:
    """The names of the vendors asked for, their products, and every device class."""

    path: Path
    vendors: Dict[str, str] = field(default_factory=dict)
    products: Dict[Tuple[str, str], str] = field(default_factory=dict)
    classes: Dict[str, str] = field(default_factory=dict)


def load_names(vendors: Iterable[str], paths: Sequence[Path] = USB_IDS_PATHS) -> Optional[UsbNames]:
    """Names from the first readable usb.ids among ``paths``; None when there is none."""
    for path in paths:
        try:
            with path.open("r", encoding="utf-8", errors="replace") as stream:
                return parse(stream, set(vendors), path)
        except OSError:
            continue
    return None


def parse(lines: Iterable[str], vendors: Set[str], path: Path) -> UsbNames:
    """Vendor and product lines come first, then ``C`` class lines; stop after those."""
    names = UsbNames(path)
    vendor: Optional[str] = None
    in_classes = False
    for line in lines:
        line = line.rstrip("\n")
        if line.startswith("C "):
            in_classes = True
            match = _CLASS.match(line)
            if match:
                names.classes[match.group(1)] = match.group(2)
            continue
        if in_classes:
            if line and not line.startswith(("\t", "#")):
                break  # the next section (audio terminal types)
            continue
        match = _VENDOR.match(line)
        if match:
            vendor = match.group(1) if match.group(1) in vendors else None
            if vendor:
                names.vendors[vendor] = match.group(2)
            continue
        if vendor:
            match = _PRODUCT.match(line)
            if match:
                names.products[(vendor, match.group(1))] = match.group(2)
    return names
