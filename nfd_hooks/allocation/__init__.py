"""Allocation: the accelerators of the device model handed to pods, one device per pod.

Two ways to the kubelet, from the same device model
(``nfd_hooks.sources.accelerators.devices``): a DRA driver (``dra``: ResourceSlice,
kubelet plugin, CDI specs) and a classic device plugin (``deviceplugin``). Only
their own commands import this package: the one-shot hook never does
(tests/perf holds that).
"""
