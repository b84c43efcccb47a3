"""features.d as others leave it (issue 25): what sits at our own names, and a second writer.

features.d is a host directory other pods and device plugins write into. At
the features file's name and at part-file names (``NAME.part-XXXXXXXX``, ours
or not among those the new output wants) the strategies plant symlinks out of
it (to a secret, a FIFO, /dev/zero; absolute, relative, through link chains
that read as staying inside), symlinks in it, loops, dangling links, FIFOs,
sockets, directories and old regular files; then ``--diff`` compares, the
watcher syncs (and logs) and the writer replaces. Invariants: nothing at our
names is followed (inotify and an audit hook on the outside directory,
``confinement.confined``), nothing outside reaches an output or a log line,
nothing hangs, no target of a link is written through, and afterwards our
names hold exactly the new output (a directory at the main name: one clean
error, the previous files as they were).

Two writers of one name on one features.d (the write initContainer beside a
watch, two watches) race over many rounds, split outputs included: every
write of both succeeds and no temporary is left.
"""

import os
import socket
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import List

from hypothesis import event, given
from hypothesis import strategies as st

from nfd_hooks import api, writer
from nfd_hooks.diff import features_of_files
from nfd_hooks.errors import InputError, OutputError
from nfd_hooks.features import Feature
from nfd_hooks.sources import SourceReport
from nfd_hooks.watch import sync
from tests.conftest import DTB_DIR
from tests.reliability.confinement import LEAKS, OUTSIDE, SECRET, assert_not_leaked, confined, plant
from tests.reliability.invariants import count, scaled, scratch_dir

SCRATCH = scratch_dir()
DTB = DTB_DIR / "rpi-4-b.dtb"
NAME = "nfd-hooks"
NOW = datetime(2026, 12, 4, tzinfo=timezone.utc)
OPTIONS = api.Options()

# What may sit at one of our names.
KINDS = ("outside-absolute", "outside-relative", "outside-chain", "outside-fifo", "dev-zero", "inside-link",
         "loop", "dangling", "fifo", "socket", "directory", "old-file")
hexes = st.text("0123456789abcdef", min_size=8, max_size=8)


def results(labels: int, split: int) -> api.Scan:
    """A scan of ``labels`` labels whose output is ``split`` files (one label per extra file's worth)."""
    size = 65_000 // max(1, split) if split > 1 else 10
    features = [Feature(f"example.com/label-{n:04d}", str(n)) for n in range(labels)]
    features += [Feature(f"example.com/raw/{n}", "v" * size, label=False) for n in range(split if split > 1 else 0)]
    return api.assemble([SourceReport("devicetree", features)])


def put(directory: Path, name: str, kind: str) -> None:
    """``kind`` at ``directory/name``."""
    path = directory / name
    if kind.startswith("outside-"):
        how, target = {"outside-absolute": ("absolute", "secret"), "outside-relative": ("relative", "secret"),
                       "outside-chain": ("chain", "secret"), "outside-fifo": ("absolute", "fifo")}[kind]
        if how == "chain" and os.path.lexists(directory / ".h0"):  # one chain per directory
            how = "relative"
        plant(path, (how, target), directory)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "inside-link":
        (directory / "other-tool").write_bytes(b"other.example.com/kept=1\n")
        path.symlink_to("other-tool")
    elif kind == "loop":
        path.symlink_to(name)
    elif kind == "dangling":
        path.symlink_to("nothing-here")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        with socket.socket(socket.AF_UNIX) as bound:
            bound.bind(str(path))
    elif kind == "directory":
        path.mkdir()
        (path / "inside").write_bytes(b"kept\n")
    else:
        path.write_bytes(b"# an earlier write\nexample.com/old=1\n")


def hazards_at_our_names():
    main = st.sampled_from(KINDS)
    parts = st.lists(st.tuples(st.one_of(hexes, st.just("wanted")), st.sampled_from(KINDS)), max_size=4)
    return st.tuples(main, parts)


@scaled(2)
@given(hazards_at_our_names(), st.integers(0, 40), st.sampled_from([1, 1, 2, 3]), st.booleans())
def test_nothing_at_our_names_is_followed_or_printed(planted, labels, split, through_watch):
    """--diff compares, the watcher syncs (and logs), the writer replaces: nothing followed."""
    count("features-dir")
    main, parts = planted
    new = results(labels, split)
    rendered = api.files(new, OPTIONS, NOW)
    wanted = [suffix for suffix, _ in rendered[1:]]
    with tempfile.TemporaryDirectory(dir=SCRATCH) as scratch:
        directory = Path(scratch)
        names = {NAME: main}
        for suffix, kind in parts:
            part = wanted[0] if suffix == "wanted" and wanted else f".part-{suffix if suffix != 'wanted' else '0' * 8}"
            names.setdefault(NAME + part, kind)
        for name, kind in names.items():
            event(f"{'main' if name == NAME else 'part'}: {kind}")
            put(directory, name, kind)
        secret_before = (OUTSIDE / "secret").read_bytes()
        logged: List[str] = []
        with confined():
            try:
                changes, found, notices = api.diff(rendered, directory, NAME, NOW)
                logged += [change.format() for change in changes] + notices
            except InputError as error:  # a directory at the main name
                assert main == "directory", error
                logged.append(str(error))
            try:
                if through_watch:
                    done = sync(new, OPTIONS, directory, NAME, NOW)
                    logged += [change.format() for change in done.changes]
                else:
                    writer.write_files(directory, NAME, rendered)
            except OutputError as error:
                assert main == "directory" and "\n" not in str(error), error
                event("refused: a directory at the main name")
                assert_not_leaked(*logged, str(error))
                assert (directory / NAME / "inside").read_bytes() == b"kept\n"
                return
        assert_not_leaked(*logged)
        assert not any(leak in line for line in logged for leak in LEAKS + (SECRET,))
        assert (OUTSIDE / "secret").read_bytes() == secret_before  # never written through
        ours = {NAME + suffix: content for suffix, content in rendered}
        on_disk = {}
        for entry in sorted(os.listdir(directory)):
            path = directory / entry
            if entry == NAME or entry.startswith(NAME + ".part-"):
                if path.is_dir() and not path.is_symlink():
                    assert names.get(entry) == "directory" and entry not in ours  # not ours: left alone
                    continue
                assert not path.is_symlink() and path.is_file(), f"{entry} left as a {names.get(entry)}"
                on_disk[entry] = path.read_bytes()
        assert on_disk == ours
        assert features_of_files(on_disk.values(), NOW) == features_of_files(ours.values(), NOW)
        if "inside-link" in names.values():
            assert (directory / "other-tool").read_bytes() == b"other.example.com/kept=1\n"


@scaled(50)
@given(hazards_at_our_names(), st.sampled_from(["show", "write"]))
def test_nothing_at_our_names_is_printed_by_the_command(planted, command):
    """The same through the process: --diff's lines and notices, one clean exit."""
    count("features-dir-cli")
    main, parts = planted
    with tempfile.TemporaryDirectory(dir=SCRATCH) as scratch:
        directory = Path(scratch)
        put(directory, NAME, main)
        for suffix, kind in parts:
            if not os.path.lexists(directory / f"{NAME}.part-{suffix[:8].ljust(8, '0')}"):
                put(directory, f"{NAME}.part-{suffix[:8].ljust(8, '0')}", kind)
        with confined(40):
            done = subprocess.run(
                [sys.executable, "-m", "nfd_hooks", command, "--diff", "--devicetree", str(DTB), "--no-usb",
                 "--features-dir", str(directory)],
                capture_output=True, timeout=30,
            )
        stderr = done.stderr.decode("utf-8", "replace")
        assert "Traceback" not in stderr, stderr
        if main == "directory":  # --diff cannot compare with it, nor can write replace it
            assert done.returncode == 2 and stderr.startswith("nfd-hooks: error: ") and stderr.count("\n") == 1, stderr
        else:
            assert done.returncode == 0, stderr
        assert_not_leaked(done.stdout, stderr)

WRITER = """
import sys
from pathlib import Path
from nfd_hooks.writer import write_files
directory, name, me, rounds, splits = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
for n in range(rounds):
    split = int(splits[n % len(splits)])
    write_files(directory, name, [("", f"{me}={n}\\n".encode())] + [(f".part-{i:08x}", f"{me}{i}={n}\\n".encode()) for i in range(split)])
"""


@scaled(25)
@given(
    rounds=st.integers(50, 300),
    splits=st.lists(st.sampled_from("0123"), min_size=1, max_size=6).map("".join),
    other_splits=st.lists(st.sampled_from("0123"), min_size=1, max_size=6).map("".join),
    other_name=st.sampled_from([NAME, NAME, "other-tool"]),
)
def test_two_concurrent_writers_never_fail(rounds, splits, other_splits, other_name):
    """Two writers in a race, each with its own pattern of split outputs: every write of
    both succeeds, no temporary is left, and the files are one writer's last output."""
    count("concurrent-writers")
    event(f"second writer's name: {other_name}")
    with tempfile.TemporaryDirectory(dir=SCRATCH) as scratch:
        directory = Path(scratch)
        cwd = DTB_DIR.parents[1]  # the checkout: its nfd_hooks
        writers = [
            subprocess.Popen([sys.executable, "-c", WRITER, scratch, name, me, str(rounds), pattern],
                             stderr=subprocess.PIPE, cwd=cwd)
            for name, me, pattern in ((NAME, "a", splits), (other_name, "b", other_splits))
        ]
        outcomes = [(w.wait(120), w.stderr.read().decode()) for w in writers]
        assert outcomes == [(0, ""), (0, "")]
        assert os.listdir(directory / f".nfd-hooks-tmp.{os.getuid()}") == []
        mains = {name: (directory / name).read_bytes() for name in {NAME, other_name}}
        last = rounds - 1
        if other_name == NAME:
            assert mains[NAME] in (f"a={last}\n".encode(), f"b={last}\n".encode())
        else:
            assert mains == {NAME: f"a={last}\n".encode(), "other-tool": f"b={last}\n".encode()}
