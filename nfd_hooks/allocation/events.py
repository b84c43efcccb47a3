"""Device uevents in the asyncio loop: the kernel's uevent netlink group, as ``watch`` listens to it.

The socket is handed to the loop (``add_reader``), so an idle driver is woken only
by a uevent: no polling tick. It is read directly rather than through pyudev
(which ``watch`` uses): a daemon needs only "a device of these subsystems changed",
one field of a message the kernel sends as ``ACTION@DEVPATH`` and ``KEY=VALUE``
strings, while pyudev brings ctypes and libudev, resident against the driver's
30 MiB budget (bench/allocation_idle.py).

Only messages from the kernel itself count (sender port 0): the group is the
kernel's, but a message is a wake-up, never data: the driver rescans sysfs.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Callable, Collection, Optional

from nfd_hooks import api

NETLINK_KOBJECT_UEVENT = 15  # linux/netlink.h
KERNEL_GROUP = 1  # the kernel's own uevents (udev's rebroadcast is group 2)
RECEIVE_BUFFER = 1 << 20


def monitor(options: api.Options, wake: asyncio.Event, log: Callable[[str], None], resync: float) -> Optional[socket.socket]:
    """Set ``wake`` on every uevent of the subsystems that change the devices; None if
    uevents cannot be had (then the caller rescans every ``resync`` seconds)."""
    try:
        found = open_socket()
    except OSError as error:
        log(f"no uevents ({' '.join(str(error).split()) or type(error).__name__}); rescanning every {resync:g} s only")
        return None
    wanted = {subsystem.encode() for subsystem in api.uevent_subsystems(options)}
    asyncio.get_running_loop().add_reader(found.fileno(), drain, found, wanted, wake)
    return found


def open_socket() -> socket.socket:
    found = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, NETLINK_KOBJECT_UEVENT)
    try:
        found.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        found.bind((0, KERNEL_GROUP))
    except OSError:
        found.close()
        raise
    return found


def drain(found: socket.socket, wanted: Collection[bytes], wake: asyncio.Event) -> None:
    """Read every waiting message; set ``wake`` if one is the kernel's about a wanted subsystem."""
    while True:
        try:
            data, (sender, _) = found.recvfrom(65536)
        except BlockingIOError:
            return
        except OSError:  # ENOBUFS: some were lost; rescan anyway
            wake.set()
            return
        if sender == 0 and subsystem(data) in wanted:
            wake.set()


def subsystem(message: bytes) -> Optional[bytes]:
    """The SUBSYSTEM of a kernel uevent message (``ACTION@DEVPATH\\0KEY=VALUE\\0...``)."""
    for field in message.split(b"\0")[1:]:
        if field.startswith(b"SUBSYSTEM="):
            return field[len(b"SUBSYSTEM="):]
    return None


def stop(found: Optional[socket.socket]) -> None:
    if found is not None:
        asyncio.get_running_loop().remove_reader(found.fileno())
        found.close()
