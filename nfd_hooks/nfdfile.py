"""NFD's features-file format: its constants, what NFD accepts in it, and a reader.

The one home of the format, after NFD's source/local/local.go (v0.19) and
nfd-master's label validation: ``features`` writes files with these
constants, and ``check``, ``diff``, ``watch`` and ``nodes`` read them with
``parse``, which mirrors ``parseFeatureFile``: every line is trimmed (Go's
``strings.TrimSpace``); empty lines are skipped; ``#`` starts a comment and
``# +`` a directive; a feature line is split at its first ``=`` (``name``
alone means ``true``, ``name=`` an empty value, nothing is trimmed around
``=``); ``# +no-label`` / ``# +no-feature`` apply to the next feature line
only; ``# +expiry-time=`` applies to every line after it, and NFD silently
drops lines after an expiry time that has passed. A line's key is validated
only when it becomes a label (the worker drops invalid labels one by one);
raw features are not validated, as in NFD.

On the start path of every run (``features`` imports it): the reader's records
are plain classes with ``__slots__`` (see ``sources/devicetree/result.py``),
and its patterns are compiled on first use.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Dict, List, Optional, Tuple

# NFD skips a features file larger than this, whole (local.go, maxFileSize).
MAX_FILE_SIZE = 65536
# nfd-master's namespace for names without one, and NFD's own sources' (usb-..., pci-...).
NFD_PREFIX = "feature.node.kubernetes.io"
DIRECTIVE = "# +"
EXPIRY = DIRECTIVE + "expiry-time="
NO_LABEL = DIRECTIVE + "no-label"
# How an expiry time is written here: RFC 3339 in UTC, to the second.
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

# Go's unicode.IsSpace, which strings.TrimSpace uses, as NFD does to each line and
# to sysfs attributes; Python's str.strip() also strips U+001C..U+001F, which Go keeps.
GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

_NAME_RE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?\Z")
_VALUE_RE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?\Z")
_DNS_LABEL_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
# What Go's time.Parse(time.RFC3339, ...) accepts: its fast path, then its general
# parser, which also takes a one-digit hour and a fraction after ',' or '.'.
# Compiled on first use (re caches it): only readers of a file need it.
_RFC3339 = (
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{1,2}):([0-9]{2}):([0-9]{2})"
    r"(?:[.,]([0-9]+))?(?:Z|([+-])([0-9]{2}):([0-9]{2}))\Z"
)
_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def go_trimmed(text: str) -> str:
    """``text`` without leading and trailing whitespace as NFD trims it (Go's
    strings.TrimSpace, not Python's str.strip)."""
    return text.strip(GO_SPACE)


# ---------------------------------------------------------------- what NFD accepts


def prefix_problem(prefix: str) -> Optional[str]:
    """Why ``prefix`` is not a DNS subdomain usable as a label prefix, or None."""
    if not prefix or len(prefix) > 253:
        return "must be 1 to 253 characters"
    if not all(_DNS_LABEL_RE.match(part) for part in prefix.split(".")):
        return "must be a lowercase DNS subdomain (a-z, 0-9, '-', '.')"
    if prefix == "kubernetes.io" or (
        prefix.endswith(".kubernetes.io")
        and prefix not in (NFD_PREFIX, "profile.node.kubernetes.io")
        and not prefix.endswith("." + NFD_PREFIX)
        and not prefix.endswith(".profile.node.kubernetes.io")
    ):
        return "kubernetes.io namespaces are rejected by nfd-master"
    return None


def label_problem(name: str, value: str) -> Optional[str]:
    """Why ``name=value`` is not a valid, fully prefixed Kubernetes label, or None."""
    prefix, slash, short = name.rpartition("/")
    if not slash:
        return f"label {name!r} has no prefix"
    problem = prefix_problem(prefix)
    if problem:
        return f"label prefix {prefix!r} {problem}"
    if len(short) > 63 or not _NAME_RE.match(short):
        return f"label name {short!r} is not a valid Kubernetes label name"
    if len(value) > 63 or not _VALUE_RE.match(value):
        return f"label value {value!r} of {name!r} is not a valid Kubernetes label value"
    return None


def raw_feature_problem(name: str, value: str) -> Optional[str]:
    """Why a raw feature cannot be expressed as one features-file line, or None.

    NFD trims each line, splits it at its first ``=``, and reads ``#`` as a comment:
    a name may end in spaces (``=`` follows), a value may not (the line ends).
    """
    if not name or "=" in name or name != name.lstrip() or name.startswith("#"):
        return f"raw feature name {name!r} cannot be written"
    if any(c in name + value for c in "\n\r\0") or value != value.strip():
        return f"raw feature {name!r} has a value that cannot be written"
    return None


def label_line_problem(key: str, value: str) -> Optional[Tuple[str, bool]]:
    """Why the worker or master would drop ``key=value`` as a label, as
    ``(message, is_warning)``; a missing prefix alone is a warning."""
    if "/" in key:
        problem = label_problem(key, value)
        return (problem, False) if problem else None
    problem = label_problem(f"{NFD_PREFIX}/{key}", value)
    if problem:
        return problem, False
    return (
        f"label {key!r} has no prefix: nfd-master adds '{NFD_PREFIX}/' (and keeps it "
        "unprefixed when its DisableAutoPrefix feature gate is on); write the full name",
        True,
    )


# ---------------------------------------------------------------- times


def format_time(moment: datetime) -> str:
    """``moment`` as an expiry time is written: RFC 3339, UTC, to the second."""
    return moment.astimezone(timezone.utc).strftime(TIME_FORMAT)


def parse_rfc3339(text: str) -> datetime:
    """Parse as Go's ``time.Parse(time.RFC3339, text)`` would; raise ValueError."""
    match = re.match(_RFC3339, text)
    if not match:
        raise ValueError("not an RFC 3339 time like 2030-01-31T12:00:00Z")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    sign, off_hours, off_minutes = match.group(8), match.group(9), match.group(10)
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not 1 <= month <= 12:
        raise ValueError("month out of range")
    if not 1 <= day <= _DAYS[month - 1] + (1 if month == 2 and leap else 0):
        raise ValueError("day out of range")
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError("time of day out of range")
    offset = timedelta(0)
    if sign:
        if int(off_hours) > 24 or int(off_minutes) > 60:  # Go allows 24:00 and :60 here
            raise ValueError("time zone offset out of range")
        offset = timedelta(hours=int(off_hours), minutes=int(off_minutes)) * (1 if sign == "+" else -1)
    fraction = int((match.group(7) or "0")[:6].ljust(6, "0"))
    try:
        local = datetime(year, month, day, hour, minute, second, fraction)
        return (local - offset).replace(tzinfo=timezone.utc)
    except (ValueError, OverflowError):  # year 0 or 9999 edges: Go accepts them, Python cannot hold them
        return datetime.min.replace(tzinfo=timezone.utc) if year < 1000 else datetime.max.replace(tzinfo=timezone.utc)


# ---------------------------------------------------------------- the reader


class Problem:
    """One finding; ``line`` None means the whole file."""

    __slots__ = ("line", "message", "warning")

    def __init__(self, line: Optional[int], message: str, warning: bool = False) -> None:
        self.line = line
        self.message = message
        self.warning = warning

    def format(self, path: str) -> str:
        where = f"{path}:{self.line}:" if self.line is not None else f"{path}:"
        return f"{where} {'warning: ' if self.warning else ''}{self.message}"


class Entry:
    """A key's value and the line that set it (equal when both are)."""

    __slots__ = ("value", "line")

    def __init__(self, value: str, line: int) -> None:
        self.value = value
        self.line = line

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Entry) and (self.value, self.line) == (other.value, other.line)


class ParsedFile:
    """What NFD takes from one file: ``labels`` (local.label) and raw ``features``
    (local.feature), before the worker's label validation, and the problems found."""

    __slots__ = ("labels", "features", "problems")

    def __init__(self) -> None:
        self.labels: Dict[str, Entry] = {}
        self.features: Dict[str, Entry] = {}
        self.problems: List[Problem] = []


class _Directives:
    """NFD's parsingOpts: the expiry time and the one-line skip flags."""

    __slots__ = ("expiry", "skip_label", "skip_feature")

    def __init__(self, expiry: datetime) -> None:
        self.expiry = expiry
        self.skip_label = False
        self.skip_feature = False


def _directive(line: str, lineno: int, state: _Directives, now: datetime) -> Optional[Problem]:
    """Apply one ``# +`` directive as NFD's parseDirectives does; report what it logs."""
    key, eq, value = line[len(DIRECTIVE):].partition("=")
    if key == "expiry-time":
        if not eq:
            return Problem(lineno, "malformed directive: '# +expiry-time' needs '=<RFC 3339 time>'")
        text = go_trimmed(value)
        try:
            state.expiry = parse_rfc3339(text)
        except ValueError as error:
            return Problem(lineno, f"malformed expiry time {text!r}: {error}; NFD ignores the directive")
        if state.expiry < now:
            return Problem(lineno, f"expiry time {text} has passed: NFD ignores the lines after it", warning=True)
        return None
    if key == "no-label":
        state.skip_label = True
    elif key == "no-feature":
        state.skip_feature = True
    else:
        return Problem(lineno, f"unknown directive {key!r}: NFD logs and ignores it (known: expiry-time, no-label, no-feature)")
    return None


def parse(content: bytes, now: datetime) -> ParsedFile:
    """NFD's view of one features file, with every problem found on the way."""
    result = ParsedFile()
    state = _Directives(expiry=now)
    first_line: Dict[str, int] = {}
    for lineno, raw in enumerate(content.split(b"\n"), start=1):
        line = go_trimmed(raw.decode("utf-8", errors="surrogateescape"))
        if not line:
            continue
        if line.startswith("#"):
            if line.startswith(DIRECTIVE):
                problem = _directive(line, lineno, state, now)
                if problem:
                    result.problems.append(problem)
            continue
        if state.expiry < now:
            continue
        key, eq, value = line.partition("=")
        if not eq:
            value = "true"
        if key in first_line:
            result.problems.append(
                Problem(lineno, f"duplicate key {key!r} (also on line {first_line[key]}): only the last line counts")
            )
        first_line.setdefault(key, lineno)
        for skip, target in ((state.skip_feature, result.features), (state.skip_label, result.labels)):
            if skip:
                target.pop(key, None)
            else:
                target[key] = Entry(value, lineno)
        if not state.skip_label:
            found = label_line_problem(key, value)
            if found:
                result.problems.append(Problem(lineno, *found))
        state.skip_label = state.skip_feature = False
    return result
