"""Devicetree source: see ``source.py`` for the labels, ``naming.py`` for their names,
``result.py`` for what it found."""

from nfd_hooks.sources.devicetree.result import DevicetreeFound
from nfd_hooks.sources.devicetree.source import DEFAULT_NODES, DEFAULT_PREFIX, SOURCE, DevicetreeOptions, discover

__all__ = ["DEFAULT_NODES", "DEFAULT_PREFIX", "SOURCE", "DevicetreeFound", "DevicetreeOptions", "discover"]
