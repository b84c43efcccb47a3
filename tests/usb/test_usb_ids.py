"""usb.ids names: the real Debian file when present, and its absence."""

from pathlib import Path

import pytest

from nfd_hooks.sources.usb.ids import USB_IDS_PATHS, load_names, parse


def test_absent_file_means_no_names(tmp_path):
    assert load_names(["03e7"], [tmp_path / "usb.ids"]) is None


def test_real_file():
    if not any(p.is_file() for p in USB_IDS_PATHS):
        pytest.skip("usb.ids not installed (Debian package usb.ids)")
    names = load_names(["03e7", "1a6e", "18d1"])
    assert names.vendors == {"03e7": "Intel", "1a6e": "Global Unichip Corp.", "18d1": "Google Inc."}
    assert names.products[("03e7", "2485")] == "Movidius MyriadX"
    assert ("18d1", "9302") not in names.products
    assert ("03e7", "f63b") in names.products  # other products of a wanted vendor are kept


def test_nothing_after_the_vendors_is_read():
    lines = [
        "# comment\n", "03e7  Intel\n", "\t2485  Movidius MyriadX\n", "\t\t00  an interface line\n",
        "C ff  Vendor Specific Class\n", "\t01  subclass\n", "AT 0100  USB Undefined\n", "03e7  Not a vendor\n",
    ]
    names = parse(lines, {"03e7"}, Path("x"))
    assert names.vendors == {"03e7": "Intel"}
    assert names.products == {("03e7", "2485"): "Movidius MyriadX"}
