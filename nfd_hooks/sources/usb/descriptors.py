"""A pure walker over raw USB descriptors, as sysfs's ``descriptors`` attribute holds them.

The attribute is the device descriptor followed by every configuration's
descriptors, each a ``bLength, bDescriptorType, ...`` record (USB 2.0 spec,
chapter 9). Recordings often keep only this attribute, not the interface
directories, so the interface classes have to come from here. Input is
untrusted: the walk is bounded, stops at the first malformed record, and never
raises.
"""

from __future__ import annotations

from typing import Dict, Set, Tuple

# Kernel limit per configuration is 64 KiB (wTotalLength), and at most 8 configurations.
MAX_DESCRIPTORS_SIZE = 18 + 8 * 65536

CONFIGURATION = 2
INTERFACE = 4
_MIN_LENGTH = 9  # configuration and interface descriptors are 9 bytes


def interface_classes_by_configuration(data: bytes) -> Dict[int, Tuple[str, ...]]:
    """``{bConfigurationValue: distinct interface classes, sorted lowercase hex}``.

    Every interface descriptor counts, alternate settings included, as libusb
    reports them. Interfaces before any configuration descriptor are ignored.
    """
    found: Dict[int, Set[str]] = {}
    config = None
    offset = 0
    end = min(len(data), MAX_DESCRIPTORS_SIZE)
    while offset + 2 <= end:
        length, kind = data[offset], data[offset + 1]
        if length < 2 or offset + length > end:
            break
        if kind in (CONFIGURATION, INTERFACE) and length < _MIN_LENGTH:
            break
        if kind == CONFIGURATION:
            config = data[offset + 5]
            found.setdefault(config, set())
        elif kind == INTERFACE and config is not None:
            found[config].add(f"{data[offset + 5]:02x}")
        offset += length
    return {value: tuple(sorted(classes)) for value, classes in found.items()}
