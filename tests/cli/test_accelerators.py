"""Issue 8's acceptance, run as a user runs it: ``nfd-hooks show`` on fake hosts."""

import json
import subprocess
import sys

import pytest

from tests.fakehost import add_pci_device
from tests.fakehost import add_usb_xhci as add_usb_device
from tests.conftest import DTB_DIR, FIXTURES, require_tool, run_cli
from tests.fakehost import PI4_NCS2_WEBCAM, make_host

PREFIX = "accelerator.feature.node.kubernetes.io"
CORAL_IDS = [("1a6e", "089a", "fe"), ("18d1", "9302", "ff")]  # before / after its firmware is loaded


def show(*args) -> str:
    done = run_cli(["show", *map(str, args)])
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def accelerator_lines(output: str) -> list:
    return [line for line in output.splitlines() if line.startswith(PREFIX + "/")]


def hub_and_keyboard(sysfs):
    """What every host has: a root hub and an ordinary device, neither an accelerator."""
    add_usb_device(sysfs, "usb1", "1d6b", "0002", "09", ["09"], "xHCI Host Controller")
    add_usb_device(sysfs, "1-4", "05f3", "0007", "00", ["03", "03"], "Kinesis keyboard")


@pytest.mark.parametrize("vendor,product,interface_class", CORAL_IDS, ids=["before-firmware", "after-firmware"])
def test_coral_usb_accelerator_gives_edgetpu_present(tmp_path, vendor, product, interface_class):
    hub_and_keyboard(tmp_path)
    add_usb_device(tmp_path, "1-1", vendor, product, "00", [interface_class])
    lines = accelerator_lines(show("--sysfs", tmp_path))
    assert f"{PREFIX}/edgetpu.present=true" in lines
    ready = [f"{PREFIX}/edgetpu.ready=true", f"{PREFIX}/edgetpu.ready-count=1"] if vendor == "18d1" else []
    assert lines == [f"{PREFIX}/edgetpu.count=1", f"{PREFIX}/edgetpu.present=true", *ready]


def test_coral_dev_board_devicetree_gives_edgetpu_present(tmp_path):
    lines = accelerator_lines(show("--sysfs", tmp_path, "--devicetree", DTB_DIR / "coral-dev-board.dtb"))
    assert lines == [f"{PREFIX}/edgetpu.count=1", f"{PREFIX}/edgetpu.present=true"]


def test_jetson_nano_devicetree_gives_nvidia_igpu_present(tmp_path):
    lines = accelerator_lines(show("--sysfs", tmp_path, "--devicetree", DTB_DIR / "jetson-nano.dtb"))
    assert lines == [f"{PREFIX}/nvidia-igpu.count=1", f"{PREFIX}/nvidia-igpu.present=true"]


def test_one_and_two_ncs2_sticks(tmp_path):
    hub_and_keyboard(tmp_path)
    add_usb_device(tmp_path, "1-1", "03e7", "2485", "00", ["ff"], "Movidius MyriadX")
    assert accelerator_lines(show("--sysfs", tmp_path)) == [
        f"{PREFIX}/movidius-vpu.count=1",
        f"{PREFIX}/movidius-vpu.present=true",
    ]
    add_usb_device(tmp_path, "1-2", "03e7", "2485", "00", ["ff"], "Movidius MyriadX")
    assert f"{PREFIX}/movidius-vpu.count=2" in accelerator_lines(show("--sysfs", tmp_path))


def test_a_host_with_none_of_them_gets_no_accelerator_label(tmp_path):
    hub_and_keyboard(tmp_path)
    add_pci_device(tmp_path, "0000:00:02.0", "8086", "3e92")  # an Intel UHD 630: not in the catalog
    output = show("--sysfs", tmp_path, "--devicetree", DTB_DIR / "rpi-4-b.dtb")
    assert "beta.devicetree.org/raspberrypi-4-model-b=1" in output
    assert PREFIX not in output


def test_json_says_which_entry_matched_which_device_or_node(tmp_path):
    add_usb_device(tmp_path, "1-1", "03e7", "2485", "00", ["ff"])
    add_pci_device(tmp_path, "0000:01:00.0", "1e60", "2864")
    document = json.loads(show("--sysfs", tmp_path, "--devicetree", DTB_DIR / "jetson-nano.dtb", "--format", "json"))
    matches = {m["id"]: m for m in document["sources"]["accelerators"]["matches"]}
    assert sorted(matches) == ["hailo", "movidius-vpu", "nvidia-igpu"]
    assert [d["bus_path"] for d in matches["movidius-vpu"]["usb"]] == ["1-1"]
    assert matches["hailo"]["pci"] == [
        {"address": "0000:01:00.0", "id": "1e60:2864", "driver": None, "device_nodes": [], "ready": False}
    ]
    assert matches["nvidia-igpu"]["devicetree"] == [
        {"node": "/gpu@57000000", "compatible": "nvidia,gm20b", "driver": None, "device_nodes": [], "ready": False}
    ]


def test_a_user_catalog_adds_an_accelerator(tmp_path):
    sysfs = tmp_path / "sys"
    add_usb_device(sysfs, "1-1", "0403", "6001", "00", ["ff"], "FT232R USB UART")
    mine = tmp_path / "mine.toml"
    mine.write_text(
        "# A Kendryte K210 dev kit on its FTDI bridge (usb.ids: 0403:6001 FT232 Serial (UART) IC).\n"
        '[accelerators.k210]\nname = "Kendryte K210"\nusb = ["0403:6001"]\n',
        encoding="utf-8",
    )
    assert accelerator_lines(show("--sysfs", sysfs)) == []
    assert accelerator_lines(show("--sysfs", sysfs, "--catalog", mine)) == [
        f"{PREFIX}/k210.count=1",
        f"{PREFIX}/k210.present=true",
    ]


def test_a_user_catalog_overrides_a_shipped_entry(tmp_path):
    sysfs = tmp_path / "sys"
    add_usb_device(sysfs, "1-1", "18d1", "9302", "00", ["ff"])
    mine = tmp_path / "mine.toml"
    mine.write_text('[accelerators.edgetpu]\nname = "PCIe Edge TPUs only"\npci = ["1ac1:089a"]\n', encoding="utf-8")
    assert accelerator_lines(show("--sysfs", sysfs, "--catalog", mine)) == []


@pytest.mark.parametrize(
    "text,where",
    [
        ('[accelerators.k210]\nname = "K210"\nusb = ["0403:6001"\n', ":3: invalid TOML"),
        ('[accelerators.k210]\nname = "K210"\n\nusb = ["0403-6001"]\n', ":4: accelerator 'k210': usb id"),
    ],
)
def test_a_malformed_user_catalog_exits_2_with_one_line(tmp_path, text, where):
    mine = tmp_path / "mine.toml"
    mine.write_text(text, encoding="utf-8")
    done = run_cli(["show", "--sysfs", str(tmp_path), "--catalog", str(mine)])
    stderr = done.stderr.decode()
    assert done.returncode == 2
    assert stderr.startswith(f"nfd-hooks: error: {mine}{where}"), stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr
    assert done.stdout == b""


def test_prefix_flag_and_opting_out(tmp_path):
    add_pci_device(tmp_path, "0000:01:00.0", "1e60", "2864")
    assert "example.com/hailo.present=true" in show("--sysfs", tmp_path, "--accelerator-prefix", "example.com")
    assert "hailo" not in show("--sysfs", tmp_path, "--no-accelerators")
    done = run_cli(["show", "--sysfs", str(tmp_path), "--accelerator-prefix", "Bad_Prefix"])
    assert done.returncode == 2 and b"--accelerator-prefix" in done.stderr


# The shared USB fixture node (fixtures/usb/README.md): a Coral before (1-2) and after (2-2) its
# firmware, an NCS2 (2-1), and a webcam, a UART, a NIC, hubs that are no accelerators.
EDGE_NODE_ACCELERATORS = [
    f"{PREFIX}/edgetpu.count=2",
    f"{PREFIX}/edgetpu.present=true",
    f"{PREFIX}/edgetpu.ready=true",  # 2-2, the one whose firmware is loaded
    f"{PREFIX}/edgetpu.ready-count=1",
    f"{PREFIX}/movidius-vpu.count=1",
    f"{PREFIX}/movidius-vpu.present=true",
]


def test_usb_fixture_node_from_its_sysfs_tree():
    output = show("--sysfs", FIXTURES / "usb" / "edge-node", "--no-devicetree")
    assert accelerator_lines(output) == EDGE_NODE_ACCELERATORS
    # The USB labels were made from the same devices, read once.
    assert "feature.node.kubernetes.io/usb-fe_1a6e_089a.present=true" in output


@pytest.mark.parametrize("backend", ["udev", "libusb"])
def test_usb_fixture_node_through_every_usb_backend(backend):
    umockdev_run = require_tool("umockdev-run")
    done = subprocess.run(
        [umockdev_run, "-d", str(FIXTURES / "usb" / "edge-node.umockdev"), "--",
         sys.executable, "-m", "nfd_hooks", "show", "--no-devicetree", "--usb-backend", backend],
        capture_output=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert accelerator_lines(done.stdout.decode()) == EDGE_NODE_ACCELERATORS


def test_a_whole_fake_pi_with_an_ncs2_and_a_hailo(tmp_path):
    """Live devicetree under <sysfs>, USB behind the VL805, PCI: the defaults, as on the node."""
    sysfs = make_host(tmp_path, (DTB_DIR / "rpi-4-b.dtb").read_bytes(), PI4_NCS2_WEBCAM)
    add_pci_device(sysfs, "0000:01:00.0", "1106", "3483", bridge="0000:00:00.0")  # the VL805 xHCI itself
    assert accelerator_lines(show("--sysfs", sysfs)) == [
        f"{PREFIX}/movidius-vpu.count=1",
        f"{PREFIX}/movidius-vpu.present=true",
    ]
    add_pci_device(sysfs, "0001:01:00.0", "1e60", "2864", bridge="0001:00:00.0")  # Hailo-8 on a second PCIe
    assert f"{PREFIX}/hailo.count=1" in accelerator_lines(show("--sysfs", sysfs))
