"""What wakes ``watch`` between its interval rescans: the kernel's device uevents, through pyudev.

``Events`` waits out the interval (``--no-uevents``, or no netlink); ``Uevents``
returns early when a uevent of the subsystems the sources name arrives
(``api.uevent_subsystems``). pyudev is imported here only.
"""

import select
import threading
import time
from typing import Callable, Sequence

# The longest a wait blocks without looking at the stop event: SIGTERM's latency.
TICK = 0.2


class Events:
    """No device events: wait out the interval (or until stopped)."""

    description = "no uevents"

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop

    def wait(self, timeout: float) -> bool:
        """True as soon as a device event arrives; False at ``timeout`` or when stopped."""
        self.stop.wait(timeout)
        return False


class Uevents(Events):
    """Device uevents of some subsystems from the kernel's netlink socket, through pyudev.

    The kernel group (not udevd's) is used: the kernel broadcasts device
    uevents into every network namespace owned by the initial user namespace,
    so a pod without hostNetwork gets them, and no udevd is needed. udevd's
    group reaches only the host's network namespace, and libudev disables it
    inside containers.
    """

    def __init__(self, stop: threading.Event, subsystems: Sequence[str] = ("usb",)) -> None:
        super().__init__(stop)
        import pyudev

        self.description = "uevents of " + ", ".join(subsystems)
        self.monitor = pyudev.Monitor.from_netlink(pyudev.Context(), source="kernel")
        for subsystem in subsystems:  # a uevent of any of them passes
            self.monitor.filter_by(subsystem)
        self.monitor.start()

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            ready, _, _ = select.select([self.monitor], [], [], min(left, TICK))
            if ready and self._drain():
                return True
        return False

    def _drain(self) -> bool:
        """Read every pending message; True if one was a USB device event (or some were lost)."""
        seen = False
        while True:
            try:
                device = self.monitor.poll(timeout=0)
            except OSError:  # ENOBUFS: events were dropped, so something may have changed
                return True
            if device is None:
                return seen
            seen = True


def open_events(stop: threading.Event, udev: bool, log: Callable[[str], None], subsystems: Sequence[str] = ("usb",)) -> Events:
    """The uevent source when asked for and available, else interval polling alone."""
    if udev and subsystems:
        try:
            return Uevents(stop, subsystems)
        except (ImportError, OSError) as error:  # no libudev, netlink refused
            log(f"no uevents ({' '.join(str(error).split()) or type(error).__name__}); rescanning on the interval only")
    return Events(stop)
