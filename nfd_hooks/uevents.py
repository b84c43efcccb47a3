"""Which kernel uevents can change what nfd-hooks reports: shared by ``watch`` and the
allocation daemons (a module of its own so that those need not import ``watch``)."""

from __future__ import annotations

from typing import Tuple

from nfd_hooks import api


def uevent_subsystems(options: api.Options) -> Tuple[str, ...]:
    """The subsystems whose uevents can change the file: USB devices come, go and
    re-enumerate (a Coral once its firmware is loaded); PCI and platform devices
    get drivers bound and unbound; the catalog's device classes get nodes."""
    subsystems = ["usb"] if options.use_usb else []
    if options.use_accelerators:
        from nfd_hooks.sources.accelerators.catalog import load_catalog

        classes = {e.ready.device_class for e in load_catalog(options.catalogs).values() if e.ready and e.ready.device_class}
        subsystems += ["pci", "platform", *sorted(classes)]
    return tuple(dict.fromkeys(subsystems))
