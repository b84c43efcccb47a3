"""``nfd-hooks check``: report what NFD's local source would drop, skip or misread.

Each file is read as NFD reads it (``nfdfile.parse``, which finds the problems
of single lines). Problems are errors (NFD would drop, skip or misread
something) or warnings (NFD accepts it but it is fragile): a name without a
prefix, which nfd-master prefixes with ``feature.node.kubernetes.io/`` (with
its DisableAutoPrefix feature gate on it keeps it unprefixed); an expiry time
that has passed; a hidden file name. A directory is checked as NFD reads it (getFeaturesFromFiles):
its files in name order, each later file overriding an earlier one's key, and
nfd-master ignoring an unprefixed label whose prefixed name is also given
(addNsToMapKeys): both are reported as warnings on the line that loses or wins.
"""

import os
import stat
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from nfd_hooks.nfdfile import MAX_FILE_SIZE, NFD_PREFIX, Entry, ParsedFile, Problem, go_trimmed, parse
from nfd_hooks.safe_read import NotARegularFile, open_path
from nfd_hooks.sources.devicetree.blob import looks_like_blob


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


def check_file(path: Path, now: datetime, result: CheckResult, named: bool = False) -> Optional[ParsedFile]:
    """Check one file NFD would read (the caller has established it is regular);
    what NFD takes from it, None when NFD skips it or it is no features file
    (``named``: the user named it, rather than a directory holding it)."""
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
    foreign = not_a_features_file(content)
    if foreign:
        if named:  # the user named a file that is not one: said once, as an unusable input
            result.unreadable.append(f"{path}: not a features file: {foreign}")
        else:  # in a features directory NFD reads it all the same
            message = f"not a features file: {foreign}; NFD reads it all the same, and drops what it cannot use"
            result.problems.append((str(path), Problem(None, message)))
        return None
    parsed = parse(content, now)
    result.problems.extend((str(path), problem) for problem in parsed.problems)
    return parsed


# A file is told from a features file with a few bad lines by the shape of its
# lines: NFD splits each at its first '=', and a name with whitespace in it is
# prose, a table or a command line, never a feature anyone meant. When most of
# a file's lines (and at least this many) are so, it is some other text.
MIN_FOREIGN_LINES = 5


def not_a_features_file(content: bytes) -> Optional[str]:
    """What ``content`` is instead of a features file, or None when it is one
    (good or bad). Binary (a NUL byte: a DTB, an image, an archive), or text
    most of whose feature lines have a name NFD cannot mean."""
    if b"\0" in content:
        if looks_like_blob(content):
            return "it is a devicetree blob ('nfd-hooks show --devicetree FILE' reads it)"
        return "it is binary (it holds NUL bytes)"
    lines = [
        (number, go_trimmed(raw.decode("utf-8", "surrogateescape")))
        for number, raw in enumerate(content.split(b"\n"), start=1)
    ]
    features = [(number, line) for number, line in lines if line and not line.startswith("#")]
    foreign = [(number, line) for number, line in features if any(c.isspace() for c in line.partition("=")[0])]
    if len(foreign) < MIN_FOREIGN_LINES or 2 * len(foreign) <= len(features):
        return None
    number, line = foreign[0]
    shown = line if len(line) <= 40 else line[:39] + "..."
    return f"{len(foreign)} of its {len(features)} non-comment lines have spaces before any '=' (line {number}: {shown!r})"


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
        full = labels.get(f"{NFD_PREFIX}/{key}") if "/" not in key else None
        if full is not None:
            message = f"label {key!r} is ignored by nfd-master: {NFD_PREFIX}/{key} is also given ({full[0]}:{full[1].line})"
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
            parsed = check_file(path, now, result, named=True)
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
