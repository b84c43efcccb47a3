"""Vendor and product names from usb.ids, for people only (``show --format table|json``).

Loaded only when asked: the file is ~700 KB and the labels never need it.
Absent file, absent names: ids alone are still right, and the table falls back
on the devices' own strings and the catalog. It comes from the Debian and
Ubuntu package usb.ids, and from hwdata elsewhere (``USB_IDS_HINT``).
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

USB_IDS_HINT = "usb.ids not found (Debian, Ubuntu: package usb.ids; Fedora, Arch, Alpine: hwdata)"

_VENDOR = re.compile(r"([0-9a-f]{4})  (.+)")
_PRODUCT = re.compile(r"\t([0-9a-f]{4})  (.+)")


@dataclass
class UsbNames:
    """The names of the vendors asked for and of their products (class names are shipped: ``classes``)."""

    path: Path
    vendors: Dict[str, str] = field(default_factory=dict)
    products: Dict[Tuple[str, str], str] = field(default_factory=dict)


def load_names(vendors: Iterable[str], paths: Optional[Sequence[Path]] = None) -> Optional[UsbNames]:
    """Names from the first readable usb.ids among ``paths`` (default ``USB_IDS_PATHS``); None when there is none."""
    for path in USB_IDS_PATHS if paths is None else paths:
        try:
            with path.open("r", encoding="utf-8", errors="replace") as stream:
                return parse(stream, set(vendors), path)
        except OSError:
            continue
    return None


def parse(lines: Iterable[str], vendors: Set[str], path: Path) -> UsbNames:
    """Vendor and product lines come first; the first ``C`` (class) line ends them."""
    names = UsbNames(path)
    vendor: Optional[str] = None
    for line in lines:
        line = line.rstrip("\n")
        if line.startswith("C "):
            break
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
