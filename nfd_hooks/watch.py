"""``nfd-hooks watch``: keep the features file current as devices come and go.

The one-shot ``write`` sees only what was plugged in when the pod started. The
watcher writes the file at start, then rescans on device uevents and every
``interval`` seconds, and rewrites the file (atomically) only when its features
changed or its expiry is due for refreshing, so NFD and the API server see no
churn. The file on disk is the state: whatever wrote it last (the one-shot
initContainer, an earlier watcher), it is compared, not assumed.

The devicetree does not change at run time and is read once at start; its
report is handed to every rescan (``api.scan(options, reuse)``, a static
source's), so the accelerator catalog still matches on it while USB and PCI
are read afresh, and
readiness with them: a stick re-enumerating with its firmware, a driver
binding or unbinding (``bind``/``unbind`` uevents of its PCI or platform
device) and a device node coming or going (a uevent of its class) each wake a
rescan (``api.uevent_subsystems``, from each source's ``uevents``).
"""

import signal
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from nfd_hooks import api
from nfd_hooks.diff import Change, changes, features_of_files
from nfd_hooks.durations import check_interval
from nfd_hooks.errors import NfdHooksError, say
from nfd_hooks.nfdfile import EXPIRY, MAX_FILE_SIZE, parse_rfc3339
from nfd_hooks.safe_read import read_regular_file
from nfd_hooks.sources import SourceReport
from nfd_hooks.uevents import Events, open_events
from nfd_hooks.writer import check_file_name, part_files, temporary_directory, write_atomically, write_files

# After a uevent, wait this long so that a device's interfaces (each with its
# own uevent, milliseconds apart) are in sysfs before the rescan.
SETTLE = 0.3
# Never rescan more often than this for an expiry refresh (a 1 s --expires-in
# would otherwise spin).
MIN_REFRESH_DELAY = 1.0
# NFD v0.19's worker re-reads features.d on the first fsnotify event of each
# 1 s tick of a free-running ticker and drops later ones: two of our events
# (renames, or making the scratch directory) further apart than a tick always
# have a tick between them, so each one is seen. Changes within SPACING of a
# write are coalesced into the next rescan.
SPACING = 1.1

_EXPIRY = EXPIRY.encode()

Log = Callable[[str], None]
# api.scan: the options, and the reports of an earlier scan to reuse.
Scanner = Callable[[api.Options, Sequence[SourceReport[Any]]], api.Scan]


def split_expiry(content: bytes) -> Tuple[bytes, Optional[datetime]]:
    """``content`` without its ``# +expiry-time=`` line, and that time (None if absent or unreadable)."""
    kept, expires = [], None
    for line in content.splitlines(keepends=True):
        if line.startswith(_EXPIRY):
            try:
                expires = parse_rfc3339(line[len(_EXPIRY):].strip().decode("ascii"))
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


def joined(files: Mapping[str, Optional[bytes]], name: str) -> Optional[bytes]:
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
        done = changes(_features_of(existing.values(), now), _features_of(new.values(), now))
        events = write_files(directory, name, [(part[len(name):], content) for part, content in new.items()]).events
        existing = dict(new)
    elif settle and (current := existing[name]) is not None:
        write_atomically(directory, name, current)
        events = 1
    main = existing[name] or new[name]
    return Sync(reason, refresh_delay(main, now, options.expires_in), done, events)


def _features_of(files: Iterable[Optional[bytes]], now: datetime) -> Dict[str, Tuple[str, bool]]:
    """What NFD reads from all of ``files`` together (an unreadable one: nothing)."""
    return features_of_files((content or b"" for content in files), now)


@dataclass
class Watch:
    """The loop's configuration; ``scan`` and ``spacing`` differ only in tests."""

    options: api.Options
    directory: Path
    name: str
    interval: float = api.DEFAULT_INTERVAL
    scan: Scanner = api.scan
    log: Log = say
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
        first = self.scan(self.options, ())
        static = api.static_reports(first)
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
                result = self.scan(self.options, static)
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
        watcher.run(stop, open_events(stop, udev, watcher.info, api.uevent_subsystems(options)))
    finally:
        restore()
