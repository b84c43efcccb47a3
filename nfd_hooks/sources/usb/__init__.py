"""USB source: see ``source.py`` for the labels, ``sysfs.py``, ``udev.py`` and
``libusb.py`` for the backends, ``model.py`` for the record they all produce,
``result.py`` for what the source found."""

from nfd_hooks.sources.usb.model import UsbDevice
from nfd_hooks.sources.usb.result import UsbFound
from nfd_hooks.sources.usb.source import (
    BACKENDS,
    DEFAULT_ALLOWLIST,
    DEFAULT_LABEL_FIELDS,
    LABEL_FIELDS,
    SOURCE,
    UsbOptions,
    check_options,
    discover,
    read_with_backend,
)

__all__ = [
    "BACKENDS",
    "DEFAULT_ALLOWLIST",
    "DEFAULT_LABEL_FIELDS",
    "LABEL_FIELDS",
    "SOURCE",
    "UsbDevice",
    "UsbFound",
    "UsbOptions",
    "check_options",
    "discover",
    "read_with_backend",
]
