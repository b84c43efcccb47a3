"""Accelerator source: ``catalog.toml`` lists the accelerators, ``source.py`` matches them."""

from nfd_hooks.sources.accelerators.source import DEFAULT_PREFIX, AcceleratorOptions, discover

__all__ = ["DEFAULT_PREFIX", "AcceleratorOptions", "discover"]
