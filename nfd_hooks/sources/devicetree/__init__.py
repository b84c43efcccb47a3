"""Devicetree source: see ``source.py`` for the labels, ``naming.py`` for their names."""

from nfd_hooks.sources.devicetree.source import (
    DEFAULT_NODES,
    DEFAULT_PREFIX,
    DevicetreeOptions,
    compatible_nodes,
    discover,
)

__all__ = ["DEFAULT_NODES", "DEFAULT_PREFIX", "DevicetreeOptions", "compatible_nodes", "discover"]
