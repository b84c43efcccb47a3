"""Every document and section the manifests and docs point a reader to exists.

Three kinds of reference are checked: Markdown links (``[text](path#anchor)``,
the anchor as GitHub makes it from a heading), plain mentions of a document
(``docs/deployment.md``), and sections named in quotes after one
(``docs/deployment.md, "features.d"``) or in the same document (``"NFD's
fsnotify watch" below``). A renamed heading or moved file fails here instead
of leaving a comment pointing nowhere.
"""

import re
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import pytest

from tests.conftest import ROOT

SOURCES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "manifests").rglob("*.yaml")])
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_MENTION = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w-]+\.md)(?:,? (?:section )?\(?\"([^\"]+)\"\)?)?")
_SAME_FILE = re.compile(r"\"([^\"]+)\" (?:below|above)")
_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def headings(path: Path) -> List[str]:
    """Heading texts of a Markdown file, outside fenced code blocks."""
    found, fenced = [], False
    for line in path.read_text().splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            match = _HEADING.match(line)
            if match:
                found.append(match.group(2))
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation but ``-`` and ``_`` dropped, spaces to ``-``."""
    return re.sub(r"[^\w\- ]", "", heading.replace("`", "").lower()).replace(" ", "-")


def anchors(path: Path) -> Set[str]:
    """Every anchor GitHub gives the file's headings (repeats get -1, -2, ...)."""
    seen: Dict[str, int] = {}
    out = set()
    for heading in headings(path):
        base = slug(heading)
        count = seen.get(base, 0)
        out.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return out


def resolve(source: Path, name: str) -> Path:
    """A mentioned document: a path with a directory (``docs/x.md``) or ``README.md`` from the
    repository root; a bare ``x.md`` beside the mentioning document, or in docs/ for a manifest."""
    if "/" in name or name == "README.md":
        return ROOT / name
    return (source.parent if source.suffix == ".md" else ROOT / "docs") / name


def references(source: Path) -> Iterator[Tuple[int, Path, str, str]]:
    """(line, target file, kind, anchor or section title) for each reference in ``source``."""
    fenced = False
    for number, line in enumerate(source.read_text().splitlines(), 1):
        if source.suffix == ".md" and _FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        linked = set()
        if source.suffix == ".md":
            for match in _LINK.finditer(line):
                target = match.group(1)
                if re.match(r"[a-z]+:", target):
                    continue
                path, _, anchor = target.partition("#")
                linked.add(path)
                yield number, (source.parent / path).resolve() if path else source, "anchor", anchor
            for match in _SAME_FILE.finditer(line):
                yield number, source, "section", match.group(1)
        for match in _MENTION.finditer(line):
            name, section = match.groups()
            if name in linked and section is None:
                continue
            yield number, resolve(source, name), "section", section or ""


CASES = [(source, *ref) for source in SOURCES for ref in references(source)]


def test_references_are_found():
    """The patterns match what the files really say (a broken pattern would check nothing)."""
    kinds = {(source.suffix, kind, bool(text)) for source, _, _, kind, text in CASES}
    assert {(".yaml", "section", True), (".md", "anchor", True), (".md", "section", True)} <= kinds


@pytest.mark.parametrize(
    "source,line,target,kind,text", CASES,
    ids=[f"{source.relative_to(ROOT)}:{line}" for source, line, *_ in CASES],
)
def test_referenced_document_and_section_exist(source, line, target, kind, text):
    where = f"{source.relative_to(ROOT)}:{line}"
    assert target.is_file(), f"{where}: {target} does not exist"
    if kind == "anchor" and text:
        assert text in anchors(target), f"{where}: no heading of {target.name} has anchor #{text}"
    elif kind == "section" and text:
        assert text in headings(target), f"{where}: {target.name} has no section {text!r}"
