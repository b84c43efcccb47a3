"""Naming USB devices without usb.ids (issue 26, item 5): a laptop, or our image, which lacks it.

Before, every VENDOR PRODUCT cell was '?', the class legend vanished and nothing said why. Now:
usb.ids when installed, else the device's own strings, else the catalog's name; USB-IF class names
shipped; one hint on where usb.ids comes from. On the real recordings in ../shared (read there, under
umockdev) and on the fixtures.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, Optional, Tuple

import pytest

from nfd_hooks import cli
from nfd_hooks.bundle import open_bundle
from nfd_hooks.capture import capture
from nfd_hooks.sources.usb import ids, sysfs
from nfd_hooks.sources.usb.ids import USB_IDS_HINT, USB_IDS_PATHS
from tests.cli.test_table import cells, words
from tests.conftest import FIXTURES, ROOT, SHARED, require_tool

EDGE_NODE = FIXTURES / "usb" / "edge-node"
SAMPLE = FIXTURES / "nodes" / "rpi4b-ncs2-webcam"
RECORDINGS = SHARED / "usb-recordings"
HINT = f"Names: {USB_IDS_HINT}; from the devices' own strings and the accelerator catalog."


@pytest.fixture
def no_usb_ids(monkeypatch):
    monkeypatch.setattr(ids, "USB_IDS_PATHS", ())


def table(capsys, *args: str) -> str:
    assert cli.run(["show", "--format", "table", *args]) == 0
    return capsys.readouterr().out


def name_of(text: str, bus_path: str) -> str:
    return words(cells(text, bus_path)["VENDOR PRODUCT"])


def test_without_usb_ids_devices_are_named_by_their_own_strings_and_the_catalog(no_usb_ids, capsys):
    shown = table(capsys, "--sysfs", str(EDGE_NODE), "--no-devicetree")
    assert words(shown.splitlines()).count(HINT) == 1  # said once, above the devices
    assert name_of(shown, "1-1.1") == "HD Pro Webcam C920"  # a product string, no manufacturer string
    assert name_of(shown, "1-1.2") == "SanDisk Cruzer Blade"  # ' SanDisk': trimmed as NFD trims
    assert name_of(shown, "2-1") == "Movidius Ltd. Movidius MyriadX"
    assert name_of(shown, "1-2") == name_of(shown, "2-2") == "Google Coral Edge TPU"  # no strings: the catalog's name
    assert name_of(shown, "usb1") == "Linux 6.1.0-28-arm64 xhci-hcd xHCI Host Controller"
    legend = words(shown.split("Classes: ", 1)[1].split("\n\n", 1)[0].splitlines())
    assert legend == ("00 Use class information in the Interface Descriptors, 01 Audio, 08 Mass Storage, 09 Hub, "
                      "0e Video, ef Miscellaneous, fe Application Specific, ff Vendor Specific.")


def test_a_bundle_without_strings_names_the_catalogs_devices(no_usb_ids, capsys):
    shown = table(capsys, "--replay", str(SAMPLE))
    assert name_of(shown, "2-1") == "Intel Movidius VPU (Neural Compute Stick)"  # the NCS2, from the catalog
    assert name_of(shown, "1-1.3") == "?"  # the webcam: captured before strings were, and in no catalog
    assert HINT in words(shown.splitlines())


def test_with_usb_ids_its_names_come_first_and_no_hint(capsys):
    if not any(path.is_file() for path in USB_IDS_PATHS):
        pytest.skip("usb.ids not installed (Debian package usb.ids)")
    shown = table(capsys, "--sysfs", str(EDGE_NODE), "--no-devicetree")
    assert "usb.ids not found" not in shown
    assert name_of(shown, "2-1") == "Intel Movidius MyriadX"  # usb.ids over the device's 'Movidius Ltd.'
    assert name_of(shown, "1-2") == "Google Coral Edge TPU"  # before: 'Global Unichip Corp. ?'


def test_json_gives_each_source_of_names(no_usb_ids, capsys):
    assert cli.run(["show", "--format", "json", "--sysfs", str(EDGE_NODE), "--no-devicetree"]) == 0
    usb = json.loads(capsys.readouterr().out)["sources"]["usb"]
    assert usb["usb_ids"] is None
    ncs2 = next(device for device in usb["devices"] if device["bus_path"] == "2-1")
    assert (ncs2["vendor_name"], ncs2["product_name"]) == (None, None)
    assert (ncs2["manufacturer"], ncs2["product_string"]) == ("Movidius Ltd.", "Movidius MyriadX")
    assert ncs2["class_names"] == {"00": "Use class information in the Interface Descriptors", "ff": "Vendor Specific"}


def test_capture_records_the_strings_never_the_serials(no_usb_ids, tmp_path, capsys):
    capture(tmp_path / "bundle", EDGE_NODE)
    open_bundle(tmp_path / "bundle")  # replay accepts what capture wrote
    names = {path.name for path in (tmp_path / "bundle" / "sys").rglob("*") if path.is_file()}
    assert {"manufacturer", "product"} <= names and "serial" not in names
    live = table(capsys, "--sysfs", str(EDGE_NODE), "--no-devicetree")
    replayed = table(capsys, "--replay", str(tmp_path / "bundle"), "--no-devicetree")
    for bus_path in ("1-1", "1-1.1", "1-1.2", "1-1.3", "1-2", "2-1", "2-2", "2-3", "usb1", "usb2"):
        assert name_of(replayed, bus_path) == name_of(live, bus_path), bus_path


def test_strings_are_read_as_the_labels_attributes_are(tmp_path):
    """Confined to the sysfs root, never through a symlink, bounded; nothing of it blocks or fails the scan."""
    root = tmp_path / "sys"
    shutil.copytree(EDGE_NODE, root, symlinks=True)
    ncs2 = next(path for path in (root / "devices").rglob("2-1") if path.is_dir())
    webcam = next(path for path in (root / "devices").rglob("1-1.1") if path.is_dir())
    (ncs2 / "product").unlink()
    (ncs2 / "product").symlink_to("/etc/hostname")
    (ncs2 / "manufacturer").write_bytes("Ä".encode() * 4000)
    os.mkfifo(webcam / "manufacturer")  # the webcam has no manufacturer string: a FIFO in its place must not block
    strings = sysfs.read_strings(str(root), ["2-1", "1-1.1", "9-9"])
    manufacturer, product = strings["2-1"]
    assert product is None and len(manufacturer.encode()) <= sysfs.MAX_STRING and manufacturer.startswith("ÄÄ")
    assert strings["1-1.1"] == (None, "HD Pro Webcam C920")
    assert "9-9" not in strings


def recorded_names(recording: Path) -> Dict[str, Tuple[Optional[str], Optional[str]]]:
    """Each USB device's manufacturer and product strings, read from the umockdev file itself."""
    devices: Dict[str, Dict[str, str]] = {}
    current: Dict[str, str] = {}
    for line in recording.read_text().splitlines():
        if line.startswith("P: "):
            current = devices.setdefault(line[3:].rsplit("/", 1)[1], {})
        elif line.startswith("A: ") and "=" in line:
            key, _, value = line[3:].partition("=")
            current[key] = value.replace("\\n", "\n").strip()
    return {name: (a.get("manufacturer") or None, a.get("product") or None) for name, a in devices.items() if "idVendor" in a}


@pytest.mark.parametrize("name", [
    "libfprint-elan.umockdev", "libfprint-goodixmoc.umockdev", "libfprint-synaptics.umockdev",
    "libfprint-vfs5011.umockdev", "umockdev-canon-powershot-sx200.umockdev", "umockdev-fido2.umockdev",
    "umockdev-sony-xperia-mini-pro.umockdev", "umockdev-usbkbd.umockdev",
])
def test_real_recordings_are_named_by_what_the_devices_said(name):
    recording = RECORDINGS / name
    if not recording.is_file():
        pytest.skip(f"{RECORDINGS} absent: the shared real recordings are not on this machine")
    require_tool("umockdev-run")
    code = (
        "import sys; import nfd_hooks.sources.usb.ids as ids; ids.USB_IDS_PATHS = (); "  # a machine without usb.ids
        "from nfd_hooks.cli import run; sys.exit(run(['show', '--format', 'table', '--no-devicetree']))"
    )
    done = subprocess.run(["umockdev-run", "-d", str(recording), "--", sys.executable, "-c", code],
                          capture_output=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr.decode()
    shown = done.stdout.decode()
    expected = recorded_names(recording)
    assert expected and HINT in words(shown.splitlines())
    for bus_path, (manufacturer, product) in expected.items():
        said = " ".join(part for part in (manufacturer, product) if part) if product else None
        want = said or (f"{manufacturer} ?" if manufacturer else "?")
        assert "".join(name_of(shown, bus_path).split()) == "".join(want.split()), bus_path  # wrapped anywhere
    assert re.search(r"^Classes: ", shown, re.MULTILINE)
