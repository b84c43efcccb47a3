"""Deep nesting in every JSON and TOML input (issue 25): a bundle's manifest.json, a --catalog.

Python's json and tomllib recurse per level of nesting: 100,000 levels (200 KB)
raised RecursionError, a traceback, and killed a watcher re-reading its
catalog. The strategies nest arrays, objects, inline tables, dotted keys,
table headers and arrays of tables, at depths around the limit (32) and far
beyond it, in every place a document may hold them. Invariants: the document
loads, or fails with the one documented error (InputError, one line), which
says "nested deeper than" exactly when it is nested deeper than the limit;
never another exception.
"""

import json
import shutil
import tempfile
from pathlib import Path

from hypothesis import event, given
from hypothesis import strategies as st

from nfd_hooks import api
from nfd_hooks.documents import MAX_DEPTH
from nfd_hooks.errors import InputError
from nfd_hooks.sources.accelerators.catalog import load_catalog, parse_catalog
from tests.conftest import FIXTURES
from tests.reliability.invariants import check_error, count, scaled, scratch_dir

SCRATCH = scratch_dir()
SAMPLE = FIXTURES / "nodes" / "rpi4b-ncs2-webcam"
depths = st.one_of(st.integers(0, MAX_DEPTH + 3), st.sampled_from([100, 999, 1000, 5000, 100_000]))


def json_nest(depth: int, shape: str, leaf: str = "1") -> str:
    """A JSON value ``depth`` lists or objects deep (0: the leaf), built as text: no recursion."""
    opens = {"array": "[", "object": '{"k": ', "mixed": None}
    closes = {"array": "]", "object": "}"}
    if shape == "mixed":
        kinds = ["array" if n % 2 else "object" for n in range(depth)]
    else:
        kinds = [shape] * depth
    return "".join(opens[k] for k in kinds) + leaf + "".join(closes[k] for k in reversed(kinds))


def toml_nest(depth: int, shape: str) -> str:
    """A TOML document whose key ``deep`` is ``depth`` levels deep (below the top table)."""
    if shape == "array":
        return "deep = " + "[" * depth + "1" + "]" * depth + "\n"
    if shape == "inline-table":
        return "deep = " + "{a = " * depth + "1" + "}" * depth + "\n"
    if shape == "mixed":
        opens = "".join("[" if n % 2 else "{a = " for n in range(depth))
        return "deep = " + opens + "1" + "".join("]" if n % 2 else "}" for n in reversed(range(depth))) + "\n"
    keys = ".".join(["deep"] + ["a"] * max(0, depth - 1))
    if shape == "dotted":
        return f"{keys} = 1\n"
    if shape == "header":
        return f"[{keys}]\nx = 1\n"
    return f"[[{keys}]]\nx = 1\n"  # an array of tables


def check_document_error(error: InputError, depth: int) -> None:
    check_error(error)
    event("refused: too deep" if "nested deeper than" in str(error) else "refused: other")
    if "nested deeper than" in str(error):
        assert depth > MAX_DEPTH - 2, (depth, str(error))  # the JSON/TOML wrapper adds a level or two


@scaled(2)
@given(depths, st.sampled_from(["array", "object", "mixed"]), st.sampled_from(["extra", "files", "symlinks", "whole", "format"]))
def test_deep_manifests_are_one_error(depth, shape, where):
    count("deep-json")
    event(f"depth {'<=' if depth <= MAX_DEPTH else '>'} {MAX_DEPTH}")
    with tempfile.TemporaryDirectory(dir=SCRATCH) as scratch:
        bundle = Path(scratch) / "bundle"
        shutil.copytree(SAMPLE, bundle, symlinks=True)
        manifest = json.loads((bundle / "manifest.json").read_text())
        text = json.dumps(manifest)
        deep = json_nest(depth, shape)
        if where == "whole":
            text = deep
        else:
            key = {"extra": "extra", "files": "files", "symlinks": "symlinks", "format": "format"}[where]
            manifest.pop(key, None)
            text = json.dumps(manifest)[:-1] + f', "{key}": {deep}}}'
        (bundle / "manifest.json").write_text(text)
        try:
            options = api.replay_options(bundle, api.Options())
        except InputError as error:
            check_document_error(error, depth + (where != "whole"))
            assert not (where == "extra" and depth + 1 <= MAX_DEPTH), error  # an extra key is no harm
            return
        assert where == "extra" and depth + 1 <= MAX_DEPTH
        api.scan(options)


@scaled(2)
@given(depths, st.sampled_from(["array", "inline-table", "mixed", "dotted", "header", "array-of-tables"]),
       st.sampled_from(["top", "entry", "ready"]))
def test_deep_catalogs_are_one_error(depth, shape, where):
    count("deep-toml")
    event(f"depth {'<=' if depth <= MAX_DEPTH else '>'} {MAX_DEPTH}")
    nested = toml_nest(depth, shape)
    entry = '[accelerators.acme]\nname = "Acme"\nusb = ["0403:6001"]\n'
    if where == "top":
        text = nested + entry
    elif where == "entry":
        text = entry + nested.replace("deep", "accelerators.acme.deep", 1) if shape in ("header", "array-of-tables") \
            else entry + nested
    else:
        text = entry + "[accelerators.acme.ready]\n" + nested
    try:
        parse_catalog(text, "generated.toml")
    except InputError as error:
        check_document_error(error, depth + 2)
        return
    raise AssertionError("the catalog schema has no key 'deep': a catalog with one must be refused")


@scaled(25)
@given(depths, st.sampled_from(["array", "inline-table", "dotted"]))
def test_deep_catalog_files_through_load_catalog(depth, shape):
    """As --catalog and watch read them: from a file, every call."""
    count("deep-toml-file")
    path = SCRATCH / "deep-catalog.toml"
    path.write_text(toml_nest(depth, shape))
    for _ in range(2):  # watch reads it again at every rescan
        try:
            load_catalog([path])
        except InputError as error:
            check_document_error(error, depth + 1)
        else:
            raise AssertionError("an unknown top-level key must be refused")
