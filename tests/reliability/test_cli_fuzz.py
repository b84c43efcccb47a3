"""A sample of the fuzzed inputs through the real command, as a separate process.

The in-process tests cover the library; these catch what only the process
shows: a traceback on stderr, an exit code outside 0/1/2, a hang (subprocess
timeout), stdout encoding failures (a strict UTF-8 stdout, as under
LANG=en_US.UTF-8), and output differing from the library's bytes.
"""

import os
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List

from hypothesis import given
from hypothesis import strategies as st

from nfd_hooks import api
from nfd_hooks.errors import NfdHooksError
from tests.conftest import features_entries
from tests.reliability.invariants import count, scaled, scratch_dir
from tests.reliability.strategies import fs_trees
from tests.reliability.test_blob_fuzz import fixture_blobs
from tests.reliability.test_live_tree_fuzz import ADDITIVE, DAMAGING, _Faults, materialize
from tests.reliability.test_usb_fuzz import EDGE_NODE, _add_junk, _break, _devices, garbage, junk
from tests.reliability.test_usb_fuzz import _Faults as _UsbFaults

SCRATCH = scratch_dir()
ENV = dict(os.environ, PYTHONIOENCODING="utf-8:strict")
OLD = b"# previous run\nbeta.devicetree.org/old=1\n"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nfd_hooks", *args], capture_output=True, timeout=30, env=ENV
    )


def check_process(devicetree: Path, json_too: bool) -> None:
    check_command(["--devicetree", str(devicetree), "--no-usb"], api.Options(devicetree=devicetree, use_usb=False), json_too)


def check_command(source: List[str], options: api.Options, json_too: bool) -> None:
    """``show`` and ``write`` agree with the library and fail only with one clean line."""
    count("cli-process")
    try:
        expected = api.render_scan(api.scan(options), options)
        code = 0
    except NfdHooksError as error:
        expected, code = b"", error.exit_code
    shown = run("show", *source)
    stderr = shown.stderr.decode("utf-8", "replace")
    assert "Traceback" not in stderr, stderr
    assert (shown.returncode, shown.stdout) == (code, expected), stderr
    assert all(line.startswith("nfd-hooks: ") for line in stderr.splitlines()), stderr
    if code:
        assert len(stderr.splitlines()) == 1 and stderr.startswith("nfd-hooks: error: "), stderr
    if json_too:
        document = run("show", *source, "--format", "json")
        assert document.returncode == code and b"Traceback" not in document.stderr, document.stderr
        if not code:
            document.stdout.decode("utf-8")  # strict: valid UTF-8 whatever the tree holds
    with tempfile.TemporaryDirectory(dir=SCRATCH) as out:
        (Path(out) / "nfd-hooks").write_bytes(OLD)
        written = run("write", *source, "--features-dir", out)
        assert written.returncode == code and b"Traceback" not in written.stderr, written.stderr
        assert (Path(out) / "nfd-hooks").read_bytes() == (expected if not code else OLD)
        assert features_entries(out) == ["nfd-hooks"]


@scaled(50)
@given(fixture_blobs, st.data())
def test_mutated_blobs_through_the_command(blob, data):
    for _ in range(data.draw(st.integers(0, 3))):
        offset = data.draw(st.integers(0, len(blob) - 4)) & ~3
        struct.pack_into(">I", blob, offset, data.draw(st.sampled_from([0, 1, 2, 3, 4, 9, 0xFFFFFFF0])))
    blob = blob[: data.draw(st.integers(0, len(blob)))] if data.draw(st.booleans()) else blob
    path = SCRATCH / "mutated.dtb"
    path.write_bytes(bytes(blob))
    check_process(path, json_too=data.draw(st.booleans()))


@scaled(50)
@given(fs_trees(max_leaves=8), st.lists(st.tuples(st.integers(0, 64), st.sampled_from(ADDITIVE + DAMAGING[:5])), max_size=4))
def test_hostile_live_trees_through_the_command(root, hazards):
    """In-process fault injection cannot reach a child process: only on-disk hazards here."""
    with tempfile.TemporaryDirectory(dir=SCRATCH) as scratch:
        base = Path(scratch) / "base"
        materialize(root, base, hazards, _Faults())
        check_process(base, json_too=bool(hazards))



@scaled(50)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 63),
            st.one_of(
                st.tuples(st.just("attribute"), st.sampled_from(["idVendor", "bDeviceClass", "serial"]), garbage),
                st.tuples(st.just("interface"), st.integers(0, 7), garbage),
                st.tuples(st.just("replace"), st.sampled_from(["idProduct", "descriptors"]), st.sampled_from(["fifo", "loop"])),
            ),
        ),
        max_size=4,
    ),
    junk,
)
def test_broken_usb_trees_through_the_command(changes, junk_kinds):
    with tempfile.TemporaryDirectory(dir=SCRATCH) as scratch:
        root = Path(scratch) / "sysfs"
        shutil.copytree(EDGE_NODE, root, symlinks=True)
        devices = _devices(root)
        for index, change in changes:
            _break(root, sorted(devices)[index % len(devices)], change, _UsbFaults(), devices)
        _add_junk(root, junk_kinds)
        options = api.Options(sysfs=root, use_devicetree=False, usb_backend="sysfs", usb_label_fields=("class", "vendor", "device", "serial"))
        source = ["--sysfs", str(root), "--no-devicetree", "--usb-backend", "sysfs", "--usb-label-fields", "class,vendor,device,serial"]
        check_command(source, options, json_too=True)


def test_a_fifo_named_as_the_devicetree_is_refused_not_waited_on():
    fifo = SCRATCH / "devicetree.fifo"
    os.mkfifo(fifo)
    done = run("show", "--devicetree", str(fifo), "--no-usb")
    assert done.returncode == 2 and done.stderr.decode().startswith("nfd-hooks: error: ")
    assert len(done.stderr.splitlines()) == 1


def test_notices_about_names_with_newlines_stay_one_line():
    """Found by the long run: a node named with a newline split a notice over two lines."""
    base = SCRATCH / "newline" / "base"
    (base / "x\ny" / "cpu@0").mkdir(parents=True)
    (base / "name").write_bytes(b"\0")  # the root's, as Linux gives every node one
    (base / "x\ny" / "cpu@0" / "compatible").write_bytes(b"\x01\0")
    done = run("show", "--devicetree", str(base), "--no-usb")
    assert done.returncode == 0
    lines = done.stderr.decode().splitlines()
    assert lines == ["nfd-hooks: compatible '\\x01' at /x\\ny/cpu@0 has no label-safe characters"]
