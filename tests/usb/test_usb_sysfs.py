"""The plain sysfs reader on the kernel-shaped fixture tree and on hand-made oddities."""

import os
import shutil

import pytest
from pathlib import Path

from nfd_hooks.sources.usb.model import UsbDevice
from nfd_hooks.sources.usb.sysfs import ATTRIBUTES, read_devices
from tests.conftest import FIXTURES

TREE = FIXTURES / "usb" / "edge-node"

# What the fixture tree holds (fixtures/usb/README.md), written out by hand.
EXPECTED = [
    UsbDevice("1-1", "05e3", "0608", "09", ("09",), None),
    UsbDevice("1-1.1", "046d", "082d", "ef", ("01", "0e"), "5A3E1F2B"),
    UsbDevice("1-1.2", "0781", "5567", "00", ("08",), "4C530001230607119573"),
    UsbDevice("1-1.3", "0403", "6001", "00", ("ff",), "A50285BI"),  # from descriptors only
    UsbDevice("1-2", "1a6e", "089a", "00", ("fe",), None),
    UsbDevice("2-1", "03e7", "2485", "00", ("ff",), "03e72485"),
    UsbDevice("2-2", "18d1", "9302", "00", ("ff",), None),
    UsbDevice("2-3", "0b95", "1790", "ff", ("ff",), "0000249B0F4D21"),
    UsbDevice("usb1", "1d6b", "0002", "09", ("09",), "0000:00:14.0"),
    UsbDevice("usb2", "1d6b", "0003", "09", ("09",), "0000:00:14.0"),
]


def test_fixture_tree_devices():
    devices, notices = read_devices(str(TREE))
    assert devices == EXPECTED  # 1-1.4 (no idProduct) and every interface entry are skipped
    assert notices == []


def test_serials_are_read_only_when_asked(tmp_path):
    """Without the serial label field no serial file is opened: an unreadable one is no notice."""
    copy = tmp_path / "sys"
    shutil.copytree(TREE, copy, symlinks=True)
    for serial in (copy / "devices").rglob("serial"):
        serial.unlink()
        serial.mkdir()  # reading this would skip the device with a notice
    devices, notices = read_devices(str(copy), with_serial=False)
    assert devices == [device._replace(serial=None) for device in EXPECTED]
    assert notices == []
    assert read_devices(str(TREE), with_serial=False)[0] == [device._replace(serial=None) for device in EXPECTED]


def test_fixture_tree_is_kernel_shaped():
    links = TREE / "bus" / "usb" / "devices"
    for entry in links.iterdir():
        assert entry.is_symlink() and not os.readlink(entry).startswith("/")
        assert entry.resolve().is_relative_to((TREE / "devices").resolve())
    webcam_interface = links / "1-1.1:1.1"
    assert webcam_interface.resolve().parent == (links / "1-1.1").resolve()
    assert (links / "1-0:1.0").resolve().parent == (links / "usb1").resolve()


def test_only_the_listed_attributes_are_needed(tmp_path):
    """A copy keeping only ATTRIBUTES (what a capture copies) reads the same."""
    copy = tmp_path / "sys"
    shutil.copytree(TREE, copy, symlinks=True)
    for path in (copy / "devices").rglob("*"):
        if path.is_file() and not path.is_symlink() and path.name not in ATTRIBUTES:
            path.unlink()
    assert read_devices(str(copy)) == (EXPECTED, [])


def _device(root: Path, name: str, **attributes: bytes) -> Path:
    path = root / "devices" / name
    path.mkdir(parents=True)
    for attr, value in attributes.items():
        (path / attr).write_bytes(value)
    links = root / "bus" / "usb" / "devices"
    links.mkdir(parents=True, exist_ok=True)
    (links / name).symlink_to(f"../../../devices/{name}")
    return path


def test_values_without_newline_and_with_spaces(tmp_path):
    _device(tmp_path, "3-1", idVendor=b"03E7", idProduct=b" 2485 ", bDeviceClass=b"FF", serial=b"  x \n")
    devices, _ = read_devices(str(tmp_path))
    assert devices == [UsbDevice("3-1", "03e7", "2485", "ff", (), "x")]


def test_a_device_without_idvendor_is_read_as_nfd_reads_it(tmp_path):
    """NFD lists every entry with an idProduct and leaves a missing or empty idVendor an empty field."""
    _device(tmp_path, "3-1", idProduct=b"089a\n", bDeviceClass=b"fe\n")
    _device(tmp_path, "3-2", idVendor=b"\n", idProduct=b"9302\n", bDeviceClass=b"ff\n")
    _device(tmp_path, "3-3", idVendor=b"1a6e\n", bDeviceClass=b"fe\n")  # no idProduct: NFD does not list it
    assert read_devices(str(tmp_path)) == (
        [UsbDevice("3-1", "", "089a", "fe", (), None), UsbDevice("3-2", "", "9302", "ff", (), None)], []
    )


@pytest.mark.parametrize("raw,serial", [
    (b"ABC-\n", "ABC-"),
    ("\u00a0ABC\u3000\n".encode(), "ABC"),  # Go's TrimSpace strips Unicode spaces
    (b"ABC\x1c\n", "ABC\x1c"),  # ... but not the separators Python's str.strip takes too
    (b" \n", None),
])
def test_a_serial_is_trimmed_as_nfd_trims_it(tmp_path, raw, serial):
    _device(tmp_path, "3-1", idVendor=b"03e7\n", idProduct=b"2485\n", bDeviceClass=b"ff\n", serial=raw)
    assert read_devices(str(tmp_path))[0][0].serial == serial


def test_only_the_active_configuration_counts(tmp_path):
    path = _device(tmp_path, "3-1", idVendor=b"1234\n", idProduct=b"5678\n", bDeviceClass=b"00\n",
                   bConfigurationValue=b"2\n")
    for name, cls in (("3-1:1.0", b"08\n"), ("3-1:2.0", b"ff\n"), ("3-1:2.1", b"0e\n")):
        (path / name).mkdir()
        (path / name / "bInterfaceClass").write_bytes(cls)
    devices, _ = read_devices(str(tmp_path))
    assert devices[0].interface_classes == ("0e", "ff")


def test_unreadable_interface_is_skipped_with_a_notice(tmp_path):
    path = _device(tmp_path, "3-1", idVendor=b"1234\n", idProduct=b"5678\n", bDeviceClass=b"00\n",
                   bConfigurationValue=b"1\n")
    (path / "3-1:1.0").mkdir()
    (path / "3-1:1.0" / "bInterfaceClass").mkdir()  # a directory: cannot be read, even by root
    (path / "3-1:1.1").mkdir()
    (path / "3-1:1.1" / "bInterfaceClass").write_bytes(b"fe\n")
    devices, notices = read_devices(str(tmp_path))
    assert devices[0].interface_classes == ("fe",)
    assert len(notices) == 1 and "3-1:1.0" in notices[0]


def test_fifo_attribute_does_not_hang(tmp_path):
    path = _device(tmp_path, "3-1", idVendor=b"1234\n", bDeviceClass=b"00\n")
    os.mkfifo(path / "idProduct")
    devices, notices = read_devices(str(tmp_path))
    assert devices == [] and "not a regular file" in notices[0]


def test_unconfigured_device_has_no_interface_classes(tmp_path):
    descriptors = (TREE / "devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1.3/descriptors").read_bytes()
    _device(tmp_path, "3-1", idVendor=b"0403\n", idProduct=b"6001\n", bDeviceClass=b"00\n",
            bConfigurationValue=b"\n", descriptors=descriptors)
    _device(tmp_path, "3-2", idVendor=b"0403\n", idProduct=b"6001\n", bDeviceClass=b"00\n",
            descriptors=descriptors)  # bConfigurationValue not recorded: its only configuration counts
    devices, _ = read_devices(str(tmp_path))
    assert [d.interface_classes for d in devices] == [(), ("ff",)]


def test_malformed_ids_are_skipped_with_a_notice(tmp_path):
    _device(tmp_path, "3-1", idVendor=b"zz\n", idProduct=b"5678\n", bDeviceClass=b"00\n")
    devices, notices = read_devices(str(tmp_path))
    assert devices == [] and "3-1" in notices[0]


def test_no_usb_bus(tmp_path):
    devices, notices = read_devices(str(tmp_path))
    assert devices == [] and "no USB bus" in notices[0]


def _copy(tmp_path):
    copy = tmp_path / "sys"
    shutil.copytree(TREE, copy, symlinks=True)
    return copy


def _device_dir(root, name):
    return Path(os.path.realpath(root / "bus" / "usb" / "devices" / name))


def test_an_attribute_that_is_a_symlink_is_never_followed(tmp_path):
    """Real sysfs attributes are regular files; a link to a secret must not become a label."""
    secret = tmp_path / "secret"
    secret.write_text("TOPSECRET\n")
    root = _copy(tmp_path)
    serial = _device_dir(root, "1-1.1") / "serial"
    serial.unlink()
    serial.symlink_to(secret)
    devices, notices = read_devices(str(root))
    webcam = next(d for d in devices if d.bus_path == "1-1.1")
    assert webcam == EXPECTED[1]._replace(serial=None)  # kept, with the serial left empty
    shown = root / "bus" / "usb" / "devices" / "1-1.1" / "serial"
    assert notices == [f"USB device 1-1.1: serial left empty: {shown}: a symbolic link (not followed)"]


def test_a_device_link_leading_outside_the_sysfs_root_is_skipped(tmp_path):
    outside = tmp_path / "outside"
    shutil.copytree(_device_dir(TREE, "2-1"), outside, symlinks=True)
    root = _copy(tmp_path)
    (root / "bus" / "usb" / "devices" / "9-9").symlink_to("../../../../outside")
    devices, notices = read_devices(str(root))
    assert devices == EXPECTED
    assert len(notices) == 1 and notices[0].startswith("skipped USB device 9-9: ") and "outside" in notices[0]


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "loop", "directory"])
def test_an_unreadable_optional_attribute_keeps_the_device(tmp_path, kind):
    """serial, bConfigurationValue and descriptors do not decide a device's labels:
    unreadable, they are left empty with a notice, and the device stays (so the
    JSON view, which reads serials, lists the same devices as the file)."""
    root = _copy(tmp_path)
    for attribute in ("serial", "bConfigurationValue"):
        path = _device_dir(root, "2-1") / attribute
        path.unlink()
        {"fifo": lambda: os.mkfifo(path), "dev-zero": lambda: path.symlink_to("/dev/zero"),
         "loop": lambda: path.symlink_to(path.name), "directory": lambda: path.mkdir()}[kind]()
    devices, notices = read_devices(str(root))
    assert [d.bus_path for d in devices] == [d.bus_path for d in EXPECTED]
    ncs2 = next(d for d in devices if d.bus_path == "2-1")
    assert ncs2 == EXPECTED[5]._replace(serial=None)
    assert [n.split(":")[0] for n in notices] == ["USB device 2-1"] * 2
    assert all(" left empty: " in n for n in notices)


@pytest.mark.parametrize(
    "attribute,content,message",
    [
        ("bDeviceClass", None, "no bDeviceClass"),
        ("idVendor", b"zzzz\n", "idVendor 'zzzz' is not 4 hex digits"),
        ("bDeviceClass", b"0\n", "bDeviceClass '0' is not 2 hex digits"),
    ],
)
def test_a_bad_id_says_which_and_what(tmp_path, attribute, content, message):
    root = _copy(tmp_path)
    path = _device_dir(root, "2-1") / attribute
    path.unlink()
    if content is not None:
        path.write_bytes(content)
    devices, notices = read_devices(str(root))
    assert "2-1" not in [d.bus_path for d in devices]
    assert notices == [f"skipped USB device 2-1: {message}"]
