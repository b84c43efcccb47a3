"""Accelerator source: ``catalog.toml`` lists the accelerators, ``source.py`` matches
them, ``result.py`` holds what matched, device by device."""

from nfd_hooks.sources.accelerators.result import AcceleratorsFound, Match, MatchedDevice
from nfd_hooks.sources.accelerators.source import DEFAULT_PREFIX, SOURCE, AcceleratorOptions, discover

__all__ = ["DEFAULT_PREFIX", "SOURCE", "AcceleratorOptions", "AcceleratorsFound", "Match", "MatchedDevice", "discover"]
