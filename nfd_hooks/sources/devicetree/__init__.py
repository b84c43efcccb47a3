"""Devicetree source: see ``source.py`` for the labels, ``naming.py`` for their names."""

from nfd_hooks.sources.devicetree.source import (
    DEFAULT_NODES,
    DEFAULT_PREFIX,
    DevicetreeOptions,
    discover,
)

__all__ = ["DEFAULT_NODES", "DEFAULT_PREFIX", "DevicetreeOptions", "discover"]
