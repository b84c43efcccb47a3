"""What decides a node's features: the flags of ``show``, ``write`` and ``watch``, as one record.

Each source reads its own part of it (``Source.configure``), checked and
normalised there once per scan. A flag for a new source is a field here, with
the source's default, and its declaration in ``nfd_hooks.flags``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import NamedTuple, Optional, Tuple

from nfd_hooks.sources.accelerators.source import DEFAULT_PREFIX as DEFAULT_ACCELERATOR_PREFIX
from nfd_hooks.sources.devicetree.source import DEFAULT_PREFIX
from nfd_hooks.sources.usb.source import DEFAULT_ALLOWLIST, DEFAULT_LABEL_FIELDS

__all__ = ["DEFAULT_ACCELERATOR_PREFIX", "DEFAULT_PREFIX", "DEPLOYED_HOOK", "Options"]


class Options(NamedTuple):
    """Everything that decides what a node's features are.

    A NamedTuple for start-up time (see ``nfd_hooks.features.Feature``).
    """

    sysfs: Path = Path("/sys")
    devicetree: Optional[Path] = None  # None: the live tree under <sysfs>
    devicetree_required: bool = True  # a named devicetree must exist (a replayed bundle may have none)
    nodes: Tuple[str, ...] = ()  # added to the devicetree source's DEFAULT_NODES
    prefix: str = DEFAULT_PREFIX
    include_disabled: bool = False
    raw_features: bool = True
    use_devicetree: bool = True
    use_usb: bool = True
    usb_classes: Tuple[str, ...] = DEFAULT_ALLOWLIST
    usb_label_fields: Tuple[str, ...] = DEFAULT_LABEL_FIELDS
    usb_backend: str = "auto"
    usb_details: bool = False  # the JSON output: usb.ids names, and serials even if no label uses them
    use_accelerators: bool = True
    accelerator_prefix: str = DEFAULT_ACCELERATOR_PREFIX
    catalogs: Tuple[Path, ...] = ()  # user catalog files, over the shipped one
    dev: Optional[Path] = Path("/dev")  # the host's /dev, for readiness; None: no device node visible
    compat_labels: bool = False  # also the labels vendor device plugins are scheduled by
    expires_in: Optional[timedelta] = None


# What the shipped one-shot hook scans: manifests/base/worker-daemonset.yaml and
# manifests/helm/values.yaml run `write --sysfs /host-sys [--dev /host-dev] --no-usb
# --features-dir ...` (NFD's own usb source labels USB there). Its paths aside,
# this is what `nfd-hooks test` replays bundles with unless told otherwise (its
# flag defaults are made from it, in nfd_hooks.flags); tests/nodes/test_command.py
# parses the manifests' args and holds them, and those defaults, to it.
DEPLOYED_HOOK = Options(use_usb=False)
