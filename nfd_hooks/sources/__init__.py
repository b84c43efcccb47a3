"""Feature sources, one per package, as NFD has ``source/usb`` and ``source/local``.

Each turns one kind of hardware description into features and a typed account
of what it found, behind one interface (``base.Source``); the features model
validates and renders them, so a source only has to be right about its own
hardware. ``SOURCES`` lists them all, in the order they run: a source reads
what those before it found (the accelerators read the devicetree's nodes and
the USB devices). A new source is a package with a ``SOURCE``, registered here.
"""

from typing import Any, Tuple

from nfd_hooks.sources import accelerators, devicetree, usb
from nfd_hooks.sources.base import Found, Source, SourceReport, found_in

SOURCES: Tuple[Source[Any, Any], ...] = (devicetree.SOURCE, usb.SOURCE, accelerators.SOURCE)

__all__ = ["SOURCES", "Found", "Source", "SourceReport", "found_in"]
