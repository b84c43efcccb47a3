"""Label rules, options and backend choice, on records written by hand."""

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nfd_hooks.errors import InputError
from nfd_hooks.nfdfile import label_problem
from nfd_hooks.sources.usb import UsbDevice, UsbOptions, discover, source
from nfd_hooks.sources.usb.source import check_options, parse_class, parse_label_fields

P = "feature.node.kubernetes.io/"
NCS2 = UsbDevice("2-1", "03e7", "2485", "00", ("ff",), "03e72485")
WEBCAM = UsbDevice("1-1.1", "046d", "082d", "ef", ("01", "0e"), "5A3E1F2B")
HUB = UsbDevice("1-1", "05e3", "0608", "09", ("09",))
STICK = UsbDevice("1-1.2", "0781", "5567", "00", ("08",), "4C530001230607119573")
ASIX = UsbDevice("2-3", "0b95", "1790", "ff", ("ff",))


def labels(devices, **options):
    return sorted(f.name for f in discover(UsbOptions(**options), devices).features)


def test_default_rules():
    assert labels([NCS2, WEBCAM, HUB, STICK, ASIX]) == [
        P + "usb-0e_046d_082d.present",  # the webcam's video interface, behind its ef device class
        P + "usb-ef_046d_082d.present",
        P + "usb-ff_03e7_2485.present",
        P + "usb-ff_0b95_1790.present",  # device ff and interface ff: one label
    ]


def test_allowlist_replaces_the_default():
    assert labels([NCS2, WEBCAM, HUB, STICK], allowlist=("08", "FF", "ff")) == [
        P + "usb-08_0781_5567.present",
        P + "usb-ff_03e7_2485.present",
    ]


def test_names_only_when_asked():
    details = discover(UsbOptions(), [NCS2]).details
    assert "usb_ids" not in details and "vendor_name" not in details["devices"][0]


def test_device_class_00_never_labels_by_itself():
    assert labels([UsbDevice("3-1", "1234", "5678", "00", ())], allowlist=("00",)) == []


def test_label_fields_follow_nfd_order_and_collapse():
    assert labels([WEBCAM], label_fields=("device", "vendor")) == [P + "usb-046d_082d.present"]
    assert labels([NCS2], label_fields=("serial,class", "vendor", "device")) == [
        P + "usb-ff_03e7_2485_03e72485.present"
    ]


def test_missing_serial_leaves_an_empty_field_as_nfd_does():
    assert labels([UsbDevice("2-2", "18d1", "9302", "00", ("ff",))], label_fields=("class", "vendor", "device", "serial")) == [
        P + "usb-ff_18d1_9302_.present"
    ]


SERIAL_FIELDS = ("class", "vendor", "device", "serial")


def with_serial(serial):
    return UsbDevice("3-1", "03e7", "2485", "ff", ("fe",), serial)


@pytest.mark.parametrize("serial", ["ABC-", "-ABC", "a..b", "A_B", "0", "x" * 38])
def test_the_serial_is_used_as_read_as_nfd_uses_it(serial):
    """NFD puts the serial into the label unchanged: so do we, the key is NFD's."""
    assert labels([with_serial(serial)], label_fields=SERIAL_FIELDS) == [
        P + f"usb-fe_03e7_2485_{serial}.present", P + f"usb-ff_03e7_2485_{serial}.present",
    ]


@pytest.mark.parametrize("serial", ["A B", "a/b", "C767F1C7:14", "x" * 39, "ä", "AB,C"])
def test_a_serial_nfd_cannot_label_leaves_the_label_out_with_a_notice(serial):
    """NFD's worker drops such a label; we leave it out too, never change it into another key."""
    report = discover(UsbOptions(label_fields=SERIAL_FIELDS), [with_serial(serial), NCS2])
    assert [f.name for f in report.features] == [P + "usb-ff_03e7_2485_03e72485.present"]
    assert len(report.notices) == 2
    assert all(n.startswith("USB device 3-1: 'usb-f") and "not a valid label name" in n for n in report.notices)
    assert report.details["devices"][1]["no_label"] == "its serial makes no valid label name (NFD drops it too)"


def test_no_serial_field_no_serial_problem():
    assert labels([with_serial("A B")]) == [P + "usb-fe_03e7_2485.present", P + "usb-ff_03e7_2485.present"]


def test_a_device_without_idvendor_is_labelled_with_an_empty_field_as_nfd_does():
    assert labels([UsbDevice("2-2", "", "089a", "00", ("fe",))]) == [P + "usb-fe__089a.present"]


@settings(deadline=None)
@given(st.text(max_size=80))
def test_any_serial_gives_a_valid_label_holding_it_or_none(serial):
    names = labels([with_serial(serial)], label_fields=SERIAL_FIELDS)
    assert names in ([], [P + f"usb-fe_03e7_2485_{serial}.present", P + f"usb-ff_03e7_2485_{serial}.present"])
    for name in names:
        assert label_problem(name, "true") is None


@pytest.mark.parametrize("text", ["ff", "FF", "0E", "0e", "08"])
def test_class_accepts_two_hex_digits(text):
    assert parse_class(text) == text.lower()


@pytest.mark.parametrize("text", ["zz", "f", "0xff", "fff", "", " ff", "ff\n", "٠٠"])
def test_class_rejects_anything_else(text):
    with pytest.raises(InputError, match="--usb-class"):
        parse_class(text)


def test_label_fields_rejects_unknown_names():
    with pytest.raises(InputError, match="product"):
        parse_label_fields(["class,product"])
    with pytest.raises(InputError):
        parse_label_fields([","])


def test_backend_checks():
    with pytest.raises(InputError, match="--usb-backend"):
        check_options(UsbOptions(backend="hid"))
    for backend in ("udev", "libusb"):  # both read the live machine: refused, never silently mixed up
        with pytest.raises(InputError, match=f"--usb-backend {backend} reads this machine's devices only"):
            check_options(UsbOptions(backend=backend, sysfs=Path("/host-sys")))


@pytest.fixture
def host(monkeypatch, tmp_path):
    """A fake live host: /sys, /run/udev and /dev/bus/usb under tmp_path, no container marks."""
    monkeypatch.setattr(source, "LIVE_SYSFS", tmp_path / "sys")
    monkeypatch.setattr(source, "UDEV_RUNTIME", tmp_path / "run-udev")
    monkeypatch.setattr(source, "DEV_BUS_USB", tmp_path / "dev-bus-usb")
    monkeypatch.setattr(source, "in_container", lambda: False)
    (tmp_path / "sys").mkdir()
    return tmp_path


def test_auto_backend_choice(host, monkeypatch):
    live = UsbOptions(sysfs=host / "sys")
    assert source.choose_backend(live) == "sysfs"  # nothing at all
    (host / "dev-bus-usb").mkdir()
    assert source.choose_backend(live) == "libusb"  # usbfs without sysfs USB
    (host / "sys" / "bus" / "usb").mkdir(parents=True)
    assert source.choose_backend(live) == "sysfs"  # no udev runtime
    (host / "run-udev").mkdir()
    assert source.choose_backend(live) == "udev"
    assert source.choose_backend(UsbOptions(sysfs=host / "elsewhere")) == "sysfs"  # a named root
    monkeypatch.setattr(source, "in_container", lambda: True)
    assert source.choose_backend(live) == "sysfs"


def test_failing_backend_falls_back_to_sysfs(host, monkeypatch):
    from nfd_hooks.sources.usb import udev

    tree = Path(__file__).resolve().parents[2] / "fixtures" / "usb" / "edge-node"
    monkeypatch.setattr(source, "LIVE_SYSFS", tree)

    def broken(with_serial):
        raise OSError("libudev.so.1: cannot open shared object file")

    monkeypatch.setattr(udev, "read_devices", broken)
    report = discover(UsbOptions(sysfs=tree, backend="udev"))
    assert report.details["backend"] == "sysfs"
    assert report.notices[0].startswith("USB backend udev failed (libudev.so.1")
    assert P + "usb-ff_03e7_2485.present" in [f.name for f in report.features]
