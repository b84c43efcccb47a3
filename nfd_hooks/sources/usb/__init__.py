"""USB source: see ``source.py`` for the labels, ``sysfs.py``, ``udev.py`` and
``libusb.py`` for the backends, ``model.py`` for the record they all produce."""

from nfd_hooks.sources.usb.model import UsbDevice
from nfd_hooks.sources.usb.source import (
    BACKENDS,
    DEFAULT_ALLOWLIST,
    DEFAULT_LABEL_FIELDS,
    LABEL_FIELDS,
    UsbOptions,
    check_options,
    discover,
    read_devices,
    read_with_backend,
)

__all__ = [
    "BACKENDS",
    "DEFAULT_ALLOWLIST",
    "DEFAULT_LABEL_FIELDS",
    "LABEL_FIELDS",
    "UsbDevice",
    "UsbOptions",
    "check_options",
    "discover",
    "read_devices",
    "read_with_backend",
]
