"""The invariant "nothing outside the root is read", and the hostile links that test it.

``OUTSIDE`` holds what an attacker would point a link at: a secret file, a USB
device and a PCI function that would give labels if followed (ids found nowhere
else), a devicetree node, a valid DTB, a FIFO. Every symlink strategy may point
there, directly, relatively, or through an in-tree link chain. ``confined()``
then checks two ways that nothing there was opened:

- inotify on every directory of ``OUTSIDE`` (IN_OPEN, IN_ACCESS): sees every
  open and read, however made (openat2, a path relative to a directory fd);
  only this process touches ``OUTSIDE``;
- an audit hook (``sys.addaudithook``) on ``open``, ``os.listdir`` and
  ``os.scandir``: names the path, for absolute paths.

and the outputs never hold the secret (``assert_not_leaked``).
"""

import ctypes
import os
import shutil
import signal
import struct
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List

from hypothesis import strategies as st

from tests.conftest import DTB_DIR
from tests.reliability.invariants import scratch_dir

SECRET = f"nfd-hooks-sentinel-{uuid.uuid4().hex}"
OUTSIDE_USB_ID = "5e47"  # idVendor and idProduct of the outside USB device: in no fixture
OUTSIDE = scratch_dir() / "outside"


def _make_outside() -> None:
    OUTSIDE.mkdir()
    (OUTSIDE / "secret").write_text(SECRET + "\n")
    device = OUTSIDE / "usb-device"
    (device / "9-9:1.0").mkdir(parents=True)
    for name, value in (("idVendor", OUTSIDE_USB_ID), ("idProduct", OUTSIDE_USB_ID), ("bDeviceClass", "ff"),
                        ("bConfigurationValue", "1"), ("serial", SECRET)):
        (device / name).write_text(value + "\n")
    (device / "9-9:1.0" / "bInterfaceClass").write_text("ff\n")
    pci = OUTSIDE / "pci-device"  # a Hailo-8: the catalog's hailo label if followed
    pci.mkdir()
    (pci / "vendor").write_text("0x1e60\n")
    (pci / "device").write_text("0x2864\n")
    node = OUTSIDE / "dt-node"
    node.mkdir()
    (node / "compatible").write_bytes(SECRET.encode() + b"\0")
    # A real board's blob, so a followed link would give its labels (and the secret never does)
    shutil.copy(DTB_DIR / "jetson-nano.dtb", OUTSIDE / "devicetree.dtb")
    os.mkfifo(OUTSIDE / "fifo")


_make_outside()
# What a followed link would put into an output: the secret, the outside devices'
# labels (hailo from the PCI function), the Jetson Nano's from the outside blob.
LEAKS = (SECRET, OUTSIDE_USB_ID, "/hailo.", "tegra210", "p3450")

# ---------------------------------------------------------------- the watchers

_IN_ACCESS, _IN_OPEN = 0x1, 0x20
_EVENT = struct.Struct("iIII")
_libc = ctypes.CDLL(None, use_errno=True)
_INOTIFY = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
assert _INOTIFY >= 0, os.strerror(ctypes.get_errno())
_WATCHES = {}
for _top, _dirs, _ in os.walk(OUTSIDE):
    _wd = _libc.inotify_add_watch(_INOTIFY, os.fsencode(_top), _IN_OPEN | _IN_ACCESS)
    assert _wd >= 0, os.strerror(ctypes.get_errno())
    _WATCHES[_wd] = _top


def _inotify_events() -> List[str]:
    """What was opened or read in OUTSIDE since the last call."""
    seen = []
    while True:
        try:
            data = os.read(_INOTIFY, 65536)
        except BlockingIOError:
            return seen
        offset = 0
        while offset < len(data):
            wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
            name = data[offset + _EVENT.size: offset + _EVENT.size + length].rstrip(b"\0").decode()
            seen.append(f"{'open' if mask & _IN_OPEN else 'read'} {os.path.join(_WATCHES[wd], name)}")
            offset += _EVENT.size + length


_audit_active = False
_audited: List[str] = []


def _resolved(path: str, flags: int) -> str:
    """Where an open of ``path`` lands: a final symlink counts only when followed."""
    if flags & os.O_NOFOLLOW:
        return os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
    return os.path.realpath(path)


def _audit(event: str, args: tuple) -> None:
    if not _audit_active or event not in ("open", "os.listdir", "os.scandir"):
        return
    path = args[0] if args else None
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str) or not os.path.isabs(path):
        return  # an fd, or relative to a directory fd: inotify sees those
    flags = args[2] if event == "open" and len(args) > 2 and isinstance(args[2], int) else 0
    landed = _resolved(path, flags)
    if landed == str(OUTSIDE) or landed.startswith(str(OUTSIDE) + os.sep):
        _audited.append(f"{event} {path} -> {landed}")


sys.addaudithook(_audit)


class _Overtime(Exception):
    pass


def _overtime(*_: object) -> None:
    raise _Overtime()


@contextmanager
def confined(seconds: int = 20) -> Iterator[None]:
    """Fail if anything in OUTSIDE is opened, listed or read meanwhile, or if the
    block takes over ``seconds`` (a FIFO waited on would hang it)."""
    global _audit_active
    _inotify_events()
    _audited.clear()
    previous = signal.signal(signal.SIGALRM, _overtime)
    signal.alarm(seconds)
    _audit_active = True
    try:
        yield
    except _Overtime:
        raise AssertionError(f"still running after {seconds} s: a FIFO waited on?") from None
    finally:
        _audit_active = False
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    events = _inotify_events()
    assert not events and not _audited, f"read outside the root: {events + _audited}"


def assert_not_leaked(*outputs: object) -> None:
    """No output holds what only OUTSIDE holds."""
    for output in outputs:
        text = output.decode("utf-8", "replace") if isinstance(output, bytes) else str(output)
        for leak in LEAKS:
            assert leak not in text, f"{leak!r} from outside the root in {text[:500]!r}"


# ---------------------------------------------------------------- hostile entries

# What a hostile entry is: a link out (to a file, a device-shaped directory, a
# FIFO), through an in-tree link chain, to /dev/zero, a loop, or a FIFO itself.
LINK_KINDS = ("absolute", "relative", "chain", "dev-zero", "loop", "dangling", "fifo")
TARGETS = ("secret", "usb-device", "pci-device", "dt-node", "devicetree.dtb", "fifo")
hazards = st.tuples(st.sampled_from(LINK_KINDS), st.sampled_from(TARGETS))


def plant(path: Path, hazard: tuple, root: Path) -> List[Path]:
    """Replace whatever is at ``path`` (inside ``root``) with ``hazard``; return
    the entries made (``path``, and a chain's helper links)."""
    kind, target = hazard
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    outside = OUTSIDE / target
    made = [path]
    if kind == "absolute":
        path.symlink_to(outside)
    elif kind == "relative":
        path.symlink_to(os.path.relpath(outside, path.parent))
    elif kind == "chain":
        made += _chain(path, outside)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "loop":
        path.symlink_to(path.name)
    elif kind == "dangling":
        path.symlink_to(os.path.relpath(root / "nonexistent" / target, path.parent))
    else:
        os.mkfifo(path)
    return made


def _chain(path: Path, outside: Path) -> List[Path]:
    """``path`` -> ``outside`` through helper links beside it, each of whose
    targets, read as text beside the link, stays within one level above it:
    ``.h0`` -> ``..``, ``.hN`` -> ``.h(N-1)/../..`` (really 2N+1 levels up), and
    ``path`` -> ``.hN/<down to outside>``. Only resolving them for real shows the way out."""
    directory = path.parent
    common = Path(os.path.commonpath([directory, outside]))
    needed = len(directory.relative_to(common).parts)
    helpers, ups, name = [], 1, ".h0"
    (directory / name).symlink_to("..")
    helpers.append(directory / name)
    while ups < needed:
        previous, name = name, f".h{len(helpers)}"
        (directory / name).symlink_to(f"{previous}/../..")
        helpers.append(directory / name)
        ups += 2
    landing = directory.parents[ups - 1] if ups <= len(directory.parents) else Path("/")
    path.symlink_to(os.path.join(name, os.path.relpath(outside, landing)))
    return helpers
