"""``nfd-hooks capture``: a node's devicetree and USB attributes into a bundle for replay.

``devicetree.py`` gets the blob, ``usb.py`` the USB attribute files;
``nfd_hooks.bundle`` writes them with their manifest (and verifies a bundle).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import List, Optional

from nfd_hooks.bundle import USB_DEVICES, Contents, write_bundle
from nfd_hooks.capture.devicetree import capture_devicetree
from nfd_hooks.capture.usb import capture_usb
from nfd_hooks.errors import OutputError


@dataclass
class Capture:
    """What ``capture`` wrote, for the one-line summary."""

    directory: Path
    devicetree_from: Optional[str]
    usb_devices: int
    size: int
    notices: List[str] = field(default_factory=list)


def capture(
    directory: Path,
    sysfs: Path = Path("/sys"),
    devicetree: Optional[Path] = None,
    with_serials: bool = False,
    now: Optional[datetime] = None,
) -> Capture:
    """Write the bundle for the node under ``sysfs`` to ``directory`` (new or empty)."""
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise OutputError(f"{directory} exists and is not an empty directory")
    notices: List[str] = []
    blob, blob_from = capture_devicetree(sysfs, devicetree, notices)
    files, links, devices = capture_usb(sysfs, with_serials, notices)
    contents = Contents(files, links, blob, blob_from, devices, with_serials, sysfs.joinpath(*USB_DEVICES).is_dir())
    size = write_bundle(directory, contents, now or datetime.now(timezone.utc))
    return Capture(directory, blob_from, devices, size, notices)
