"""The features model: what the sources produce, how it is validated and rendered.

The rendering follows NFD's local source (its format and rules are in
``nfdfile``): one ``name=value`` per line, ``#`` comments, ``# +no-label``
before a raw feature, ``# +expiry-time=`` applying to every line after it. The
file is deterministic (sorted, no timestamps unless an expiry is asked for) so
that the same node always yields the same bytes and NFD sees no churn.
"""

from __future__ import annotations

from datetime import datetime
from typing import Callable, Collection, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

from nfd_hooks import __version__
from nfd_hooks.errors import OutputError
from nfd_hooks.nfdfile import EXPIRY, MAX_FILE_SIZE, NO_LABEL, format_time, label_problem, raw_feature_problem

# The files after the first are --name, this, and 8 hex digits of their lines' SHA-256.
PART_INFIX = ".part-"


class Feature(NamedTuple):
    """One line of the features file.

    ``label`` False makes it a raw feature (``local.feature`` in NodeFeatureRules)
    that NFD does not turn into a node label and does not validate.

    The immutable records on the start path (features, devices, options) are
    NamedTuples, not frozen dataclasses: they compare, sort and hash the same
    way, and Python builds one in a tenth of the time a frozen, ordered
    dataclass takes at import (about 0.1 ms against 1 ms each), which the
    start-up budget of the hook counts (docs/performance.md).
    """

    name: str
    value: str
    label: bool = True


class Collision(NamedTuple):
    """Two sources gave one name different features; the first one listed is kept."""

    kept_source: str
    kept: Feature
    dropped_source: str
    dropped: Feature


class Part(NamedTuple):
    """One features file of the output: the file ``--name`` plus ``suffix`` ("" for
    the main file), holding ``features`` in the order they are written."""

    suffix: str
    features: Tuple[Feature, ...]


def merge(sources: Iterable[Tuple[str, Iterable[Feature]]]) -> Tuple[List[Feature], List[Collision]]:
    """Deduplicate and sort the features of ``(source name, features)`` pairs, listed
    by precedence.

    Labels are ``prefix/name`` with one ``/`` and raw features have two (see the
    sources), so only labels can meet, when a ``--prefix`` equals another
    source's or a compatible string cleans to another source's name. Then the
    first one is kept and the other dropped (returned, for a notice): one
    entry is lost, never the file.
    """
    by_name: Dict[str, Tuple[str, Feature]] = {}
    collisions = []
    for source, features in sources:
        for feature in features:
            seen = by_name.setdefault(feature.name, (source, feature))
            if seen[1] != feature:
                collisions.append(Collision(seen[0], seen[1], source, feature))
    ordered = sorted((feature for _, feature in by_name.values()), key=lambda f: (not f.label, f.name))
    return ordered, collisions


def validate(features: Iterable[Feature]) -> None:
    """Raise OutputError on the first feature NFD would drop or misread."""
    for feature in features:
        check = label_problem if feature.label else raw_feature_problem
        problem = check(feature.name, feature.value)
        if problem:
            raise OutputError(problem)


def _header(number: int, total: int) -> str:
    head = f"# Written by nfd-hooks {__version__}; rewritten at every run, do not edit."
    return head if total == 1 else f"{head} File {number} of {total}."


def _line(feature: Feature) -> str:
    text = f"{feature.name}={feature.value}\n"
    return text if feature.label else f"{NO_LABEL}\n{text}"


def _room() -> int:
    """Bytes of feature lines one file holds: NFD's limit less the longest header
    and an expiry line, kept free whether or not one is asked for, so that
    ``--expires-in`` never changes what is left out or where files split."""
    return MAX_FILE_SIZE - len(_header(9999, 9999)) - 1 - len(f"{EXPIRY}2000-01-01T00:00:00Z\n")


def layout(features: Sequence[Feature], expendable: Collection[str] = ()) -> Tuple[List[Part], List[str]]:
    """Fit ``features`` (merged, sorted) into files NFD reads, and say what gave way.

    NFD skips a file over 64 KiB whole, so nothing a node presents may make one:
    a raw feature whose line alone is too long is left out; if the rest is too
    long for one file, the raw features give way, then the ``expendable``
    labels (USB labels with serials); if the labels alone are still too long,
    they are split over several files, each under the limit (NFD reads them
    all). Several files are the last resort: one file is replaced in one
    rename, several are not (see ``writer.write_files``).
    """
    room = _room()
    notices = []
    sizes = {}
    for feature in features:
        size = len(_line(feature).encode("utf-8"))
        if size > room:
            notices.append(
                f"left out raw feature {_shortened(feature.name)}: its line alone is {size} bytes, "
                f"more than one features file can hold ({MAX_FILE_SIZE})"
            )
        else:
            sizes[feature] = size
    kept = list(sizes)
    total = sum(sizes.values())
    giving_way: Sequence[Tuple[Callable[[Feature], bool], str]] = (
        (lambda f: not f.label, "raw features"),
        (lambda f: f.name in expendable, "USB labels with serials"),
    )
    for gives_way, what in giving_way:
        dropped = [f for f in kept if gives_way(f)] if total > room else []
        if dropped:
            kept = [f for f in kept if not gives_way(f)]
            notices.append(
                f"features would take {total} bytes, over NFD's {MAX_FILE_SIZE} per file: left out the {len(dropped)} {what}"
            )
            total = sum(sizes[f] for f in kept)
    if total <= room:
        return [Part("", tuple(kept))], notices
    groups: List[List[Feature]] = [[]]
    used = 0
    for feature in kept:
        if used + sizes[feature] > room:
            groups.append([])
            used = 0
        groups[-1].append(feature)
        used += sizes[feature]
    notices.append(f"labels take {total} bytes, over NFD's {MAX_FILE_SIZE} per file: written as {len(groups)} files")
    import hashlib  # lazy: only a split needs it, and it loads OpenSSL

    parts = [Part("", tuple(groups[0]))]
    for group in groups[1:]:
        digest = hashlib.sha256("".join(_line(f) for f in group).encode("utf-8")).hexdigest()[:8]
        parts.append(Part(f"{PART_INFIX}{digest}", tuple(group)))
    return parts, notices


def _shortened(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def render_part(part: Part, number: int, total: int, expires: Optional[datetime] = None) -> bytes:
    """One file: header, optional expiry (it applies to the lines after it, so
    every file has its own), labels, then raw features."""
    validate(part.features)
    lines = [_header(number, total)]
    if expires is not None:
        lines.append(EXPIRY + format_time(expires))
    content = "\n".join(lines) + "\n" + "".join(_line(f) for f in part.features)
    return content.encode("utf-8")


def render_files(parts: Sequence[Part], expires: Optional[datetime] = None) -> List[Tuple[str, bytes]]:
    """``(suffix, content)`` of every file of ``parts``, the main file first."""
    return [(part.suffix, render_part(part, n, len(parts), expires)) for n, part in enumerate(parts, 1)]
