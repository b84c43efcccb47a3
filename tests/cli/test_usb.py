"""The issue's acceptance, through the command line as a user runs it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nfd_hooks.sources.usb.ids import USB_IDS_PATHS
from tests.conftest import DTB_DIR, FIXTURES, run_cli

TREE = FIXTURES / "usb" / "edge-node"
P = "feature.node.kubernetes.io/"

# The rules of docs/usb.md applied by hand to fixtures/usb/README.md's devices.
DEFAULT_LABELS = [
    P + "usb-0e_046d_082d.present=true",  # webcam: video interface
    P + "usb-ef_046d_082d.present=true",  # webcam: device class
    P + "usb-fe_1a6e_089a.present=true",  # Coral before its firmware
    P + "usb-ff_03e7_2485.present=true",  # NCS2
    P + "usb-ff_0403_6001.present=true",  # FT232R, interface only in descriptors
    P + "usb-ff_0b95_1790.present=true",  # AX88179, device class ff
    P + "usb-ff_18d1_9302.present=true",  # Coral after its firmware
]


def label_lines(output: bytes):
    return [line for line in output.decode().splitlines() if line and not line.startswith("#")]


def test_default_labels():
    result = run_cli(["show", "--sysfs", str(TREE), "--no-devicetree", "--no-accelerators"])
    assert result.returncode == 0, result.stderr
    assert label_lines(result.stdout) == DEFAULT_LABELS
    assert result.stderr == b""


def test_class_allowlist():
    result = run_cli(
        ["show", "--sysfs", str(TREE), "--no-devicetree", "--no-accelerators", "--usb-class", "08", "--usb-class", "FF"]
    )
    assert result.returncode == 0, result.stderr
    assert label_lines(result.stdout) == [
        P + "usb-08_0781_5567.present=true",
        P + "usb-ff_03e7_2485.present=true",
        P + "usb-ff_0403_6001.present=true",
        P + "usb-ff_0b95_1790.present=true",
        P + "usb-ff_18d1_9302.present=true",
    ]


@pytest.mark.parametrize(
    "args",
    [["--usb-class", "zz"], ["--usb-class", "0x0e"], ["--usb-label-fields", "class,product"], ["--usb-backend", "hid"],
     ["--usb-backend", "udev"]],
)
def test_bad_usb_flags_exit_2_with_one_line(args):
    result = run_cli(["show", "--sysfs", str(TREE), "--no-devicetree", *args])
    assert result.returncode == 2
    assert result.stdout == b""
    assert len(result.stderr.decode().splitlines()) == 1
    assert b"Traceback" not in result.stderr


def test_label_fields_with_serial():
    result = run_cli(["show", "--sysfs", str(TREE), "--no-devicetree", "--usb-label-fields", "vendor,device,serial"])
    assert result.returncode == 0, result.stderr
    assert P + "usb-03e7_2485_03e72485.present=true" in label_lines(result.stdout)
    assert P + "usb-18d1_9302_.present=true" in label_lines(result.stdout)


def test_node_without_usb_is_success(tmp_path):
    result = run_cli(["show", "--sysfs", str(tmp_path), "--no-devicetree"])
    assert result.returncode == 0
    assert label_lines(result.stdout) == []
    assert b"no USB bus" in result.stderr


def test_missing_sysfs_root_is_bad_input(tmp_path):
    result = run_cli(["show", "--sysfs", str(tmp_path / "nope"), "--no-devicetree"])
    assert result.returncode == 2 and b"no such sysfs directory" in result.stderr


def test_one_write_holds_devicetree_and_usb_labels(tmp_path):
    result = run_cli(["write", "--sysfs", str(TREE), "--devicetree", str(DTB_DIR / "rpi-4-b.dtb"),
                      "--features-dir", str(tmp_path)])
    assert result.returncode == 0, result.stderr
    lines = label_lines((tmp_path / "nfd-hooks").read_bytes())
    assert "beta.devicetree.org/raspberrypi-4-model-b=1" in lines
    assert set(DEFAULT_LABELS) <= set(lines)


def test_json_lists_every_device():
    result = run_cli(["show", "--sysfs", str(TREE), "--no-devicetree", "--format", "json"])
    assert result.returncode == 0, result.stderr
    usb = json.loads(result.stdout)["sources"]["usb"]
    assert usb["backend"] == "sysfs"
    by_path = {d["bus_path"]: d for d in usb["devices"]}
    assert sorted(by_path) == ["1-1", "1-1.1", "1-1.2", "1-1.3", "1-2", "2-1", "2-2", "2-3", "usb1", "usb2"]
    webcam = by_path["1-1.1"]
    assert (webcam["vendor"], webcam["product"], webcam["device_class"]) == ("046d", "082d", "ef")
    assert webcam["interface_classes"] == ["01", "0e"]
    assert webcam["labels"] == [P + "usb-0e_046d_082d.present", P + "usb-ef_046d_082d.present"]
    assert by_path["1-1"]["labels"] == []
    if not any(Path(p).is_file() for p in USB_IDS_PATHS):
        pytest.skip("usb.ids not installed (Debian package usb.ids): names not checked")
    # names as /usr/share/misc/usb.ids 2025.07.26 has them
    assert (webcam["vendor_name"], webcam["product_name"]) == ("Logitech, Inc.", "HD Pro Webcam C920")
    assert webcam["class_names"] == {"01": "Audio", "0e": "Video", "ef": "Miscellaneous"}  # USB-IF's, shipped
    coral = by_path["2-2"]
    assert (coral["vendor_name"], coral["product_name"]) == ("Google Inc.", None)  # 9302 is not listed
    assert (by_path["2-1"]["vendor_name"], by_path["2-1"]["product_name"]) == ("Intel", "Movidius MyriadX")
    assert usb["usb_ids"] is not None


def test_json_shows_serials_that_the_labels_do_not_read():
    """The features file needs no serial (none is read); the JSON account shows them."""
    result = run_cli(["show", "--sysfs", str(TREE), "--no-devicetree", "--format", "json"])
    assert result.returncode == 0, result.stderr
    matches = json.loads(result.stdout)["sources"]["accelerators"]["matches"]
    ncs2 = [device for match in matches for device in match["usb"] if device["bus_path"] == "2-1"]
    assert ncs2 == [{"bus_path": "2-1", "id": "03e7:2485", "serial": "03e72485", "ready": False}]


def test_sysfs_path_imports_neither_pyudev_nor_pyusb():
    code = (
        "import sys; from pathlib import Path; from nfd_hooks import api; "
        f"r = api.scan(api.Options(sysfs=Path({str(TREE)!r}), use_devicetree=False, use_accelerators=False)); "
        "assert len(r.features) == 7; "
        "print(sorted(m for m in ('pyudev', 'usb.core', 'nfd_hooks.sources.usb.ids') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == b"[]"
