"""Measured figures in README.md and docs/ agree with docs/figures.toml, their one source.

A figure is cited as ``<!--fig KEY-->TEXT<!--/fig-->`` (``<!--fig KEY MB-->`` for a size in
bytes shown in MB); TEXT must be what the data file gives for KEY. docs/figures.md describes the
form; ``NFD_HOOKS_UPDATE_FIGURES=1`` rewrites every TEXT from the data file instead of comparing.
"""

import datetime
import os
import re
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest

from tests.conftest import ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover (3.9, 3.10)
    import tomli as tomllib

DATA = ROOT / "docs" / "figures.toml"
DOCS = sorted([ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").glob("*.md")])
CITE = re.compile(r"<!--fig ([a-z0-9_.-]+)(?: ([A-Za-z]+))?-->(.*?)<!--/fig-->", re.DOTALL)
# A measurement's own fields; every other field of its table is a figure.
FIELDS = {"command", "source", "date", "on", "note"}
FENCE = re.compile(r"^\s*(```|~~~).*?^\s*\1", re.MULTILINE | re.DOTALL)


def measurements() -> Dict[str, dict]:
    return tomllib.loads(DATA.read_text())


def figures() -> Dict[str, object]:
    """KEY -> value, for every field of every measurement (``image-size.amd64``, ``image-size.date``)."""
    return {f"{name}.{field}": value for name, table in measurements().items() for field, value in table.items()}


def shown(value: object, form: str) -> str:
    """``value`` as the docs show it in form ``form`` ("" for as it is)."""
    if form == "MB":
        assert isinstance(value, int), f"MB needs a size in bytes, not {value!r}"
        return f"{round(value / 1e6)} MB"
    if form == "plain":
        assert isinstance(value, int), f"plain needs an integer, not {value!r}"
        return str(value)
    assert form == "", f"unknown form {form!r} (MB, plain)"
    if isinstance(value, bool) or isinstance(value, float):
        raise AssertionError(f"write {value!r} as a string, exactly as the docs show it (TOML drops trailing zeros)")
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


def citations(text: str) -> Iterator[Tuple[int, str, str, str]]:
    """(line, key, form, text shown) for each citation in ``text``."""
    for match in CITE.finditer(text):
        yield text.count("\n", 0, match.start()) + 1, match.group(1), match.group(2) or "", match.group(3)


def test_every_measurement_says_when_and_how():
    for name, table in measurements().items():
        assert isinstance(table.get("date"), datetime.date), f"{name}: no date (a TOML date, 2026-12-04)"
        assert table.get("command") or table.get("source"), f"{name}: no command (or, measured outside, a source)"
        command = table.get("command")
        if command:
            # The command is this repository's: it names a script, test or file of the checkout.
            paths = re.findall(r"(?<![\w/.-])((?:scripts|bench|tests|fixtures|manifests|docs)/[\w./-]*\w)", command)
            assert paths, f"{name}: {command!r} names no script, test or file of this repository"
            for path in paths:
                assert (ROOT / path).exists(), f"{name}: {command!r}: no {path} in this repository"


def test_every_citation_shows_its_figure():
    known = figures()
    fresh: Dict[Path, str] = {}
    wrong: List[str] = []
    for doc in DOCS:
        text = doc.read_text()
        for line, key, form, text_shown in citations(text):
            assert key in known, f"{doc.name}:{line}: no figure {key} in docs/figures.toml"
            if text_shown != shown(known[key], form):
                wrong.append(f"{doc.relative_to(ROOT)}:{line}: {key} shows {text_shown!r}, "
                             f"docs/figures.toml gives {shown(known[key], form)!r}")
        fresh[doc] = CITE.sub(lambda m: f"<!--fig {m.group(1)}{' ' + m.group(2) if m.group(2) else ''}-->"
                              f"{shown(known[m.group(1)], m.group(2) or '')}<!--/fig-->", text)
    if os.environ.get("NFD_HOOKS_UPDATE_FIGURES") == "1":
        for doc, text in fresh.items():
            doc.write_text(text)
        return
    assert not wrong, "figures disagree with docs/figures.toml (NFD_HOOKS_UPDATE_FIGURES=1 rewrites them):\n" + "\n".join(wrong)


def test_every_figure_is_cited():
    cited = {key for doc in DOCS for _, key, _, _ in citations(doc.read_text())}
    unused = {key for key in figures() if key.rsplit(".", 1)[1] not in FIELDS} - cited
    assert not unused, f"figures no document cites (remove them or cite them): {sorted(unused)}"
    uncited = {name for name in measurements() if not any(key.startswith(name + ".") for key in cited)}
    assert not uncited, f"measurements no document cites: {sorted(uncited)}"


def prose(text: str) -> str:
    """``text`` without citations and fenced blocks (quoted command output is its own record)."""
    blank = lambda match: re.sub(r"[^\n]", " ", match.group(0))  # noqa: E731 (keeps line numbers)
    return FENCE.sub(blank, CITE.sub(blank, text))


def test_no_figure_is_copied_without_its_citation():
    """A measured number of four digits or more written out by hand next to a citation of it is the
    start of two figures that disagree: the next measurement updates one of them."""
    numbers = {value for key, value in figures().items() if isinstance(value, int) and not isinstance(value, bool)
               and value >= 1000}
    found = []
    for doc in DOCS:
        text = prose(doc.read_text())
        for value in numbers:
            for form in (f"{value:,}", str(value)):
                for match in re.finditer(rf"(?<![\d,.]){re.escape(form)}(?![\d,]|\.\d)", text):
                    line = text.count("\n", 0, match.start()) + 1
                    found.append(f"{doc.relative_to(ROOT)} (without citations and code blocks) line {line}: {form}")
    assert not found, "cite these from docs/figures.toml (<!--fig KEY-->...<!--/fig-->):\n" + "\n".join(found)


@pytest.mark.parametrize("text,expected", [
    ("a <!--fig x.y-->1<!--/fig--> b\nc <!--fig x.z MB-->2 MB<!--/fig-->", [(1, "x.y", "", "1"), (2, "x.z", "MB", "2 MB")]),
])
def test_citations_are_found(text, expected):
    assert list(citations(text)) == expected


def test_forms():
    assert shown(194898727, "") == "194,898,727"
    assert shown(194898727, "MB") == "195 MB"
    assert shown(16551, "plain") == "16551"
    assert shown("1.40", "") == "1.40"
    assert shown(datetime.date(2026, 12, 4), "") == "2026-12-04"
    with pytest.raises(AssertionError):
        shown(1.4, "")
