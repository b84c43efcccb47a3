"""``nfd-hooks watch`` as a process: signals, exit codes, no churn, hotplug on a sysfs tree."""

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import pytest

from tests.conftest import DTB_DIR, features_entries, run_cli
from tests.conftest import labels_of

PI = str(DTB_DIR / "rpi-4-b.dtb")
CORAL = str(DTB_DIR / "coral-dev-board.dtb")  # root compatible google,imx8mq-phanbell
EDGETPU = "accelerator.feature.node.kubernetes.io/edgetpu.present"  # docs/accelerators.md


class Watcher:
    """``nfd-hooks watch ARGS`` running in the background, started once it watches."""

    def __init__(self, args: List[str], env=None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "nfd_hooks", "watch", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )
        self.log: List[str] = []
        for line in self.process.stderr:
            self.log.append(line.decode().rstrip("\n"))
            if line.startswith(b"nfd-hooks: watching "):
                return
        raise AssertionError(f"watch exited {self.process.wait()}: {self.log}")

    def stop(self, signum: int = signal.SIGTERM) -> float:
        """Send ``signum``; return the seconds the process took to exit, after asserting exit 0."""
        sent = time.monotonic()
        self.process.send_signal(signum)
        code = self.process.wait(5)
        took = time.monotonic() - sent
        self.log += [line.rstrip("\n") for line in self.process.stderr.read().decode().splitlines()]
        self.process.stderr.close()
        assert code == 0, self.log
        return took

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def features_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "features.d"
    directory.mkdir()
    return directory


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_ends_it_within_a_second_with_exit_0(features_dir, signum):
    watcher = Watcher(["--devicetree", PI, "--no-usb", "--features-dir", str(features_dir), "--interval", "30"])
    try:
        time.sleep(0.3)
        assert watcher.stop(signum) < 1.0
    finally:
        watcher.kill()
    assert (features_dir / "nfd-hooks").read_bytes() == run_cli(["show", "--devicetree", PI, "--no-usb"]).stdout
    assert features_entries(features_dir) == ["nfd-hooks"]


def test_unchanged_node_leaves_the_file_untouched(features_dir, tmp_path):
    """The Coral Dev Board: its Edge TPU label comes from the devicetree, which
    is read once; every rescan must still see it, or the file would change."""
    sysfs = tmp_path / "sys"
    sysfs.mkdir()
    args = ["--sysfs", str(sysfs), "--devicetree", CORAL, "--features-dir", str(features_dir), "--interval", "0.2"]
    watcher = Watcher(args)
    try:
        before = (features_dir / "nfd-hooks").stat()
        time.sleep(1.5)
        watcher.stop()
    finally:
        watcher.kill()
    after = (features_dir / "nfd-hooks").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert sum(line.startswith("nfd-hooks: wrote ") for line in watcher.log) == 1, watcher.log
    labels = labels_of((features_dir / "nfd-hooks").read_bytes())
    assert labels[EDGETPU] == "true" and labels["beta.devicetree.org/google-imx8mq-phanbell"] == "1"


@pytest.mark.parametrize(
    "args",
    [["--interval", "0"], ["--interval", "soon"], ["--name", ".hidden"], ["--prefix", "Bad_Prefix"]],
)
def test_bad_flags_exit_2_with_one_line(features_dir, args):
    done = run_cli(["watch", "--devicetree", PI, "--features-dir", str(features_dir), *args])
    stderr = done.stderr.decode()
    assert done.returncode == 2, stderr
    assert stderr.startswith("nfd-hooks: error: ") and len(stderr.strip().splitlines()) == 1
    assert not (features_dir / "nfd-hooks").exists()


def test_missing_features_dir_exits_1(tmp_path):
    done = run_cli(["watch", "--devicetree", PI, "--features-dir", str(tmp_path / "nope")])
    assert done.returncode == 1
    assert done.stderr.decode().strip().splitlines()[-1].startswith("nfd-hooks: error: features directory")
