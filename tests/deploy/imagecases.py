"""Every command of the CLI, as the image's tests run it in each image and on the host.

A case is a command line with relative paths, run in a working directory that
holds the same inputs wherever it runs (``prepare``): ``node/``, a Raspberry Pi 4B
laid out as the kernel shows it under /sys with the sample node's USB devices
(an NCS2, a webcam); ``bundle/``, the sample node's bundle; ``dev/``, an empty
/dev; a features file with problems and a corrupt DTB; for the allocation
daemons, ``kubelet/`` (a kubelet's directories with no kubelet: no socket
answers), ``cdi/``, a service-account token and a CA of no API server that
``prepare`` makes with openssl. What a command makes goes to ``out/``. ``run_host`` and the image tests compare exit code, stdout,
stderr and every file made, byte for byte.

tests/deploy/test_image_stdlib.py runs the same cases to trace which standard
library modules the image must ship (image/stdlib.txt).
"""

import os
import shutil
import signal
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from deploytools import live_tree

ROOT = Path(__file__).resolve().parent.parent.parent
SAMPLE_NODE = ROOT / "fixtures" / "nodes" / "rpi4b-ncs2-webcam"
NOBODY = "65534:65534"

SCAN = ("--sysfs", "node", "--dev", "dev")
OUTPUT_DIRECTORIES = ("features.d", "watch.d", "replayed.d", "expiring.d")  # under out/, for the cases
# The daemons' directories: not under out/, whose files are compared (a socket cannot be read).
KUBELET_DIRECTORIES = ("kubelet/plugins", "kubelet/plugins_registry", "kubelet/device-plugins", "cdi")
# The DRA driver as the DaemonSet runs it, against an API server that refuses the connection.
DRA = ("dra-driver", *SCAN, "--node-name", "board-1", "--server", "https://127.0.0.1:1", "--token-file", "token",
       "--plugins-dir", "kubelet/plugins", "--registry-dir", "kubelet/plugins_registry", "--cdi-dir", "cdi", "--no-uevents")


@dataclass(frozen=True)
class Case:
    name: str
    args: Tuple[str, ...]
    # Run as this uid:gid in the image: the watcher and show as the manifests'
    # non-root user; write as the one-shot hook (root, capabilities dropped).
    user: str = NOBODY
    # A command that runs until stopped: SIGTERM once a stderr line contains this.
    until: Optional[str] = None
    code: int = 0  # the exit code it must end with


CASES: List[Case] = [
    Case("--help", ("--help",)),
    Case("--version", ("--version",)),
    *(Case(f"{command} --help", (command, "--help"))
      for command in ("show", "write", "watch", "capture", "check", "test", "devices", "dra-driver", "device-plugin")),
    Case("show", ("show", *SCAN)),
    Case("show --format json", ("show", *SCAN, "--format", "json")),
    Case("show --format table", ("show", *SCAN, "--format", "table")),
    Case("show --diff", ("show", *SCAN, "--diff", "--features-dir", "bundle", "--name", "expected.features")),
    Case("write", ("write", *SCAN, "--features-dir", "out/features.d"), user="0:0"),
    Case("check the written file", ("check", "out/features.d")),
    Case("check a file with problems", ("check", "bad.features"), code=1),
    Case("watch", ("watch", *SCAN, "--features-dir", "out/watch.d", "--interval", "60"), until=": watching "),
    Case("capture", ("capture", "out/captured", "--sysfs", "node")),
    Case("show --replay (the bundle captured here)", ("show", "--replay", "out/captured")),
    Case("show --replay", ("show", "--replay", "bundle")),
    Case("show --replay --format json", ("show", "--replay", "bundle", "--format", "json")),
    Case("show --replay --format table", ("show", "--replay", "bundle", "--format", "table")),
    Case("write --replay", ("write", "--replay", "bundle", "--features-dir", "out/replayed.d"), user="0:0"),
    Case("test --usb (the bundle matches)", ("test", "--usb", "bundle")),
    Case("test (as the shipped hook: the bundle's USB labels differ)", ("test", "bundle"), code=1),
    Case("test --subset --usb", ("test", "--subset", "--usb", "bundle")),
    Case("test (the bundle captured here has no expected.features)", ("test", "out/captured"), code=1),
    Case("test (no bundle)", ("test", "out/features.d"), code=2),
    # Allocation (issue 29): the inventory, and each daemon far enough to load all it runs:
    # serving its gRPC sockets on asyncio, then failing to reach the kubelet or the API server
    # over TLS, once, in one line; stopped there by SIGTERM as the kubelet stops a pod.
    Case("devices", ("devices", *SCAN)),
    Case("devices --replay", ("devices", "--replay", "bundle")),
    Case("devices --replay --format json", ("devices", "--replay", "bundle", "--format", "json")),
    Case("device-plugin (no kubelet)", ("device-plugin", *SCAN, "--plugin-dir", "kubelet/device-plugins", "--no-uevents"),
         until=": cannot register with the kubelet at "),
    Case("device-plugin (no kubelet directory)", ("device-plugin", *SCAN, "--plugin-dir", "kubelet/none"), code=2),
    Case("dra-driver (no API server)", (*DRA, "--ca-file", "ca.crt"), until=": cannot publish the ResourceSlice, "),
    Case("dra-driver (no CA)", (*DRA, "--ca-file", "none.crt"), code=2),
    Case("dra-driver (no node name)", ("dra-driver", *SCAN), code=2),
    Case("a mistyped command", ("shwo",), code=2),
    Case("a wrong flag value", ("show", "--format", "xml"), code=2),
    Case("a corrupt DTB", ("show", "--devicetree", "corrupt.dtb", "--no-usb"), code=2),
]

# Cases whose output depends on where or when they run: the live machine's USB
# through libudev and libusb-1.0 (loaded by soname, nfd_hooks/libraries.py),
# and an expiry time. The image tests check that each succeeds with no notice
# (a backend that fails to load falls back to sysfs with one), not the bytes.
LIVE_CASES: List[Case] = [
    *(Case(f"show --usb-backend {backend}", ("show", "--usb-backend", backend, "--no-devicetree", "--no-accelerators"))
      for backend in ("udev", "libusb")),
    Case("write --expires-in", ("write", *SCAN, "--expires-in", "1h", "--features-dir", "out/expiring.d", "--quiet"),
         user="0:0"),
]

BAD_FEATURES = b"""# two problems NFD would drop silently, and one it would read
feature.node.kubernetes.io/bad,name=1
example.com/ok=yes
example.com/too-long=""" + b"x" * 70 + b"\n"


def prepare(work: Path) -> None:
    """Lay the inputs out in ``work``, readable by anyone (the image runs as 65534)."""
    node = work / "node"
    live_tree(ROOT / "fixtures" / "dtb" / "rpi-4-b.dtb", node / "firmware" / "devicetree" / "base")
    for part in ("bus", "devices"):
        shutil.copytree(SAMPLE_NODE / "sys" / part, node / part, symlinks=True)
    shutil.copytree(SAMPLE_NODE, work / "bundle", symlinks=True)
    (work / "dev").mkdir()
    (work / "bad.features").write_bytes(BAD_FEATURES)
    (work / "corrupt.dtb").write_bytes(b"\xd0\x0d\xfe\xed" + b"\xff" * 60)
    for directory in OUTPUT_DIRECTORIES:
        (work / "out" / directory).mkdir(parents=True)
    for directory in KUBELET_DIRECTORIES:
        (work / directory).mkdir(parents=True)
    (work / "token").write_text("imagecases\n")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", os.devnull, "-out", str(work / "ca.crt"), "-days", "2", "-subj", "/CN=nfd-hooks-imagecases"],
                   check=True, capture_output=True)
    for directory, _, files in os.walk(work):
        os.chmod(directory, 0o755)
        for name in files:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                os.chmod(path, 0o644)
    for directory in ("out", *(f"out/{name}" for name in OUTPUT_DIRECTORIES), *KUBELET_DIRECTORIES):
        os.chmod(work / directory, 0o777)  # the non-root cases write here too


@dataclass
class Result:
    code: int
    stdout: bytes
    stderr: bytes


def run(command: Sequence[str], cwd: Path, stop: Callable[[subprocess.Popen], None], case: Case,
        env: Optional[Dict[str, str]] = None, timeout: float = 300) -> Result:
    """Run ``command`` (the CLI and ``case.args``); a case with ``until`` is
    stopped with ``stop`` once its stderr shows that text."""
    if case.until is None:
        done = subprocess.run([*command, *case.args], cwd=cwd, env=env, capture_output=True, timeout=timeout)
        return Result(done.returncode, done.stdout, done.stderr)
    process = subprocess.Popen([*command, *case.args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    lines = []
    try:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if case.until.encode() in line:
                stop(process)
                break
        stdout, rest = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return Result(process.returncode, stdout, b"".join(lines) + rest)


def host_command() -> List[str]:
    """This checkout's CLI as installed in the test virtualenv: its console script, as in the image."""
    script = Path(sys.executable).parent / "nfd-hooks"
    return [str(script)] if script.exists() else [sys.executable, "-m", "nfd_hooks"]


def host_env() -> Dict[str, str]:
    """A plain environment: no COLUMNS (help is wrapped to it), no locale, as in the image."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}


def run_host(work: Path, case: Case, env: Optional[Dict[str, str]] = None) -> Result:
    return run(host_command(), work, lambda process: process.send_signal(signal.SIGTERM), case,
               env=env or host_env())


def outputs(work: Path) -> Dict[str, Tuple[int, bytes]]:
    """Every file and symlink under ``out/``: mode and content (a symlink: its target).
    The writer's hidden scratch directories are named by uid; they must be empty and are left out."""
    found: Dict[str, Tuple[int, bytes]] = {}
    base = work / "out"
    for directory, directories, files in os.walk(base):
        for name in list(directories):
            path = Path(directory) / name
            if name.startswith(".nfd-hooks-tmp."):
                assert os.listdir(path) == [], f"temporary left in {path}"
                directories.remove(name)
            elif path.is_symlink():
                found[str(path.relative_to(base))] = (0, os.readlink(path).encode())
        for name in files:
            path = Path(directory) / name
            relative = str(path.relative_to(base))
            if path.is_symlink():
                found[relative] = (0, os.readlink(path).encode())
            else:
                found[relative] = (stat.S_IMODE(path.stat().st_mode), path.read_bytes())
    return found
