"""Matching USB devices, PCI functions and devicetree nodes to catalog entries."""

import os
import re
import subprocess
from pathlib import Path

import pytest

from nfd_hooks import api
from nfd_hooks.sources.usb import source as usb_source
from nfd_hooks.sources.accelerators.catalog import load_catalog, parse_catalog
from nfd_hooks.sources.accelerators.pci import PciDevice, read_pci_devices
from nfd_hooks.sources.accelerators.source import DEFAULT_PREFIX, match
from nfd_hooks.sources.usb.model import UsbDevice
from tests.fakehost import add_pci_device
from tests.fakehost import add_usb_xhci as add_usb_device
from tests.conftest import DTB_DIR, require_tool

PREFIX = "accelerator.feature.node.kubernetes.io"

# Real device facts: ids and classes as NFD's USB source sees them (facts.md, usb.ids).
CORAL_UNBOOTED = dict(vendor="1a6e", product="089a", device_class="00", interface_classes=("fe",))
CORAL_BOOTED = dict(vendor="18d1", product="9302", device_class="00", interface_classes=("ff",))
NCS2 = dict(vendor="03e7", product="2485", device_class="00", interface_classes=("ff",))
ROOT_HUB = UsbDevice("usb1", "1d6b", "0002", "09", ("09",))
KEYBOARD = UsbDevice("1-1.4", "05f3", "0007", "00", ("03",))


def labels(report) -> dict:
    return {f.name: f.value for f in report.features}


def run_match(usb=(), pci=(), devicetree=None, catalog=None):
    return match(catalog or load_catalog(), PREFIX, list(usb), list(pci), devicetree or {})


@pytest.mark.parametrize("coral,ready", [(CORAL_UNBOOTED, False), (CORAL_BOOTED, True)], ids=["before-firmware", "after-firmware"])
def test_a_coral_usb_accelerator_either_id_is_an_edgetpu(coral, ready):
    report = run_match(usb=[ROOT_HUB, KEYBOARD, UsbDevice("2-1", **coral)])
    expected = {f"{PREFIX}/edgetpu.present": "true", f"{PREFIX}/edgetpu.count": "1"}
    if ready:  # the firmware is loaded: Google's id
        expected.update({f"{PREFIX}/edgetpu.ready": "true", f"{PREFIX}/edgetpu.ready-count": "1"})
    assert labels(report) == expected
    (found,) = report.details["matches"]
    assert found["id"] == "edgetpu"
    assert found["usb"] == [
        {"bus_path": "2-1", "id": f"{coral['vendor']}:{coral['product']}", "serial": None, "ready": ready}
    ]


def test_an_ncs2_is_a_movidius_vpu_and_two_count_two():
    one = run_match(usb=[ROOT_HUB, UsbDevice("1-1", **NCS2)])
    assert labels(one) == {f"{PREFIX}/movidius-vpu.present": "true", f"{PREFIX}/movidius-vpu.count": "1"}
    two = run_match(usb=[ROOT_HUB, UsbDevice("1-1", **NCS2), UsbDevice("1-2", serial="03e72485", **NCS2)])
    assert labels(two)[f"{PREFIX}/movidius-vpu.count"] == "2"


def test_one_device_listed_twice_counts_once():
    stick = UsbDevice("1-1", **NCS2)
    assert labels(run_match(usb=[stick, stick]))[f"{PREFIX}/movidius-vpu.count"] == "1"


def test_a_host_without_accelerators_gets_no_accelerator_label():
    report = run_match(
        usb=[ROOT_HUB, KEYBOARD],
        pci=[PciDevice("0000:00:00.0", "8086", "0d57"), PciDevice("0000:00:02.0", "1af4", "1042")],
        devicetree={"raspberrypi,4-model-b": ["/"], "arm,cortex-a72": ["/cpus/cpu@0"]},
    )
    assert report.features == [] and report.details["matches"] == []


def test_pci_hailo_and_mixed_attachments_are_counted_per_kind():
    report = run_match(
        usb=[UsbDevice("1-1", **CORAL_BOOTED), UsbDevice("1-2", **CORAL_UNBOOTED)],
        pci=[PciDevice("0000:01:00.0", "1e60", "2864"), PciDevice("0000:02:00.0", "1ac1", "089a")],
    )
    assert labels(report) == {
        f"{PREFIX}/edgetpu.present": "true",
        f"{PREFIX}/edgetpu.count": "3",
        f"{PREFIX}/edgetpu.ready": "true",  # the booted USB stick; no PCI driver is bound here
        f"{PREFIX}/edgetpu.ready-count": "1",
        f"{PREFIX}/hailo.present": "true",
        f"{PREFIX}/hailo.count": "1",
    }


def test_a_board_tpu_seen_both_in_the_devicetree_and_on_pci_counts_once():
    """The Coral Dev Board's Edge TPU is on the SoM's PCIe: root compatible and PCI are one device."""
    board = {"google,imx8mq-phanbell": ["/"]}
    tpu = PciDevice("0000:01:00.0", "1ac1", "089a")
    assert labels(run_match(devicetree=board))[f"{PREFIX}/edgetpu.count"] == "1"
    assert labels(run_match(devicetree=board, pci=[tpu]))[f"{PREFIX}/edgetpu.count"] == "1"
    stick = UsbDevice("1-1", **CORAL_BOOTED)
    assert labels(run_match(devicetree=board, pci=[tpu], usb=[stick]))[f"{PREFIX}/edgetpu.count"] == "2"


def test_devicetree_counts_nodes_not_strings():
    both = {"google,imx8mq-phanbell": ["/"], "fsl,imx8mq-phanbell": ["/"]}
    assert labels(run_match(devicetree=both))[f"{PREFIX}/edgetpu.count"] == "1"
    gpus = {"nvidia,gv11b": ["/bus@0/gpu@17000000", "/gpu@57000000"]}
    assert labels(run_match(devicetree=gpus))[f"{PREFIX}/nvidia-igpu.count"] == "2"


def test_a_device_in_two_entries_counts_in_both():
    catalog = dict(load_catalog())
    catalog.update(parse_catalog('[accelerators.myriad-x]\nname = "Myriad X"\nusb = ["03e7:2485", "03e7:f63b"]\n', "mine"))
    report = run_match(usb=[UsbDevice("1-1", **NCS2)], catalog=catalog)
    assert labels(report)[f"{PREFIX}/movidius-vpu.count"] == "1"
    assert labels(report)[f"{PREFIX}/myriad-x.count"] == "1"
    assert [m["catalog"] for m in report.details["matches"]] == ["catalog.toml", "mine"]


def test_sources_that_were_not_read_are_reported_as_such():
    report = match(load_catalog(), DEFAULT_PREFIX, None, [], None)
    assert report.details["inputs"] == {"usb": False, "pci": True, "devicetree": False}


# PCI reader


def test_pci_reader_reads_a_sysfs_shaped_tree(tmp_path):
    add_pci_device(tmp_path, "0000:01:00.0", "1e60", "2864")
    add_pci_device(tmp_path, "0000:00:1c.0", "8086", "A2BA", bridge="")
    notices = []
    assert read_pci_devices(tmp_path, notices) == [
        PciDevice("0000:00:1c.0", "8086", "a2ba"),
        PciDevice("0000:01:00.0", "1e60", "2864"),
    ]
    assert notices == []


def test_pci_reader_without_pci_is_empty_and_quiet(tmp_path):
    notices = []
    assert read_pci_devices(tmp_path, notices) == [] and notices == []


def test_pci_reader_skips_broken_entries_without_hanging(tmp_path):
    add_pci_device(tmp_path, "0000:01:00.0", "1e60", "2864")
    odd = add_pci_device(tmp_path, "0000:02:00.0", "1ac1", "089a")
    (odd / "vendor").write_text("1ac1\n")  # no 0x: not what the kernel writes
    fifo = add_pci_device(tmp_path, "0000:03:00.0", "1ac1", "089a")
    (fifo / "device").unlink()
    os.mkfifo(fifo / "device")
    (tmp_path / "bus" / "pci" / "devices" / "0000:04:00.0").symlink_to("../../../devices/gone")
    notices = []
    assert read_pci_devices(tmp_path, notices) == [PciDevice("0000:01:00.0", "1e60", "2864")]
    assert len(notices) == 3 and all("skipped PCI device" in n for n in notices)


def test_pci_reader_agrees_with_lspci_on_this_machine():
    if not Path("/sys/bus/pci/devices").is_dir():
        pytest.skip("this machine has no PCI bus")
    lspci = require_tool("lspci")
    output = subprocess.run([lspci, "-n", "-D"], capture_output=True, text=True, check=True).stdout
    expected = sorted(
        PciDevice(m.group(1), m.group(2), m.group(3))
        for m in re.finditer(r"^(\S+) [0-9a-f]{4}: ([0-9a-f]{4}):([0-9a-f]{4})", output, re.MULTILINE)
    )
    assert expected and read_pci_devices(Path("/sys"), []) == expected


# Real devicetree blobs, through the library API


def scan_labels(tmp_path, dtb: str, **options) -> dict:
    result = api.scan(api.Options(sysfs=tmp_path, devicetree=DTB_DIR / dtb, use_usb=False, **options))
    return {f.name: f.value for f in result.features if f.name.startswith(PREFIX + "/")}


def test_coral_dev_board_dtb_is_an_edgetpu(tmp_path):
    assert scan_labels(tmp_path, "coral-dev-board.dtb") == {
        f"{PREFIX}/edgetpu.present": "true",
        f"{PREFIX}/edgetpu.count": "1",
    }


def test_jetson_nano_dtb_is_an_nvidia_igpu(tmp_path):
    fdtget = require_tool("fdtget")
    dtb = str(DTB_DIR / "jetson-nano.dtb")
    # Independently of our reader: the gpu node carries nvidia,gm20b and is enabled.
    gpu = subprocess.run([fdtget, "-t", "s", dtb, "/gpu@57000000", "compatible", "/gpu@57000000", "status"], capture_output=True, text=True, check=True)
    assert gpu.stdout.split() == ["nvidia,gm20b", "okay"]
    assert scan_labels(tmp_path, "jetson-nano.dtb") == {
        f"{PREFIX}/nvidia-igpu.present": "true",
        f"{PREFIX}/nvidia-igpu.count": "1",
    }


@pytest.mark.parametrize("dtb", ["rpi-4-b.dtb", "juno.dtb", "am572x-idk.dtb"])
def test_boards_without_a_catalogued_accelerator_get_none(tmp_path, dtb):
    assert scan_labels(tmp_path, dtb) == {}


def test_accelerators_follow_the_devicetree_status_filter(tmp_path):
    """A disabled gpu node is no GPU, unless --include-disabled counts it for the devicetree too."""
    dtc = require_tool("dtc")
    source = tmp_path / "disabled-gpu.dts"
    source.write_text(
        '/dts-v1/;\n/ { compatible = "nvidia,p3450-0000", "nvidia,tegra210"; #address-cells = <1>; #size-cells = <0>;\n'
        '  gpu@57000000 { compatible = "nvidia,gm20b"; reg = <0x57000000>; status = "disabled"; };\n};\n'
    )
    blob = tmp_path / "disabled-gpu.dtb"
    subprocess.run([dtc, "-q", "-I", "dts", "-O", "dtb", "-o", str(blob), str(source)], check=True)
    options = dict(sysfs=tmp_path, devicetree=blob, use_usb=False)
    assert not any(f.name.startswith(PREFIX) for f in api.scan(api.Options(**options)).features)
    included = api.scan(api.Options(include_disabled=True, **options)).features
    assert {f.name: f.value for f in included}[f"{PREFIX}/nvidia-igpu.count"] == "1"


def test_pci_card_on_a_devicetree_board_through_the_api(tmp_path):
    add_pci_device(tmp_path, "0000:01:00.0", "1e60", "2864")
    assert scan_labels(tmp_path, "rpi-4-b.dtb") == {f"{PREFIX}/hailo.present": "true", f"{PREFIX}/hailo.count": "1"}
    assert scan_labels(tmp_path, "rpi-4-b.dtb", use_accelerators=False) == {}


def test_usb_devices_are_read_once_and_shared(monkeypatch, tmp_path):
    add_usb_device(tmp_path, "1-1", "03e7", "2485", "00", ["ff"])
    reads = []
    real = usb_source.read_with_backend
    monkeypatch.setattr(usb_source, "read_with_backend", lambda options: reads.append(options) or real(options))
    features = {f.name: f.value for f in api.scan(api.Options(sysfs=tmp_path, use_devicetree=False)).features}
    assert len(reads) == 1
    assert features["feature.node.kubernetes.io/usb-ff_03e7_2485.present"] == "true"
    assert features[f"{PREFIX}/movidius-vpu.count"] == "1"
    no_usb = api.scan(api.Options(sysfs=tmp_path, use_devicetree=False, use_usb=False))
    assert len(reads) == 1 and not any(f.name.startswith(PREFIX) for f in no_usb.features)
