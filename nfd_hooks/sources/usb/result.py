"""What the USB source found: every device read, and the labels each one gave or why none.

Typed, so that the accelerator source (``devices``), the JSON view
(``details``) and the table read the same fields. Plain classes with
``__slots__`` for start-up time (see ``devicetree/result.py``).
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from nfd_hooks.sources.usb.model import UsbDevice


class UsbNames:
    """What a device is called: usb.ids names of its vendor and product (None:
    not listed, or no usb.ids), the device's own manufacturer and product
    strings (None: it has none, or they were not read), and the names of its
    classes (USB-IF base classes, shipped), as ``(code, name)`` pairs."""

    __slots__ = ("vendor", "product", "classes", "manufacturer", "product_string")

    def __init__(
        self,
        vendor: Optional[str],
        product: Optional[str],
        classes: Tuple[Tuple[str, str], ...] = (),
        manufacturer: Optional[str] = None,
        product_string: Optional[str] = None,
    ) -> None:
        self.vendor = vendor
        self.product = product
        self.classes = classes
        self.manufacturer = manufacturer
        self.product_string = product_string


class UsbEntry:
    """A device, its labels, and why it has none (for a person; None when it has
    some); ``names`` only for people (``show --format table|json``)."""

    __slots__ = ("device", "labels", "no_label", "names")

    def __init__(self, device: UsbDevice, labels: Tuple[str, ...], no_label: Optional[str], names: Optional[UsbNames] = None) -> None:
        self.device = device
        self.labels = labels
        self.no_label = no_label
        self.names = names


class UsbFound:
    """The devices read by ``backend`` under ``sysfs``, sorted by bus path, and the
    rules that labelled them. ``usb_ids`` is the usb.ids file names came from
    (None: none installed); names are looked for only ``with_names``."""

    __slots__ = ("backend", "sysfs", "allowlist", "label_fields", "entries", "with_names", "usb_ids")

    def __init__(
        self,
        backend: str,
        sysfs: str,
        allowlist: Tuple[str, ...],
        label_fields: Tuple[str, ...],
        entries: Tuple[UsbEntry, ...],
        with_names: bool = False,
        usb_ids: Optional[str] = None,
    ) -> None:
        self.backend = backend
        self.sysfs = sysfs
        self.allowlist = allowlist
        self.label_fields = label_fields
        self.entries = entries
        self.with_names = with_names
        self.usb_ids = usb_ids

    @property
    def devices(self) -> Tuple[UsbDevice, ...]:
        """Every device read, labelled or not: what the accelerator catalog matches."""
        return tuple(entry.device for entry in self.entries)

    def details(self) -> Dict[str, Any]:
        document: Dict[str, Any] = {
            "backend": self.backend,
            "sysfs": self.sysfs,
            "allowlist": list(self.allowlist),
            "label_fields": list(self.label_fields),
            "devices": [_entry(entry) for entry in self.entries],
        }
        if self.with_names:
            document["usb_ids"] = self.usb_ids
        return document


def _entry(entry: UsbEntry) -> Dict[str, Any]:
    device = entry.device
    document: Dict[str, Any] = {
        "no_label": entry.no_label,
        "bus_path": device.bus_path,
        "vendor": device.vendor,
        "product": device.product,
        "device_class": device.device_class,
        "interface_classes": list(device.interface_classes),
        "labels": list(entry.labels),
    }
    if entry.names is not None:
        document["vendor_name"] = entry.names.vendor
        document["product_name"] = entry.names.product
        document["manufacturer"] = entry.names.manufacturer
        document["product_string"] = entry.names.product_string
        document["class_names"] = dict(entry.names.classes)
    return document
