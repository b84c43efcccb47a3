"""``nfd-hooks watch``: keep the features file current as devices come and go.

The one-shot ``write`` sees only what was plugged in when the pod started. The
watcher writes the file at start, then rescans on device uevents and every
``interval`` seconds, and rewrites the file (atomically) only when its features
changed or its expiry is due for refreshing, so NFD and the API server see no
churn. The file on disk is the state: whatever wrote it last (the one-shot
initContainer, an earlier watcher), it is compared, not assumed.

The devicetree does not change at run time and is read once at start; its
report is handed to every rescan (``api.scan(options, devicetree)``), so the
accelerator catalog still matches on it while USB and PCI are read afresh, and
readiness with them: a stick re-enumerating with its firmware, a driver
binding or unbinding (``bind``/``unbind`` uevents of its PCI or platform
device) and a device node coming or going (a uevent of its class) each wake a
rescan (``nfd_hooks.uevents.uevent_subsystems``).
"""

import select
import signal
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from nfd_hooks import api
from nfd_hooks.diff import Change, changes, features_of
from nfd_hooks.durations import check_interval
from nfd_hooks.errors import NfdHooksError, one_line
from nfd_hooks.features import MAX_FILE_SIZE
from nfd_hooks.safe_read import read_regular_file
from nfd_hooks.sources import SourceReport
from nfd_hooks.uevents import uevent_subsystems
from nfd_hooks.writer import check_file_name, part_files, temporary_directory, write_atomically, write_files

# After a uevent, wait this long so that a device's interfaces (each with its
# own uevent, milliseconds apart) are in sysfs before the rescan.
SETTLE = 0.3
# The longest a wait blocks without looking at the stop event: SIGTERM's latency.
TICK = 0.2
# Never rescan more often than this for an expiry refresh (a 1 s --expires-in
# would otherwise spin).
MIN_REFRESH_DELAY = 1.0
# NFD v0.19's worker re-reads features.d on the first fsnotify event of each
# 1 s tick of a free-running ticker and drops later ones: two of our events
# (renames, or making the scratch directory) further apart than a tick always
# have a tick between them, so each one is seen. Changes within SPACING of a
# write are coalesced into the next rescan.
SPACING = 1.1

_EXPIRY = b"# +expiry-time="
_EXPIRY_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

Log = Callable[[str], None]
Scanner = Callable[[api.Options, Optional[SourceReport]], api.Scan]


def log_to_stderr(message: str) -> None:
    """One line per message, whatever a path or notice from the node holds."""
    print(f"nfd-hooks: {one_line(message)}", file=sys.stderr, flush=True)


def split_expiry(content: bytes) -> Tuple[bytes, Optional[datetime]]:
    """``content`` without its ``# +expiry-time=`` line, and that time (None if absent or unreadable)."""
    kept, expires = [], None
    for line in content.splitlines(keepends=True):
        if line.startswith(_EXPIRY):
            try:
                stamp = line[len(_EXPIRY):].strip().decode("ascii")
                expires = datetime.strptime(stamp, _EXPIRY_FORMAT).replace(tzinfo=timezone.utc)
            except ValueError:  # UnicodeDecodeError is one
                expires = None
            continue
        kept.append(line)
    return b"".join(kept), expires


def write_reason(
    existing: Optional[bytes], new: bytes, now: datetime, expires_in: Optional[timedelta]
) -> Optional[str]:
    """Why ``new`` must replace ``existing`` (None: it need not).

    Without an expiry the bytes decide. With one, the expiry line changes at
    every render, so the rest decides, plus the expiry itself: it is refreshed
    once less than half its lifetime is left, or when it is further ahead than
    a fresh one would be (the clock went back, as on a board without an RTC
    before NTP).
    """
    if existing is None:
        return "new file"
    if expires_in is None:
        return None if existing == new else "features changed"
    existing_body, expires = split_expiry(existing)
    if existing_body != split_expiry(new)[0]:
        return "features changed"
    if expires is None:
        return "expiry added"
    left = expires - now
    if left <= expires_in / 2 or left > expires_in:
        return "expiry refreshed"
    return None


def refresh_delay(content: bytes, now: datetime, expires_in: Optional[timedelta]) -> Optional[float]:
    """Seconds until ``content``'s expiry has half its lifetime left; None without an expiry."""
    if expires_in is None:
        return None
    expires = split_expiry(content)[1]
    if expires is None:
        return MIN_REFRESH_DELAY
    due = expires - expires_in / 2
    return max(MIN_REFRESH_DELAY, (due - now).total_seconds())


def read_existing(path: Path) -> Optional[bytes]:
    """The current file, or None when it cannot be read or is no regular file
    (then it is rewritten). Opened non-blocking: a FIFO planted at the target
    must not hang the watcher, deaf to SIGTERM."""
    try:
        return read_regular_file(str(path), MAX_FILE_SIZE + 1)
    except OSError:
        return None


def joined(files: Dict[str, Optional[bytes]], name: str) -> Optional[bytes]:
    """The files of one output as one text to compare (``write_reason``): the main
    file, then the others by name; None without a readable main file."""
    if files.get(name) is None:
        return None
    return b"".join(files[part] or b"" for part in [name] + sorted(set(files) - {name}))


@dataclass
class Sync:
    """What one pass did: why it wrote (None: it did not), what that changed for NFD,
    when to look again for the expiry, and how many files changed (an output
    split over several files changes them one by one, see ``Watch._sync``)."""

    reason: Optional[str]
    refresh_in: Optional[float]
    changes: List[Change]
    events: int = 0


def sync(result: api.Scan, options: api.Options, directory: Path, name: str, now: datetime, settle: bool = False) -> Sync:
    """Render ``result`` and write it if the files on disk differ or the expiry is due.

    ``settle``: when nothing is to be written, replace the main file with itself,
    one more event for NFD to read the files of an earlier split write by.
    """
    new = {name + suffix: content for suffix, content in api.files(result, options, now)}
    existing = {part: read_existing(directory / part) for part in [name] + part_files(directory, name)}
    reason = write_reason(joined(existing, name), joined(new, name) or b"", now, options.expires_in)
    if reason is None and existing.keys() != new.keys():
        reason = "files changed"
    done: List[Change] = []
    events = 0
    if reason is not None:
        done = changes(_features_of(existing, now), _features_of(new, now))
        events = write_files(directory, name, [(part[len(name):], content) for part, content in new.items()]).events
        existing = dict(new)
    elif settle and existing[name] is not None:
        write_atomically(directory, name, existing[name])
        events = 1
    main = existing[name] or new[name]
    return Sync(reason, refresh_delay(main, now, options.expires_in), done, events)


def _features_of(files: Dict[str, Optional[bytes]], now: datetime) -> Dict[str, Tuple[str, bool]]:
    """What NFD reads from all of ``files`` together."""
    seen: Dict[str, Tuple[str, bool]] = {}
    for content in files.values():
        seen.update(features_of(content or b"", now))
    return seen


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


def open_events(stop: threading.Event, udev: bool, log: Log, subsystems: Sequence[str] = ("usb",)) -> Events:
    """The uevent source when asked for and available, else interval polling alone."""
    if udev and subsystems:
        try:
            return Uevents(stop, subsystems)
        except (ImportError, OSError) as error:  # no libudev, netlink refused
            log(f"no uevents ({' '.join(str(error).split()) or type(error).__name__}); rescanning on the interval only")
    return Events(stop)


@dataclass
class Watch:
    """The loop's configuration; ``scan`` and ``spacing`` differ only in tests."""

    options: api.Options
    directory: Path
    name: str
    interval: float = api.DEFAULT_INTERVAL
    scan: Scanner = api.scan
    log: Log = log_to_stderr
    spacing: float = SPACING
    quiet: bool = False  # errors only: no notices, no progress lines
    # time.monotonic() of our last event in features.d.
    last_event: float = float("-inf")
    # The last write changed several files: one more event is due (``_sync``).
    unsettled: bool = False

    def check(self) -> None:
        """Bad flags fail at start (exit 2), like ``write``'s."""
        check_interval(self.interval)
        check_file_name(self.name)

    def run(self, stop: threading.Event, events: Events) -> None:
        """Write the file, then keep it current until ``stop`` is set.

        Errors at start propagate (the pod restarts and shows them); later ones
        (a device torn out mid-read, a full disk) are logged once and retried.
        """
        self.check()
        if temporary_directory(self.directory)[1]:
            self.last_event = time.monotonic()
            stop.wait(self.spacing)
        first = self.scan(self.options, None)
        devicetree = next((report for report in first.reports if report.name == "devicetree"), None)
        notices = first.notices
        for notice in notices:
            self.info(notice)
        delay = self._sync(first)
        self.info(f"watching {self.directory / self.name}: {events.description}, rescan every {self.interval:g} s")
        failure = None
        next_scan = max(time.monotonic() + delay, self.last_event + self.spacing)
        while not stop.is_set():
            if events.wait(max(0.0, next_scan - time.monotonic())):
                next_scan = max(min(next_scan, time.monotonic() + SETTLE), self.last_event + self.spacing)
                continue
            if stop.is_set() or time.monotonic() < next_scan:
                continue
            try:
                result = self.scan(self.options, devicetree)
                if result.notices != notices:
                    notices = result.notices
                    for notice in notices:
                        self.info(notice)
                delay = self._sync(result)
                if failure is not None:
                    self.log("rescan works again")
                failure = None
            except (NfdHooksError, OSError) as error:
                message = str(error) if isinstance(error, NfdHooksError) else f"{error.strerror or error}"
                if message != failure:
                    self.log(f"rescan failed, retrying every {self.interval:g} s: {message}")
                failure = message
                delay = self.interval
            next_scan = max(time.monotonic() + delay, self.last_event + self.spacing)

    def info(self, message: str) -> None:
        """A notice or a progress line: logged unless quiet (errors always are)."""
        if not self.quiet:
            self.log(message)

    def _sync(self, result: api.Scan) -> float:
        """Sync the files; seconds until the next rescan.

        NFD re-reads on the first event of a 1 s tick and drops the rest, so it
        may read a split output between two of its files' renames and keep that
        until its next re-read (60 s). After such a write one more event follows
        a tick later (the main file replaced by itself), unless a write does.
        """
        done = sync(result, self.options, self.directory, self.name, datetime.now(timezone.utc), self.unsettled)
        if done.events:
            self.last_event = time.monotonic()
        self.unsettled = done.events > 1
        if done.reason is not None:
            labels = sum(1 for f in result.features if f.label)
            self.info(f"wrote {self.directory / self.name} ({labels} labels; {done.reason})")
            for change in done.changes:
                self.info(change.format())
        if self.unsettled:
            return 0.0  # the loop waits out the spacing
        if done.refresh_in is None:
            return self.interval
        return min(self.interval, done.refresh_in)


def stop_on_signals(stop: threading.Event) -> Callable[[], None]:
    """Make SIGTERM and SIGINT set ``stop``; return a function restoring the old handlers."""
    signals: List[signal.Signals] = [signal.SIGTERM, signal.SIGINT]
    previous = {number: signal.getsignal(number) for number in signals}
    for number in signals:
        signal.signal(number, lambda *_: stop.set())

    def restore() -> None:
        for number, handler in previous.items():
            signal.signal(number, handler)

    return restore


def watch(
    options: api.Options, directory: Path, name: str, interval: float, udev: bool = True, quiet: bool = False
) -> None:
    """``nfd-hooks watch``: run until SIGTERM or SIGINT, then return normally (exit 0)."""
    watcher = Watch(options, directory, name, interval, quiet=quiet)
    watcher.check()
    stop = threading.Event()
    restore = stop_on_signals(stop)
    try:
        watcher.run(stop, open_events(stop, udev, watcher.info, uevent_subsystems(options)))
    finally:
        restore()
