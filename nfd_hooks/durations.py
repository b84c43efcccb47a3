"""The time flags (``--expires-in``, ``--interval``), parsed and bounded.

Bounded here, before any arithmetic: a huge value would overflow datetime or
the C time_t of a wait (a traceback), a tiny interval would rescan in a busy
loop, and neither is what anyone meant. Out-of-range values are InputError
(exit 2), one line naming the flag.
"""

import math
import re
from datetime import timedelta

from nfd_hooks.errors import InputError

# An expiry exists to drop labels a dead hook can no longer refresh; ten years is no expiry at all.
MAX_EXPIRES_IN = timedelta(days=3650)
# Rescans: more often than this is a busy loop; less often than daily is never.
MIN_INTERVAL = 0.1
MAX_INTERVAL = 86400.0

# Compiled on first use (re caches it), not at import: most runs have no --expires-in.
_DURATION = r"(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?\Z"  # ASCII digits: \d takes '٣' too
_MAX_DIGITS = 12  # far beyond MAX_EXPIRES_IN in any unit, far below int()'s digit limit


def parse_duration(text: str) -> timedelta:
    """``--expires-in``: ``90s``, ``15m``, ``1h30m``, ``2d``: Go-like durations, without fractions."""
    match = re.match(_DURATION, text.strip())
    if not text.strip() or not match or not any(match.groups()):
        raise InputError(f"--expires-in {text!r} is not a duration like 90s, 15m, 1h30m or 2d")
    if any(len(group) > _MAX_DIGITS for group in match.groups() if group):
        return _too_long(text)
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    if total > MAX_EXPIRES_IN.total_seconds():
        return _too_long(text)
    return timedelta(seconds=total)


def _too_long(text: str) -> timedelta:
    raise InputError(f"--expires-in {text!r} is over the longest expiry, {MAX_EXPIRES_IN.days}d")


def check_interval(seconds: float) -> float:
    """``--interval``: seconds between rescans, MIN_INTERVAL to MAX_INTERVAL (no inf, no nan)."""
    if not (math.isfinite(seconds) and MIN_INTERVAL <= seconds <= MAX_INTERVAL):
        raise InputError(f"--interval {seconds!r} must be {MIN_INTERVAL:g} to {MAX_INTERVAL:g} seconds")
    return seconds
