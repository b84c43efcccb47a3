"""``--diff``: what a write adds, removes or changes in the features NFD reads from our files.

Both sides are read as NFD's local source reads a file (``check.parse``: its
directives, its expiry, ``# +no-label``), so the comparison is of what the
worker would see, not of bytes: a refreshed expiry alone is no change, an
expired file has nothing left to compare. The installed side is the set of
features in every file ``our_files`` names, merged in order as NFD merges a
directory (a later file overrides an earlier key).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Dict, Iterable, List, NamedTuple, Optional, Tuple

from nfd_hooks.errors import InputError
from nfd_hooks.nfdfile import MAX_FILE_SIZE, parse
from nfd_hooks.safe_read import read_regular_file

# What NFD reads for one key: its value, and whether it is a label (else a raw feature only).
Seen = Tuple[str, bool]


class Change(NamedTuple):
    """One key whose value or kind differs; ``old``/``new`` None when absent on that side."""

    name: str
    old: Optional[Seen]
    new: Optional[Seen]

    def format(self) -> str:
        """``+ name=value``, ``- name=value`` or ``~ name=old -> new``; raw features marked."""
        if self.old is None:
            return f"+ {self.name}={_shown(self.new)}"
        if self.new is None:
            return f"- {self.name}={_shown(self.old)}"
        return f"~ {self.name}={_shown(self.old)} -> {_shown(self.new)}"


def _shown(seen: Optional[Seen]) -> str:
    value, label = seen or ("", True)
    return value if label else f"{value} (raw)"


def our_files(directory: Path, name: str) -> List[Path]:
    """The features files this tool keeps in ``directory`` for ``name``, in NFD's
    order: the main file, then those of an output split over several files."""
    from nfd_hooks.writer import part_files

    return [directory / name] + [directory / part for part in part_files(directory, name)]


def features_of(content: bytes, now: datetime) -> Dict[str, Seen]:
    """What NFD reads from one file's ``content`` at ``now``, key by key."""
    parsed = parse(content, now)
    seen = {key: (entry.value, False) for key, entry in parsed.features.items()}
    seen.update((key, (entry.value, True)) for key, entry in parsed.labels.items())
    return seen


def features_of_files(contents: Iterable[bytes], now: datetime) -> Dict[str, Seen]:
    """What NFD reads from several files together, merged in order as it merges a
    directory: a later file's key replaces an earlier one's."""
    seen: Dict[str, Seen] = {}
    for content in contents:
        seen.update(features_of(content, now))
    return seen


def installed(directory: Path, name: str, now: datetime) -> Tuple[Dict[str, Seen], List[Path]]:
    """The features of our files in ``directory``, and those of them that exist.

    A file NFD skips (larger than it reads) contributes nothing, as for NFD.
    Anything but a regular file there (a directory, a FIFO: never waited on)
    is an InputError.
    """
    contents = []
    found = []
    for path in our_files(directory, name):
        try:
            content = read_regular_file(str(path), MAX_FILE_SIZE + 1)
        except FileNotFoundError:
            continue
        except OSError as error:
            raise InputError(f"cannot read {path} to compare with: {error.strerror or error}") from None
        found.append(path)
        if len(content) <= MAX_FILE_SIZE:
            contents.append(content)
    return features_of_files(contents, now), found


def changes(old: Dict[str, Seen], new: Dict[str, Seen]) -> List[Change]:
    """Every key added, removed or changed, by name."""
    return [
        Change(key, old.get(key), new.get(key))
        for key in sorted(old.keys() | new.keys())
        if old.get(key) != new.get(key)
    ]


def summary(directory: Path, name: str, found: List[Path], done: List[Change]) -> str:
    """One line for stderr: against what, and how much changed."""
    added = sum(1 for c in done if c.old is None)
    removed = sum(1 for c in done if c.new is None)
    tally = f"{added} added, {removed} removed, {len(done) - added - removed} changed"
    if not found:
        return f"no features file at {our_files(directory, name)[0]} yet: {tally}"
    return f"against {', '.join(str(path) for path in found)}: {tally}"
