"""Device uevents in the asyncio loop: the kernel's netlink group, as ``watch`` listens to it.

The monitor's socket is handed to the loop (``add_reader``), so an idle driver
is woken only by a uevent: no polling tick (``watch`` waits in select with a
0.2 s tick to see SIGTERM; the loop here sees signals itself).
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Optional

from nfd_hooks import api


def monitor(options: api.Options, wake: asyncio.Event, log: Callable[[str], None], resync: float) -> Optional[Any]:
    """Set ``wake`` on every uevent of the subsystems that change the devices; None if
    uevents cannot be had (then the caller rescans every ``resync`` seconds)."""
    from nfd_hooks.watch import uevent_subsystems

    try:
        import pyudev

        found = pyudev.Monitor.from_netlink(pyudev.Context(), source="kernel")
        for subsystem in uevent_subsystems(options):
            found.filter_by(subsystem)
        found.start()
    except (ImportError, OSError) as error:
        log(f"no uevents ({' '.join(str(error).split()) or type(error).__name__}); rescanning every {resync:g} s only")
        return None

    def drain() -> None:
        while True:
            try:
                if found.poll(timeout=0) is None:
                    break
            except OSError:  # ENOBUFS: some were lost; rescan anyway
                break
        wake.set()

    asyncio.get_running_loop().add_reader(found.fileno(), drain)
    return found


def stop(found: Optional[Any]) -> None:
    if found is not None:
        asyncio.get_running_loop().remove_reader(found.fileno())
