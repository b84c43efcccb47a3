"""DTBs that are mutated, truncated, re-headed, random or generated never crash or hang."""

import struct
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from nfd_hooks import api
from nfd_hooks.errors import InputError, NfdHooksError
from nfd_hooks.sources.devicetree.blob import MAX_BLOB_SIZE, parse_blob
from tests.conftest import DTB_DIR, require_tool
from tests.fdt_expand import expand
from tests.reliability import fdt_build
from tests.reliability.fdt_build import HEADER_FIELDS, Node, build
from tests.reliability.invariants import check_scan, count, scaled, scratch_dir
from tests.reliability.strategies import trees

BLOBS = {path.stem: path.read_bytes() for path in sorted(DTB_DIR.glob("*.dtb"))}
SCRATCH = scratch_dir()
U32_EDGES = [0, 1, 2, 3, 4, 9, 16, 17, 40, 0x7FFFFFFF, 0x80000000, 0xFFFFFFF0, 0xFFFFFFFC, 0xFFFFFFFF]

fixture_blobs = st.sampled_from(sorted(BLOBS)).map(lambda name: bytearray(BLOBS[name]))


def u32_for(blob: bytes) -> st.SearchStrategy:
    """Interesting 32-bit values for ``blob``: edges, its own sizes and offsets, anything."""
    near = [len(blob) + d for d in (-8, -4, -1, 0, 1, 4)] + list(fdt_build.header(blob).values())
    return st.one_of(st.sampled_from(U32_EDGES + [v & 0xFFFFFFFF for v in near]), st.integers(0, 2**32 - 1))


def scan_blob(data: bytes, test: str):
    count(test)
    path = SCRATCH / f"{test}.dtb"
    path.write_bytes(bytes(data))
    content = check_scan(api.Options(devicetree=path, use_usb=False))
    event("read" if content is not None else "refused")
    return content


@scaled(2)
@given(fixture_blobs, st.data())
def test_truncated(blob, data):
    cut = data.draw(st.integers(0, len(blob)))
    scan_blob(blob[:cut], "dtb-truncated")


@scaled(2)
@given(fixture_blobs, st.data())
def test_byte_mutations(blob, data):
    for _ in range(data.draw(st.integers(1, 4))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    scan_blob(blob, "dtb-bytes")


@scaled(2)
@given(fixture_blobs, st.data())
def test_header_fields(blob, data):
    """Overwrite header fields (never the magic) with edges like 0xFFFFFFF0 or off-by-ones."""
    for _ in range(data.draw(st.integers(1, 3))):
        index = data.draw(st.integers(1, len(HEADER_FIELDS) - 1))
        struct.pack_into(">I", blob, 4 * index, data.draw(u32_for(blob)))
    scan_blob(blob, "dtb-header")


@scaled(2)
@given(fixture_blobs, st.data())
def test_structure_words(blob, data):
    """Overwrite aligned words of the structure block: tokens, property lengths, name offsets."""
    head = fdt_build.header(blob)
    start, words = head["off_dt_struct"], head["size_dt_struct"] // 4
    for _ in range(data.draw(st.integers(1, 4))):
        word = data.draw(st.integers(0, words - 1))
        struct.pack_into(">I", blob, start + 4 * word, data.draw(u32_for(blob)))
    scan_blob(blob, "dtb-words")


@scaled(2)
@given(st.binary(max_size=2048), st.booleans())
def test_random_bytes_after_the_magic(tail, keep_header):
    """Random data behind the magic, with the fixtures' header or none."""
    head = BLOBS["hostile"][:40] if keep_header else struct.pack(">I", fdt_build.MAGIC)
    scan_blob(head + tail, "dtb-random")


@scaled(2)
@given(trees(), st.integers(0, 3))
def test_generated_tree_blob_and_expanded_tree_agree(root, nops):
    """Any valid tree: valid labels, and the same bytes from its DTB and its live layout."""
    blob = build(root, nops)
    from_blob = scan_blob(blob, "dtb-generated")
    assert from_blob is not None, "a valid blob was refused"
    with tempfile.TemporaryDirectory(dir=SCRATCH) as scratch:
        tree = expand(blob, Path(scratch) / "base")
        from_tree = check_scan(api.Options(devicetree=tree, use_usb=False))
    assert from_tree == from_blob


def test_the_builder_writes_blobs_dtc_reads():
    """The generator's blobs are real DTBs by an independent reader's standard."""
    import subprocess

    fdtget = require_tool("fdtget")
    root = Node("", {"compatible": b"acme,board\0"}, [Node("cpu@0", {"compatible": b"arm,cortex-a53\0"})])
    path = SCRATCH / "built.dtb"
    path.write_bytes(build(root))
    done = subprocess.run([fdtget, str(path), "/cpu@0", "compatible"], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "arm,cortex-a53"


# Worst cases of the old pyfdt-based reader (70 s and 280 s for blobs under
# 160 KB), at 256 KB: above any real DTB (the largest in Debian is 153 KB).

def _worst_cases():
    size = 256 * 1024
    names = {f"p{i}": b"" for i in range(size // 20)}
    yield "nop-flood", build(Node("", {"compatible": b"a,b\0"}), nops=size // 4)
    yield "many-properties", build(Node("", names))
    yield "many-nodes", build(Node("", {}, [Node(f"cpu@{i}", {"compatible": b"arm,a\0"}) for i in range(size // 40)]))
    far = bytearray(build(Node("", {"compatible": b"a,b\0", "model": b"m\0"} | names)))
    strings = fdt_build.header(far)["off_dt_strings"]
    far[strings:] = b"x" * (len(far) - strings)  # every property name runs to the end
    yield "unterminated-names", bytes(far)
    yield "deep", build(_chain(10_000))
    yield "huge-property", build(Node("", {"compatible": b"a" * size + b"\0"}))


def _chain(depth: int) -> Node:
    root = node = Node("")
    for _ in range(depth):
        child = Node("cpu@0", {"compatible": b"arm,a\0"})
        node.children.append(child)
        node = child
    return root


@pytest.mark.parametrize("name,blob", list(_worst_cases()), ids=lambda v: v if isinstance(v, str) else "")
def test_worst_case_blobs_are_scanned_quickly(name, blob):
    path = SCRATCH / f"{name}.dtb"
    path.write_bytes(blob)
    options = api.Options(devicetree=path, use_usb=False)
    started = time.perf_counter()
    try:
        api.render_scan(api.scan(options), options)
    except NfdHooksError:
        pass
    assert time.perf_counter() - started < 2.0


def test_blobs_over_the_arm64_limit_are_refused_before_parsing():
    blob = build(Node("", {"compatible": b"a" * MAX_BLOB_SIZE + b"\0"}))
    with pytest.raises(InputError, match="too large"):
        parse_blob(blob, "big.dtb")
