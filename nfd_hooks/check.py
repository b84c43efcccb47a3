"""``nfd-hooks check``: read features files exactly as NFD's local source does.

``parse`` mirrors ``parseFeatureFile`` in NFD's source/local/local.go (v0.19):
every line is trimmed (Go's ``strings.TrimSpace``); empty lines are skipped;
``#`` starts a comment and ``# +`` a directive; a feature line is split at its
first ``=`` (``name`` alone means ``true``, ``name=`` an empty value, nothing is
trimmed around ``=``); ``# +no-label`` / ``# +no-feature`` apply to the next
feature line only; ``# +expiry-time=`` applies to every line after it, and NFD
silently drops lines after an expiry time that has passed. A line's key is
validated only when it becomes a label (the worker drops invalid labels one by
one); raw features are not validated, as in NFD.

Problems are errors (NFD would drop, skip or misread something) or warnings
(NFD accepts it but it is fragile): a name without a prefix, which nfd-master
prefixes with ``feature.node.kubernetes.io/`` (with its DisableAutoPrefix
feature gate on it keeps it unprefixed); an expiry time that has passed; a
hidden file name. A directory is checked as NFD reads it (getFeaturesFromFiles):
its files in name order, each later file overriding an earlier one's key, and
nfd-master ignoring an unprefixed label whose prefixed name is also given
(addNsToMapKeys): both are reported as warnings on the line that loses or wins.
"""

import os
import re
import stat
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from nfd_hooks.features import MAX_FILE_SIZE, label_problem
from nfd_hooks.safe_read import NotARegularFile, open_path

DIRECTIVE_PREFIX = "# +"
AUTO_PREFIX = "feature.node.kubernetes.io"

# Go's unicode.IsSpace, which strings.TrimSpace uses; Python's str.strip() also
# strips U+001C..U+001F, which Go keeps.
_GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

# What Go's time.Parse(time.RFC3339, ...) accepts: its fast path, then its
# general parser, which also takes a one-digit hour and a fraction after ',' or '.'.
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{1,2}):([0-9]{2}):([0-9]{2})"
    r"(?:[.,]([0-9]+))?(?:Z|([+-])([0-9]{2}):([0-9]{2}))\Z"
)
_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@dataclass(frozen=True)
class Problem:
    """One finding; ``line`` None means the whole file."""

    line: Optional[int]
    message: str
    warning: bool = False

    def format(self, path: str) -> str:
        where = f"{path}:{self.line}:" if self.line is not None else f"{path}:"
        return f"{where} {'warning: ' if self.warning else ''}{self.message}"


@dataclass(frozen=True)
class Entry:
    """A key's value and the line that set it."""

    value: str
    line: int


@dataclass
class ParsedFile:
    """What NFD takes from one file: ``labels`` (local.label) and raw ``features``
    (local.feature), before the worker's label validation."""

    labels: Dict[str, Entry] = field(default_factory=dict)
    features: Dict[str, Entry] = field(default_factory=dict)
    problems: List[Problem] = field(default_factory=list)


@dataclass
class _Directives:
    """NFD's parsingOpts: the expiry time and the one-line skip flags."""

    expiry: datetime
    skip_label: bool = False
    skip_feature: bool = False


def parse_rfc3339(text: str) -> datetime:
    """Parse as Go's ``time.Parse(time.RFC3339, text)`` would; raise ValueError."""
    match = _RFC3339.match(text)
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


def _directive(line: str, lineno: int, state: _Directives, now: datetime) -> Optional[Problem]:
    """Apply one ``# +`` directive as NFD's parseDirectives does; report what it logs."""
    key, eq, value = line[len(DIRECTIVE_PREFIX):].partition("=")
    if key == "expiry-time":
        if not eq:
            return Problem(lineno, "malformed directive: '# +expiry-time' needs '=<RFC 3339 time>'")
        text = value.strip(_GO_SPACE)
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


def label_line_problem(key: str, value: str) -> Optional[Tuple[str, bool]]:
    """Why the worker or master would drop ``key=value`` as a label, as
    ``(message, is_warning)``; a missing prefix alone is a warning."""
    if "/" in key:
        problem = label_problem(key, value)
        return (problem, False) if problem else None
    problem = label_problem(f"{AUTO_PREFIX}/{key}", value)
    if problem:
        return problem, False
    return (
        f"label {key!r} has no prefix: nfd-master adds '{AUTO_PREFIX}/' (and keeps it "
        "unprefixed when its DisableAutoPrefix feature gate is on); write the full name",
        True,
    )


def parse(content: bytes, now: datetime) -> ParsedFile:
    """NFD's view of one features file, with every problem found on the way."""
    result = ParsedFile()
    state = _Directives(expiry=now)
    first_line: Dict[str, int] = {}
    for lineno, raw in enumerate(content.split(b"\n"), start=1):
        line = raw.decode("utf-8", errors="surrogateescape").strip(_GO_SPACE)
        if not line:
            continue
        if line.startswith("#"):
            if line.startswith(DIRECTIVE_PREFIX):
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


@dataclass
class CheckResult:
    """Findings per file, and the paths that could not be read at all."""

    problems: List[Tuple[str, Problem]] = field(default_factory=list)
    unreadable: List[str] = field(default_factory=list)

    def exit_code(self, strict: bool = False) -> int:
        """2 when a file could not be read, 1 on errors (or warnings when strict), else 0."""
        if self.unreadable:
            return 2
        if any(strict or not problem.warning for _, problem in self.problems):
            return 1
        return 0


def check_file(path: Path, now: datetime, result: CheckResult) -> Optional[ParsedFile]:
    """Check one file NFD would read (the caller has established it is regular);
    what NFD takes from it, None when NFD skips it."""
    if path.name.startswith("."):
        result.problems.append((str(path), Problem(None, "NFD skips files whose names start with '.'", warning=True)))
    try:
        # non-blocking, and checked again once open: the file may have been swapped for a FIFO meanwhile
        with os.fdopen(open_path(str(path), os.O_RDONLY | os.O_NONBLOCK), "rb") as stream:
            info = os.fstat(stream.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise NotARegularFile()
            size = info.st_size
            if size > MAX_FILE_SIZE:
                message = f"{size} bytes: NFD skips files over {MAX_FILE_SIZE} bytes whole"
                result.problems.append((str(path), Problem(None, message)))
                return None
            content = stream.read(MAX_FILE_SIZE + 1)
    except OSError as error:
        result.unreadable.append(f"{path}: cannot read: {error.strerror or error}")
        return None
    parsed = parse(content, now)
    result.problems.extend((str(path), problem) for problem in parsed.problems)
    return parsed


Origin = Tuple[str, Entry]  # the file and the line a merged key came from


def merge(files: List[Tuple[str, ParsedFile]], kind: str, result: CheckResult) -> Dict[str, Origin]:
    """``kind`` ("labels" or "features") of ``files`` merged in order as NFD's
    local source merges them: a later file's key replaces an earlier one's,
    which is reported on the line that wins (once for a line that is both)."""
    merged: Dict[str, Origin] = {}
    noun = "label" if kind == "labels" else "raw feature"
    for path, parsed in files:
        for key, entry in getattr(parsed, kind).items():
            earlier = merged.get(key)
            also_label = kind == "features" and parsed.labels.get(key) == entry  # reported as the label
            if earlier is not None and not also_label:
                message = (
                    f"{noun} {key!r}={entry.value!r} overrides {earlier[0]}:{earlier[1].line} "
                    f"({earlier[1].value!r}): NFD keeps this value (later file in name order)"
                )
                result.problems.append((path, Problem(entry.line, message, warning=True)))
            merged[key] = (path, entry)
    return merged


def shadowed_unprefixed(labels: Dict[str, Origin], result: CheckResult) -> None:
    """nfd-master's addNsToMapKeys drops ``name`` when ``feature.node.kubernetes.io/name`` is also given."""
    for key, (path, entry) in sorted(labels.items()):
        full = labels.get(f"{AUTO_PREFIX}/{key}") if "/" not in key else None
        if full is not None:
            message = f"label {key!r} is ignored by nfd-master: {AUTO_PREFIX}/{key} is also given ({full[0]}:{full[1].line})"
            result.problems.append((path, Problem(entry.line, message, warning=True)))


def resolved_labels(files: List[Tuple[str, ParsedFile]], result: CheckResult) -> Dict[str, str]:
    """The labels NFD publishes from these files (before nfd-master's auto-prefix), reporting overrides."""
    merge(files, "features", result)
    labels = merge(files, "labels", result)
    shadowed_unprefixed(labels, result)
    return {key: entry.value for key, (_, entry) in labels.items()}


def check_paths(paths: List[Path], now: Optional[datetime] = None) -> CheckResult:
    """Check files; a directory stands for the files NFD reads in it (not hidden,
    regular after following symlinks, subdirectories ignored)."""
    now = now or datetime.now(timezone.utc)
    result = CheckResult()
    for path in paths:
        mode = _mode(path, result)
        if mode is None:
            continue
        if stat.S_ISDIR(mode):
            resolved_labels(read_directory(path, now, result), result)
        elif stat.S_ISREG(mode):
            parsed = check_file(path, now, result)
            if parsed is not None:
                shadowed_unprefixed(merge([(str(path), parsed)], "labels", CheckResult()), result)
        else:
            result.unreadable.append(f"{path}: not a regular file (NFD reads only regular files)")
    return result


def read_directory(path: Path, now: datetime, result: CheckResult) -> List[Tuple[str, ParsedFile]]:
    """The files NFD reads in ``path``, in its order (os.ReadDir: by name, bytewise), checked."""
    try:
        names = sorted((entry for entry in os.listdir(path) if not entry.startswith(".")), key=os.fsencode)
    except OSError as error:
        result.unreadable.append(f"{path}: cannot list: {error.strerror or error}")
        return []
    read = []
    for name in names:
        inner = _mode(path / name, result)
        if inner is not None and stat.S_ISREG(inner):
            parsed = check_file(path / name, now, result)
            if parsed is not None:
                read.append((str(path / name), parsed))
    return read


def _mode(path: Path, result: CheckResult) -> Optional[int]:
    """``stat`` (following symlinks, as NFD does), or None after recording why not."""
    try:
        return path.stat().st_mode
    except OSError as error:
        result.unreadable.append(f"{path}: cannot read: {error.strerror or error}")
        return None
