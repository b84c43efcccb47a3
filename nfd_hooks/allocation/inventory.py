"""The node's devices, read the way the labels are: the accelerator source's scan.

The devicetree does not change while the node runs and is read once; USB and
PCI are read on every scan (a few milliseconds on a board), with serials, which
the labels read only when asked.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from nfd_hooks import api
from nfd_hooks.sources import SourceReport
from nfd_hooks.sources import accelerators as accelerator_source
from nfd_hooks.sources import devicetree as devicetree_source
from nfd_hooks.sources import usb as usb_source
from nfd_hooks.sources.accelerators.binding import SysfsProbe
from nfd_hooks.sources.accelerators.devices import Device, from_report


class Inventory:
    """Scans one node (``options``: its sysfs, /dev as the driver sees it, catalogs)."""

    def __init__(self, options: api.Options) -> None:
        self.options = options._replace(
            usb_label_fields=tuple(dict.fromkeys(options.usb_label_fields + ("serial",))), usb_details=False,
        )
        self._devicetree: Optional[SourceReport] = None

    def scan(self) -> Tuple[Dict[str, Device], List[str]]:
        """Every device of the model by name (allocatable or not), and notices."""
        options = self.options
        notices: List[str] = []
        nodes = None
        if options.use_devicetree:
            if self._devicetree is None:
                self._devicetree = devicetree_source.discover(options.devicetree_options())
                notices += self._devicetree.notices
            nodes = devicetree_source.compatible_nodes(self._devicetree)
        usb_devices = None
        if options.use_usb:
            usb_devices, read_notices, _ = usb_source.read_with_backend(options.usb_options())
            notices += read_notices
        report = accelerator_source.discover(options.accelerator_options(), usb_devices, nodes)
        notices += report.notices
        probe = SysfsProbe(options.sysfs, options.dev, notices)
        try:
            devices, more = from_report(report, probe)
        finally:
            probe.close()
        return {device.name: device for device in devices}, notices + more
