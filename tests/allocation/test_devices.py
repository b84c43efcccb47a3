"""The device model (nfd_hooks/sources/accelerators/devices.py): one device per physical
accelerator, named by where it is attached, on the accelerator fixtures' states and on
real USB recordings (../shared/usb-recordings, replayed with umockdev).

The expected devices are written by hand from the fixtures' facts (fixtures/accelerators/
README.md; each USB device's ``devnum`` and ``dev`` in its tree) and from the recordings'
own lines (``P:``, ``A: dev=``, ``E: DEVNAME=``, ``L: driver=``, ``A: serial=``).
"""

import json
import os
import re
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nfd_hooks import api
from nfd_hooks.allocation.inventory import Inventory
from nfd_hooks.sources.accelerators import devices as model
from tests.fakehost import populate_dev
from tests.allocation.nodes import need_root
from tests.conftest import DTB_DIR, FIXTURES, ROOT, SHARED, require_tool

STATES = FIXTURES / "accelerators"
CASES = json.loads((STATES / "cases.json").read_text())
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")

# state -> [(name, catalog id, bus, attachment, ids, driver, ready, device nodes)]
EXPECTED = {
    # Pi 4B, the stick on the VL805's hub port 2 at high speed, device 3 (189:2).
    "coral-usb-before-firmware": [("usb-1-1-2", "edgetpu", "usb", "1-1.2", "1a6e:089a", "usb", False, ("bus/usb/001/003",))],
    # Re-enumerated at SuperSpeed on the USB 3 root hub's port 1, device 2 (189:129).
    "coral-usb-after-firmware": [("usb-2-1", "edgetpu", "usb", "2-1", "18d1:9302", "usb", True, ("bus/usb/002/002",))],
    "ncs2-before-boot": [("usb-2-1", "movidius-vpu", "usb", "2-1", "03e7:2485", "usb", False, ("bus/usb/002/002",))],
    # Booted: the same port, device 3 (189:130).
    "ncs2-booted": [("usb-2-1", "movidius-vpu", "usb", "2-1", "03e7:f63b", "usb", True, ("bus/usb/002/003",))],
    "coral-pcie-unbound": [("pci-0000-01-00-0", "edgetpu", "pci", "0000:01:00.0", "1ac1:089a", None, False, ())],
    # Bound, apex_0 in sysfs, but no /dev given: ready by the catalog's rule needs the node.
    "coral-pcie-apex-no-dev": [("pci-0000-01-00-0", "edgetpu", "pci", "0000:01:00.0", "1ac1:089a", "apex", False, ())],
    "coral-pcie-apex": [("pci-0000-01-00-0", "edgetpu", "pci", "0000:01:00.0", "1ac1:089a", "apex", True, ("apex_0",))],
    # The root compatible and the SoM's PCIe function are one Edge TPU: the PCI function.
    "coral-dev-board-apex": [("pci-0000-01-00-0", "edgetpu", "pci", "0000:01:00.0", "1ac1:089a", "apex", True, ("apex_0",))],
    "hailo8-unbound": [("pci-0000-01-00-0", "hailo", "pci", "0000:01:00.0", "1e60:2864", None, False, ())],
    "hailo8-bound": [("pci-0000-01-00-0", "hailo", "pci", "0000:01:00.0", "1e60:2864", "hailo", True, ("hailo0",))],
    # A devicetree GPU is a device of its own (no PCI function of its kind); the catalog
    # names no device class for it, so it is never allocatable.
    "jetson-nano-unbound": [("dt-gpu-57000000", "nvidia-igpu", "devicetree", "/gpu@57000000", "", None, False, ())],
    "jetson-nano-nouveau": [("dt-gpu-57000000", "nvidia-igpu", "devicetree", "/gpu@57000000", "", "nouveau", False, ())],
    "jetson-nano-l4t-unbound": [("dt-gpu", "nvidia-igpu", "devicetree", "/gpu", "", None, False, ())],
    "jetson-nano-l4t-gk20a": [("dt-gpu", "nvidia-igpu", "devicetree", "/gpu", "", "gk20a", True, ())],
}


def scan(sysfs, dev, devicetree=None, catalogs=()):
    options = api.Options(sysfs=sysfs, dev=dev, devicetree=devicetree, catalogs=tuple(catalogs))
    return Inventory(options).scan()


def state_dev(tmp_path, state):
    need_root()
    dev = tmp_path / "dev"
    dev.mkdir(parents=True)
    if CASES[state]["dev"]:
        populate_dev(STATES / state / "sys", dev)
    return dev


def summary(devices):
    return [(d.name, d.accelerator, d.bus, d.attachment, d.ids, d.driver, d.ready, d.device_nodes)
            for d in (devices[name] for name in sorted(devices))]


def test_every_fixture_state_is_covered():
    assert set(EXPECTED) == set(CASES)


@pytest.mark.parametrize("state", sorted(EXPECTED))
def test_fixture_states(tmp_path, state):
    devicetree = DTB_DIR / CASES[state]["devicetree"] if CASES[state]["devicetree"] else None
    devices, _ = scan(STATES / state / "sys", state_dev(tmp_path, state), devicetree)
    assert summary(devices) == EXPECTED[state]
    for device in devices.values():
        assert device.allocatable == (device.ready and bool(device.device_nodes))
        assert DNS_LABEL.match(device.name)
    # The labels count the model's devices (Match.physical): as many as .count, as many ready as .ready-count.
    labels = CASES[state]["labels"]
    assert len(devices) == sum(int(v) for k, v in labels.items() if k.endswith(".count"))
    assert sum(d.ready for d in devices.values()) == sum(int(v) for k, v in labels.items() if k.endswith(".ready-count"))


def test_physical_devices_are_what_the_labels_count():
    """A devicetree node is the PCI function of its kind when there is one: the Dev Board's
    root compatible and its Edge TPU on the SoC's PCIe are one device, ready as the function is."""
    from nfd_hooks.sources.accelerators.catalog import load_catalog
    from nfd_hooks.sources.accelerators.result import DEVICETREE, PCI, USB, Match, MatchedDevice

    entry = load_catalog()["edgetpu"]
    stick = MatchedDevice(USB, "2-1", "18d1:9302", True)
    function = MatchedDevice(PCI, "0000:01:00.0", "1ac1:089a", False)
    root = MatchedDevice(DEVICETREE, "/", "google,imx8mq-phanbell", True)
    again = MatchedDevice(DEVICETREE, "/", "fsl,imx8mq-phanbell", True)  # the same node by another string
    other = MatchedDevice(DEVICETREE, "/soc/tpu@1", "google,imx8mq-phanbell", True)
    assert Match(entry, (stick, function, root, again)).physical == (stick, function)
    assert (Match(entry, (stick, function, root)).present, Match(entry, (stick, function, root)).ready) == (2, 1)
    assert Match(entry, (root, again)).physical == (root,)
    assert Match(entry, (function, root, other)).physical == (function, other)  # nodes beyond the functions, by path


def test_the_name_survives_re_enumeration_and_the_node_follows(tmp_path):
    """NCS2 boot: new ids and a new device number on the same port, the same name."""
    before, _ = scan(STATES / "ncs2-before-boot" / "sys", state_dev(tmp_path / "a", "ncs2-before-boot"))
    after, _ = scan(STATES / "ncs2-booted" / "sys", state_dev(tmp_path / "b", "ncs2-booted"))
    assert list(before) == list(after) == ["usb-2-1"]
    assert (before["usb-2-1"].ids, after["usb-2-1"].ids) == ("03e7:2485", "03e7:f63b")
    assert (before["usb-2-1"].device_nodes, after["usb-2-1"].device_nodes) == (("bus/usb/002/002",), ("bus/usb/002/003",))


@pytest.mark.parametrize("damage", ["stale number", "regular file", "symlink", "absent"])
def test_a_device_node_counts_only_when_it_is_the_character_device_sysfs_names(tmp_path, damage):
    dev = state_dev(tmp_path, "coral-usb-after-firmware")
    node = dev / "bus/usb/002/002"
    node.unlink()
    if damage == "stale number":  # the number of the stick's previous enumeration
        os.mknod(node, 0o600 | 0o020000, os.makedev(189, 128))
    elif damage == "regular file":
        node.write_bytes(b"")
    elif damage == "symlink":  # to a node with the right number, elsewhere: not followed
        os.mknod(tmp_path / "elsewhere", 0o600 | 0o020000, os.makedev(189, 129))
        node.symlink_to(tmp_path / "elsewhere")
    devices, _ = scan(STATES / "coral-usb-after-firmware" / "sys", dev)
    device = devices["usb-2-1"]
    assert device.ready and device.device_nodes == () and not device.allocatable


def test_no_dev_root_means_no_device_nodes_and_says_so():
    devices, notices = scan(STATES / "coral-usb-after-firmware" / "sys", None)
    assert devices["usb-2-1"].device_nodes == () and not devices["usb-2-1"].allocatable
    assert "device nodes not checked: no dev root here (a replayed bundle has none)" in notices


def test_a_device_two_catalog_entries_match_is_one_device_with_a_notice(tmp_path):
    catalog = tmp_path / "extra.toml"
    catalog.write_text('[accelerators.my-tpu]\nname = "the same stick under another id"\nusb = ["18d1:9302"]\n')
    devices, notices = scan(STATES / "coral-usb-after-firmware" / "sys", state_dev(tmp_path, "coral-usb-after-firmware"),
                            catalogs=[catalog])
    assert [(d.name, d.accelerator) for d in devices.values()] == [("usb-2-1", "edgetpu")]
    assert "device usb-2-1 (usb 2-1) matches both 'edgetpu' and 'my-tpu' in the catalog; it is offered as 'edgetpu'" in notices


# -- names ---------------------------------------------------------------------------

ports = st.lists(st.integers(1, 15), min_size=1, max_size=6)  # USB allows 5 hub tiers below the root port
buses = st.integers(1, 127)


@given(buses, ports, buses, ports)
def test_usb_names_are_dns_labels_and_one_to_one(bus_a, ports_a, bus_b, ports_b):
    a = f"{bus_a}-{'.'.join(map(str, ports_a))}"
    b = f"{bus_b}-{'.'.join(map(str, ports_b))}"
    assert DNS_LABEL.match(model.usb_name(a))
    assert (model.usb_name(a) == model.usb_name(b)) == (a == b)


pci_addresses = st.builds("{:04x}:{:02x}:{:02x}.{:x}".format, st.integers(0, 0xFFFF), st.integers(0, 0xFF),
                          st.integers(0, 0x1F), st.integers(0, 7))


@given(pci_addresses, pci_addresses)
def test_pci_names_are_dns_labels_and_one_to_one(a, b):
    assert DNS_LABEL.match(model.pci_name(a))
    assert (model.pci_name(a) == model.pci_name(b)) == (a == b)


def test_devicetree_names_are_cleaned_and_made_unique():
    assert model.devicetree_name("/gpu@57000000") == "dt-gpu-57000000"
    assert model.devicetree_name("/soc/NPU_0@ff100000") == "dt-soc-npu-0-ff100000"
    assert model.devicetree_name("/") == "dt-root"
    long = model.devicetree_name("/" + "a" * 100 + "@1")
    assert len(long) <= 63 and DNS_LABEL.match(long)
    taken = {}
    first = model._unique(model.devicetree_name("/gpu@57000000"), "/gpu@57000000", taken)
    second = model._unique(model.devicetree_name("/gpu-57000000"), "/gpu-57000000", taken)
    again = model._unique(model.devicetree_name("/gpu@57000000"), "/gpu@57000000", taken)
    assert (first, second, again) == ("dt-gpu-57000000", "dt-gpu-57000000-2", "dt-gpu-57000000")


# -- real USB recordings -------------------------------------------------------------

RECORDINGS = SHARED / "usb-recordings"
# recording -> the recorded device's port path, ids, node and its number, serial, driver
# (canon and xperia were recorded without a `driver` link: unbound as far as we can tell).
REAL = {
    "libfprint-elan.umockdev": ("1-4.4", "04f3:0c26", "bus/usb/001/094", (189, 93), None, "usb"),
    "libfprint-goodixmoc.umockdev": ("3-2", "27c6:5840", "bus/usb/003/008", (189, 263), "UIDE1AD5CBA_XXXX_MOC_B0", "usb"),
    "libfprint-synaptics.umockdev": ("1-9", "06cb:00bd", "bus/usb/001/005", (189, 4), "c087f7d72126", "usb"),
    "libfprint-vfs5011.umockdev": ("2-6", "138a:0017", "bus/usb/002/017", (189, 144), "6c3b5712a6c0", "usb"),
    "umockdev-canon-powershot-sx200.umockdev": ("1-1.5.2.3", "04a9:31c0", "bus/usb/001/011", (189, 10),
                                                "C767F1C714174C309255F70E4A7B2EE2", None),
    "umockdev-fido2.umockdev": ("1-2.3", "1050:0120", "bus/usb/001/012", (189, 11), None, "usb"),
    "umockdev-sony-xperia-mini-pro.umockdev": ("1-1.5.2.4", "0fce:0166", "bus/usb/001/024", (189, 23), "0123456789ABCDEF", None),
    "umockdev-usbkbd.umockdev": ("1-1.5.4.2", "05f3:0007", "bus/usb/001/009", (189, 8), None, "usb"),
}


def replay_devices(recording, catalog, dev):
    """``nfd-hooks devices --format json`` inside ``umockdev-run`` of ``recording``: /sys is
    the recording's; ``dev`` is a directory of ours (umockdev's own /dev nodes are files
    whose character-device-ness only its preload library reports)."""
    umockdev_run = require_tool("umockdev-run")
    done = subprocess.run(
        [umockdev_run, "-d", str(recording), "--", sys.executable, "-m", "nfd_hooks", "devices", "--format", "json",
         "--no-devicetree", "--catalog", str(catalog), "--dev", str(dev)],
        capture_output=True, timeout=120, cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


@pytest.mark.parametrize("recording", sorted(REAL))
def test_real_recordings(tmp_path, recording):
    """Each recorded device made an accelerator by a catalog of our own: its name from
    the recorded port path, its ids, serial and driver link as recorded, and its node
    once a character device with the recorded number is at the recorded DEVNAME."""
    if not RECORDINGS.is_dir():
        pytest.skip(f"{RECORDINGS} absent: the shared real recordings are not on this machine")
    need_root()
    port, ids, node, (major, minor), serial, driver = REAL[recording]
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(f'[accelerators.recorded]\nname = "recorded"\nusb = ["{ids}"]\n'
                       f'[accelerators.recorded.ready]\nusb = ["{ids}"]\n')
    dev = tmp_path / "dev"
    dev.mkdir()
    expected = {
        "name": "usb-" + port.replace(".", "-"), "accelerator": "recorded", "bus": "usb", "attachment": port,
        "ids": ids, "serial": serial, "driver": driver, "ready": True, "device_nodes": [], "allocatable": False,
    }
    assert replay_devices(RECORDINGS / recording, catalog, dev) == [expected]
    (dev / node).parent.mkdir(parents=True)
    os.mknod(dev / node, 0o600 | 0o020000, os.makedev(major, minor))
    assert replay_devices(RECORDINGS / recording, catalog, dev) == [dict(expected, device_nodes=[node], allocatable=True)]
