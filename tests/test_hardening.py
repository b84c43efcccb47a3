"""Regressions of issue 14 (items 4, 5, 6, 9, 10 and 11; items 1, 7 and 8 are in
tests/test_safe_read.py and tests/usb): each of these hung, crashed, forged a line
or lied before the fix. Every process runs under a timeout, so a regression that
hangs fails here instead of hanging the suite."""

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import List

import pytest

from nfd_hooks import api
from nfd_hooks.capture import capture
from nfd_hooks.errors import InputError
from tests.conftest import DTB_DIR, FIXTURES
from tests.fakehost import PI4_HUBS, make_host

RPI = DTB_DIR / "rpi-4-b.dtb"
EDGE_NODE = FIXTURES / "usb" / "edge-node"
OLD = b"# previous run\nbeta.devicetree.org/old=1\n"


def run(args: List[str], timeout: float = 20) -> subprocess.CompletedProcess:
    """``nfd-hooks ARGS``; a hang past ``timeout`` is a failure, not a stuck suite."""
    try:
        return subprocess.run([sys.executable, "-m", "nfd_hooks", *args], capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"nfd-hooks {' '.join(args)} still running after {timeout} s")


def assert_one_error(done: subprocess.CompletedProcess, code: int, *words: str) -> str:
    """Exit ``code``, one ``nfd-hooks: error:`` line naming ``words``; the line."""
    stderr = done.stderr.decode("utf-8", "replace")
    assert done.returncode == code, stderr
    assert stderr.startswith("nfd-hooks: error: ") and stderr.count("\n") == 1, stderr
    assert all(word in stderr for word in words), stderr
    return stderr


def files_under(directory: Path) -> List[str]:
    """Every file below ``directory``, hidden scratch directories included."""
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if not p.is_dir())


# ---------------------------------------------------------------- 4: FIFOs never block


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_watch_with_a_fifo_at_its_target_starts_and_obeys_the_signal(tmp_path, signum):
    """The existing-file read opened the FIFO blocking: the watcher never started,
    deaf to SIGTERM and SIGINT (PEP 475 retries the interrupted open)."""
    features = tmp_path / "features.d"
    features.mkdir()
    os.mkfifo(features / "nfd-hooks")
    log = tmp_path / "watch.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "nfd_hooks", "watch", "--no-uevents", "--no-devicetree", "--no-usb",
             "--features-dir", str(features)],
            stdout=subprocess.DEVNULL, stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 15
        while b"nfd-hooks: watching " not in log.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signum)
        code = process.wait(10)
    except subprocess.TimeoutExpired:
        pytest.fail(f"watch ignored signal {signum} with a FIFO at its target: {log.read_text()}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert code == 0, log.read_text()
    assert b"nfd-hooks: watching " in log.read_bytes()
    assert (features / "nfd-hooks").is_file()  # the FIFO was replaced by the features file


def test_a_fifo_as_catalog_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "catalog.toml"
    os.mkfifo(fifo)
    done = run(["show", "--no-devicetree", "--no-usb", "--catalog", str(fifo)])
    assert_one_error(done, 2, str(fifo), "not a regular file")


@pytest.mark.parametrize("command", ["show", "write"])
def test_diff_against_a_fifo_at_the_target_does_not_wait_on_it(tmp_path, command):
    """--diff (newer than the fix) read the installed file with a blocking open: a hang."""
    features = tmp_path / "features.d"
    features.mkdir()
    os.mkfifo(features / "nfd-hooks")
    done = run([command, "--diff", "--no-devicetree", "--no-usb", "--features-dir", str(features)])
    assert_one_error(done, 2, "cannot read", "not a regular file")
    assert not (features / "nfd-hooks").is_file()


# ---------------------------------------------------------------- 5: time flags bounded


@pytest.mark.parametrize("value", ["99999999d", "100000000000000000000s"])
def test_huge_expiries_are_refused_in_one_line(value):
    """They overflowed datetime: a traceback, exit 1."""
    assert_one_error(run(["show", "--no-devicetree", "--no-usb", "--expires-in", value]), 2, "--expires-in", value)


@pytest.mark.parametrize("value", ["inf", "1e300", "1e-9"])
def test_out_of_range_intervals_are_refused_in_one_line(tmp_path, value):
    """inf and 1e300 overflowed a C time_t (a traceback); 1e-9 rescanned in a busy loop, forever."""
    done = run(["watch", "--no-uevents", "--no-devicetree", "--no-usb", "--features-dir", str(tmp_path), "--interval", value])
    assert_one_error(done, 2, "--interval")
    assert files_under(tmp_path) == []  # refused before anything is written


# ---------------------------------------------------------------- 6: whatever capture writes, replay reproduces


def rendered(options: api.Options) -> bytes:
    return api.render_scan(api.scan(options), options)


def capture_replays_or_refuses(host: Path, bundle: Path) -> str:
    """Capture ``host``: either the bundle replays to the live result and holds no
    dangling link, or capture refuses (InputError, exit 2) and writes nothing."""
    live = api.Options(sysfs=host, usb_backend="sysfs")
    try:
        capture(bundle, host)
    except InputError:
        assert not bundle.exists() and not list(bundle.parent.glob(f".{bundle.name}.*"))
        return "refused"
    assert rendered(api.replay_options(bundle, live)) == rendered(live)
    dangling = [p for p in bundle.rglob("*") if p.is_symlink() and not p.exists()]
    assert dangling == []
    return "replayed"


def deep_tree(host: Path, levels: int) -> None:
    """A live tree ``levels`` deep, the root its first level."""
    base = host / "firmware" / "devicetree" / "base"
    base.mkdir(parents=True)
    (base / "compatible").write_bytes(b"acme,board\0")
    base.joinpath(*(f"n{i}" for i in range(2, levels + 1))).mkdir(parents=True)


def gpu_named_with_a_newline(host: Path) -> None:
    make_host(host, RPI.read_bytes(), ())
    node = host / "firmware" / "devicetree" / "base" / "gpu@x\n"
    node.mkdir()
    (node / "compatible").write_bytes(b"acme,npu\0")


def torn_usb_device(host: Path) -> None:
    """A device unplugged while captured: the kernel removes its attributes, then
    its directories; meanwhile its bus/usb/devices links lead to half a device."""
    shutil.copytree(EDGE_NODE, host, symlinks=True)
    device = Path(os.path.realpath(host / "bus" / "usb" / "devices" / "2-1"))
    (device / "idVendor").unlink()
    (device / "idProduct").unlink()


@pytest.mark.parametrize(
    "make,expected",
    [
        (lambda host: make_host(host, RPI.read_bytes(), ()), "replayed"),  # no USB
        (lambda host: host.mkdir(), "replayed"),  # neither devicetree nor USB
        (lambda host: deep_tree(host, 64), "replayed"),  # as deep as a blob may be (FDT_MAX_DEPTH)
        (lambda host: deep_tree(host, 65), "refused"),
        (gpu_named_with_a_newline, "refused"),
        (torn_usb_device, "replayed"),
    ],
    ids=["no-usb", "neither", "64-levels", "65-levels", "gpu@x-newline", "torn-usb-device"],
)
def test_whatever_capture_writes_replay_reproduces(tmp_path, make, expected):
    host = tmp_path / "host"
    make(host)
    assert capture_replays_or_refuses(host, tmp_path / "bundle") == expected


def test_capture_refuses_in_one_line_exit_2(tmp_path):
    host = tmp_path / "host"
    deep_tree(host, 65)
    done = run(["capture", str(tmp_path / "bundle"), "--sysfs", str(host)])
    assert_one_error(done, 2, "deeper than 64 levels")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["host"]


# ---------------------------------------------------------------- 9: no temporary survives


SIGNAL_AFTER_FSYNC = textwrap.dedent(
    """
    import os, signal, sys
    from nfd_hooks import cli
    real = os.fsync
    def fsync_then_signal(fd):  # the temporary exists, the rename is still to come
        real(fd)
        os.kill(os.getpid(), getattr(signal, sys.argv[2]))
    os.fsync = fsync_then_signal
    sys.exit(cli.run(["write", "--no-devicetree", "--no-usb", "--features-dir", sys.argv[1]]))
    """
)


def write_signalled(features: Path, signame: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", SIGNAL_AFTER_FSYNC, str(features), signame], capture_output=True, timeout=30
    )


@pytest.fixture
def features(tmp_path: Path) -> Path:
    directory = tmp_path / "features.d"
    directory.mkdir()
    (directory / "nfd-hooks").write_bytes(OLD)
    return directory


def test_sigterm_during_write_leaves_no_temporary_and_the_old_file(features):
    done = write_signalled(features, "SIGTERM")
    assert_one_error(done, 143, "SIGTERM", "unchanged")
    assert files_under(features) == ["nfd-hooks"]
    assert (features / "nfd-hooks").read_bytes() == OLD


def test_a_sigkilled_writers_temporary_is_removed_by_the_next_write(features):
    done = write_signalled(features, "SIGKILL")
    assert done.returncode == -signal.SIGKILL
    left = [name for name in files_under(features) if name != "nfd-hooks"]
    assert len(left) == 1 and left[0].endswith(".tmp"), left  # what SIGKILL leaves, nothing can catch it
    assert run(["write", "--no-devicetree", "--no-usb", "--features-dir", str(features)]).returncode == 0
    assert files_under(features) == ["nfd-hooks"]


def test_stale_temporaries_are_removed_at_start_and_only_ours(features):
    """Ours for this name, unlocked: removed. A live writer's (flocked), another
    file name's, another tool's and look-alikes: kept."""
    import fcntl

    scratch = features / f".nfd-hooks-tmp.{os.getuid()}"
    scratch.mkdir(mode=0o700)
    stale = [".nfd-hooks.k3_9xq2a.tmp", ".nfd-hooks.abcdefgh.tmp"]
    kept = [".nfd-hooks.live1234.tmp", ".devicetree.abcdefgh.tmp", ".nfd-hooks.short.tmp", "notes.txt",
            ".nfd-hooks.abcdefgh.tmp.bak", ".nfd-hooks.ABCDEFGH.tmp"]
    for name in stale + kept:
        (scratch / name).write_bytes(b"partial")
    (features / ".nfd-hooks.abcdefgh.tmp").write_bytes(b"features.d itself is not our scratch")
    live = os.open(scratch / ".nfd-hooks.live1234.tmp", os.O_RDONLY)
    fcntl.flock(live, fcntl.LOCK_EX)  # as a writer holds its temporary until the rename
    try:
        assert run(["write", "--no-devicetree", "--no-usb", "--features-dir", str(features)]).returncode == 0
    finally:
        os.close(live)
    assert sorted(os.listdir(scratch)) == sorted(kept)
    assert (features / ".nfd-hooks.abcdefgh.tmp").exists()


# ---------------------------------------------------------------- 10: names from the node are escaped


def test_capture_escapes_names_from_the_node(tmp_path):
    """A USB entry named with a newline forged a second stderr line."""
    host = tmp_path / "host"
    make_host(host, None, PI4_HUBS)
    outside = tmp_path / "outside"
    outside.mkdir()
    (host / "bus" / "usb" / "devices" / "9-9\nnfd-hooks: error: forged").symlink_to(outside)
    done = run(["capture", str(tmp_path / "bundle"), "--sysfs", str(host)])
    assert done.returncode == 0, done.stderr
    lines = done.stderr.decode().splitlines()
    assert "nfd-hooks: error: forged: not a directory inside " + str(host) not in lines
    assert [line for line in lines if "9-9" in line] == [
        f"nfd-hooks: skipped {host}/bus/usb/devices/9-9\\nnfd-hooks: error: forged: not a directory inside {host}"
    ]


def test_check_escapes_file_names_and_content(tmp_path):
    """One problem is one stdout line, whatever the file's name or line holds."""
    directory = tmp_path / "features.d"
    directory.mkdir()
    (directory / "x\nforged:1: all good").write_bytes(b"bad\rkey=1\n")
    done = run(["check", str(directory)])
    assert done.returncode == 1, done.stderr
    lines = done.stdout.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{directory}/x\\nforged:1: all good:1: "), lines
    assert "\\r" in lines[0]


@pytest.mark.parametrize("command", ["write", "watch"])
@pytest.mark.parametrize("name", ["nfd\nhooks", "nfd\rhooks", "nfd\x1b[2Jhooks", "nfd\x7f"])
def test_a_name_with_control_characters_is_refused(tmp_path, command, name):
    extra = ["--no-uevents"] if command == "watch" else []
    done = run([command, *extra, "--no-devicetree", "--no-usb", "--features-dir", str(tmp_path), "--name", name])
    assert_one_error(done, 2, "--name", "control characters")
    assert files_under(tmp_path) == []


# ---------------------------------------------------------------- 11: messages say what is wrong


def test_a_blob_with_the_magic_but_too_short_says_truncated(tmp_path):
    blob = tmp_path / "short.dtb"
    blob.write_bytes(b"\xd0\x0d\xfe\xed")
    line = assert_one_error(run(["show", "--devicetree", str(blob), "--no-usb"]), 2, "truncated devicetree blob (4 bytes")
    assert "no FDT magic" not in line


def test_a_property_that_is_one_symlink_says_symbolic_link(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    (base / "name").write_bytes(b"\0")  # the root's, as Linux gives every node one
    (base / "real").write_bytes(b"acme,board\0")
    (base / "compatible").symlink_to("real")
    done = run(["show", "--devicetree", str(base), "--no-usb"])
    assert done.returncode == 0
    assert done.stderr.decode().splitlines() == [
        f"nfd-hooks: skipped devicetree property {base}/compatible: a symbolic link (not followed)"
    ]


def test_a_property_that_is_a_fifo_is_skipped_with_a_notice(tmp_path):
    """Like every other odd entry of a live tree, a FIFO is named on stderr (it was
    skipped silently), never opened blocking, and its node keeps its other labels."""
    base = tmp_path / "base"
    (base / "cpus" / "cpu@0").mkdir(parents=True)
    (base / "compatible").write_bytes(b"acme,board\0")
    os.mkfifo(base / "cpus" / "cpu@0" / "compatible")
    done = run(["show", "--devicetree", str(base), "--no-usb"])
    assert done.returncode == 0
    assert done.stderr.decode().splitlines() == [
        f"nfd-hooks: skipped devicetree property {base}/cpus/cpu@0/compatible: not a regular file"
    ]
    assert b"beta.devicetree.org/acme-board=1" in done.stdout


def test_replay_without_a_devicetree_names_the_bundles_file(tmp_path):
    """It named <bundle>/sys/firmware/devicetree/base, a path no bundle contains."""
    host = make_host(tmp_path / "host", None, PI4_HUBS)
    capture(tmp_path / "bundle", host)
    done = run(["show", "--replay", str(tmp_path / "bundle")])
    assert done.returncode == 0
    notices = [line for line in done.stderr.decode().splitlines() if "devicetree" in line]
    assert notices == [f"nfd-hooks: no devicetree at {tmp_path}/bundle/devicetree.dtb: no devicetree labels on this node"]
