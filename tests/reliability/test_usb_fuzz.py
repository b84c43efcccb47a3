"""USB trees with garbage attributes and descriptors, and devices vanishing mid-read.

Starts from the real-shaped sysfs fixture (fixtures/usb/edge-node), breaks
some devices, and checks the invariants plus the one that keeps a node its
labels: a broken device never costs another device its labels.
"""

import errno
import os
import shutil
from contextlib import ExitStack
from pathlib import Path
from typing import Dict, List, Set, Tuple
from unittest import mock

from hypothesis import event, given
from hypothesis import strategies as st

from nfd_hooks import api
from nfd_hooks.sources.usb import sysfs
from nfd_hooks.sources.usb.model import interface_config
from tests.conftest import FIXTURES
from tests.reliability.invariants import check_scan, count, scaled, scratch_dir

EDGE_NODE = FIXTURES / "usb" / "edge-node"
SCRATCH = scratch_dir()
DEVICE_ATTRIBUTES = ("idVendor", "idProduct", "bDeviceClass", "bConfigurationValue", "serial", "descriptors")
READ_ORDER = ("idVendor", "idProduct", "bDeviceClass", "bConfigurationValue", "bInterfaceClass", "descriptors", "serial")

garbage = st.one_of(
    st.sampled_from([b"", b"\n", b"0x03e7\n", b"03E7\n", b"3e7\n", b"03e7", b"  ff  ", b"ff\nff\n", b"\xff\xfe\n",
                     b"-1\n", b"1.0\n", b"9" * 5000, b"\0\0", b"serial/with,commas and spaces\n", b"\xe2\x80\xae\n"]),
    st.binary(max_size=64),
    st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")),
)
mutation = st.one_of(
    st.tuples(st.just("attribute"), st.sampled_from(DEVICE_ATTRIBUTES), garbage),
    st.tuples(st.just("interface"), st.integers(0, 7), garbage),
    st.tuples(st.just("descriptors"), st.integers(0, 4095), st.integers(0, 255), st.booleans()),
    st.tuples(st.just("replace"), st.sampled_from(DEVICE_ATTRIBUTES), st.sampled_from(["dir", "fifo", "dangling", "loop", "missing"])),
    st.tuples(st.just("eio"), st.sampled_from(DEVICE_ATTRIBUTES + ("bInterfaceClass",))),
    st.tuples(st.just("vanish"), st.sampled_from(("listing",) + READ_ORDER)),
)
junk = st.lists(st.sampled_from(["dangling", "loop", "file", "fifo", "garbage-device"]), max_size=3, unique=True)


def _devices(root: Path) -> Dict[str, Path]:
    top = root / "bus" / "usb" / "devices"
    return {name: Path(os.path.realpath(top / name)) for name in sorted(os.listdir(top)) if ":" not in name}


def _details(options: api.Options) -> Dict[str, List[str]]:
    usb = next(r for r in api.scan(options).reports if r.name == "usb")
    return {entry["bus_path"]: entry["labels"] for entry in usb.details["devices"]}


def _options(root: Path, serial: bool) -> api.Options:
    fields = ("class", "vendor", "device", "serial") if serial else ("class", "vendor", "device")
    return api.Options(sysfs=root, use_devicetree=False, usb_backend="sysfs", usb_label_fields=fields)


BASELINE = {serial: _details(_options(EDGE_NODE, serial)) for serial in (False, True)}


class _Faults:
    """EIO on chosen files; devices removed after the bus is listed or before a given read."""

    def __init__(self) -> None:
        self.eio: Set[Tuple[int, int]] = set()
        self.vanish: Dict[str, List[Path]] = {}  # trigger -> device directories to remove
        self._read, self._listdir, self._read_attribute = os.read, os.listdir, sysfs.read_attribute

    def read(self, fd, size):
        info = os.fstat(fd)
        if (info.st_dev, info.st_ino) in self.eio:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return self._read(fd, size)

    def listdir(self, path):
        names = self._listdir(path)
        if str(path).endswith(os.path.join("bus", "usb", "devices")):
            self._remove("listing", None)
        return names

    def read_attribute(self, path, *args, directory=None):
        full = Path(directory.path, path) if directory else Path(path)  # relative to an open device directory
        self._remove(full.name, full)
        return self._read_attribute(path, *args, directory=directory)

    def _remove(self, trigger: str, path) -> None:
        for directory in self.vanish.get(trigger, []):
            if directory.is_dir() and (path is None or directory in path.parents):
                shutil.rmtree(directory)

    def patches(self, stack: ExitStack) -> None:
        stack.enter_context(mock.patch.object(sysfs.os, "read", self.read))
        stack.enter_context(mock.patch.object(sysfs.os, "listdir", self.listdir))
        stack.enter_context(mock.patch.object(sysfs, "read_attribute", self.read_attribute))


def _overwrite(path: Path, data: bytes) -> None:
    """Replace whatever is at ``path`` (an earlier change may have left a FIFO, loop or directory)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    path.write_bytes(data)


def _break(root: Path, target: str, change: tuple, faults: _Faults, devices: Dict[str, Path]) -> Set[str]:
    """Apply one change to device ``target``; return the devices it may affect."""
    directory = devices[target]
    kind = change[0]
    if kind == "attribute":
        _overwrite(directory / change[1], change[2])
    elif kind == "interface":
        interfaces = sorted(e for e in os.listdir(directory) if interface_config(e, target) is not None)
        if not interfaces:
            return set()
        _overwrite(directory / interfaces[change[1] % len(interfaces)] / "bInterfaceClass", change[2])
    elif kind == "descriptors":
        path = directory / "descriptors"
        data = bytearray(path.read_bytes()) if path.is_file() and not path.is_symlink() else bytearray()
        if data:
            data[change[1] % len(data)] = change[2]
            if change[3]:
                del data[change[1] % len(data):]
        _overwrite(path, bytes(data))
    elif kind == "replace":
        path = directory / change[1]
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        {
            "dir": lambda: path.mkdir(),
            "fifo": lambda: os.mkfifo(path),
            "dangling": lambda: path.symlink_to("/nonexistent/attribute"),
            "loop": lambda: path.symlink_to(path.name),
            "missing": lambda: None,
        }[change[2]]()
    elif kind == "eio":
        names = [change[1]] if change[1] != "bInterfaceClass" else [
            os.path.join(e, "bInterfaceClass") for e in os.listdir(directory) if interface_config(e, target) is not None
        ]
        for name in names:
            if (directory / name).is_file():
                info = (directory / name).stat()
                faults.eio.add((info.st_dev, info.st_ino))
    elif kind == "vanish":
        faults.vanish.setdefault(change[1], []).append(directory)
        return {name for name, other in devices.items() if other == directory or directory in other.parents}
    return {target}


def _add_junk(root: Path, kinds: List[str]) -> None:
    top = root / "bus" / "usb" / "devices"
    for number, kind in enumerate(kinds, start=1):
        path = top / f"9-{number}"
        if kind == "dangling":
            path.symlink_to("../../../devices/gone/9-1")
        elif kind == "loop":
            path.symlink_to(path.name)
        elif kind == "file":
            path.write_bytes(b"not a device\n")
        elif kind == "fifo":
            os.mkfifo(path)
        else:
            path.mkdir()
            (path / "idVendor").write_bytes(b"zzzz\n")
            (path / "idProduct").write_bytes(b"\xff\xff\n")


@scaled(2)
@given(
    st.lists(st.tuples(st.integers(0, 63), mutation), min_size=1, max_size=5),
    junk,
    st.booleans(),
)
def test_broken_devices_never_cost_other_devices_their_labels(changes, junk_kinds, serial):
    count("usb-tree")
    root = SCRATCH / "sysfs"
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(EDGE_NODE, root, symlinks=True)
    devices = _devices(root)
    names = sorted(devices)
    faults = _Faults()
    affected: Set[str] = set()
    for index, change in changes:
        event(change[0])
        affected |= _break(root, names[index % len(names)], change, faults, devices)
    _add_junk(root, junk_kinds)
    options = _options(root, serial)
    with ExitStack() as stack:
        faults.patches(stack)
        during = _details(options)  # the racy scan: devices vanish while it reads
        content = check_scan(options)  # and once they are gone, the settled tree
    assert content is not None, "a sysfs tree must never fail the scan"
    for name, labels in BASELINE[serial].items():
        if name not in affected:
            assert during.get(name) == labels, f"{name} lost its labels to a broken neighbour"
