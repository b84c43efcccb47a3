"""The node's devices, read the way the labels are: the sources of a scan, to the
accelerator source's typed result, then the device model.

The devicetree does not change while the node runs and is read once (the
sources' ``static`` flag, as ``watch`` does); USB and PCI are read on every scan
(a few milliseconds on a board), with serials, which the labels read only when
asked. The features are not assembled: nothing here writes them.
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from nfd_hooks import api
from nfd_hooks.sources import SOURCES, SourceReport, found_in
from nfd_hooks.sources.accelerators.binding import SysfsProbe
from nfd_hooks.sources.accelerators.devices import Device, from_found
from nfd_hooks.sources.accelerators.result import AcceleratorsFound

STATIC = frozenset(source.name for source in SOURCES if source.static)


class Inventory:
    """Scans one node (``options``: its sysfs, /dev as the driver sees it, catalogs)."""

    def __init__(self, options: api.Options) -> None:
        self.options = options._replace(
            usb_label_fields=tuple(dict.fromkeys(options.usb_label_fields + ("serial",))), usb_details=False,
        )
        self._static: Dict[str, SourceReport[Any]] = {}

    def check(self) -> None:
        """InputError for options a scan would refuse (a broken catalog, a bad flag)."""
        api.configure(self.options)

    def scan(self) -> Tuple[Dict[str, Device], List[str]]:
        """Every device of the model by name (allocatable or not), and notices."""
        reports: List[SourceReport[Any]] = []
        for source, own in api.configure(self.options):
            report = self._static.get(source.name) or source.discover(own, reports)
            if source.name in STATIC:
                self._static[source.name] = report
            reports.append(report)
        notices = [notice for report in reports for notice in report.notices]
        found = found_in(reports, AcceleratorsFound)
        if found is None:  # --no-accelerators: nothing to allocate
            return {}, notices
        probe = SysfsProbe(self.options.sysfs, self.options.dev, notices)
        try:
            devices, more = from_found(found, probe)
        finally:
            probe.close()
        return {device.name: device for device in devices}, notices + more
