"""Readiness (issue 17): each shipped accelerator, state by state, from the
kernel-shaped trees in fixtures/accelerators/ (scripts/make-accelerator-fixtures):
exactly `.present` before its firmware or driver, `.present` and `.ready` after;
compatibility labels for vendor device plugins only with --compat-labels."""

import json
import os

import pytest

from nfd_hooks.errors import InputError
from nfd_hooks.sources.accelerators.binding import Binding, SysfsProbe
from nfd_hooks.sources.accelerators.catalog import load_catalog, parse_catalog
from tests.fakehost import ClassDevice, add_pci_device, add_platform_device, populate_dev
from tests.conftest import DTB_DIR, FIXTURES, run_cli

PREFIX = "accelerator.feature.node.kubernetes.io"
STATES = FIXTURES / "accelerators"
CASES = json.loads((STATES / "cases.json").read_text())
COMPAT_PREFIXES = ("nvidia.com/", "hailo.ai/")


def make_dev(tmp_path, sysfs):
    """A /dev as devtmpfs fills it from ``sysfs`` (character devices need root to make)."""
    dev = tmp_path / "dev"
    dev.mkdir(parents=True)
    try:
        populate_dev(sysfs, dev)
    except PermissionError:
        if os.environ.get("NFD_HOOKS_REQUIRE_TOOLS") == "1":
            raise
        pytest.skip("making character device nodes needs root (CAP_MKNOD)")
    return dev


def show_state(tmp_path, name, *extra):
    case = CASES[name]
    sysfs = STATES / name / "sys"
    dev = make_dev(tmp_path, sysfs) if case["dev"] else tmp_path / "no-dev"
    args = ["show", "--sysfs", str(sysfs), "--dev", str(dev), *extra]
    if case["devicetree"]:
        args += ["--devicetree", str(DTB_DIR / case["devicetree"])]
    done = run_cli(args)
    assert done.returncode == 0, done.stderr.decode()
    return dict(line.split("=", 1) for line in done.stdout.decode().splitlines() if line and not line.startswith("#"))


def ours(labels):
    return {k: v for k, v in labels.items() if k.startswith(PREFIX + "/") or k.startswith(COMPAT_PREFIXES)}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_state_gives_exactly_its_labels(tmp_path, name):
    assert ours(show_state(tmp_path, name)) == CASES[name]["labels"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_compat_labels_only_with_the_flag(tmp_path, name):
    assert ours(show_state(tmp_path, name, "--compat-labels")) == {**CASES[name]["labels"], **CASES[name]["compat"]}


# Each shipped accelerator, before and after: the pairs the acceptance names.
PAIRS = [
    ("edgetpu", "coral-usb-before-firmware", "coral-usb-after-firmware"),
    ("edgetpu", "coral-pcie-unbound", "coral-pcie-apex"),
    ("movidius-vpu", "ncs2-before-boot", "ncs2-booted"),
    ("nvidia-igpu", "jetson-nano-l4t-unbound", "jetson-nano-l4t-gk20a"),
    ("hailo", "hailo8-unbound", "hailo8-bound"),
]


def test_every_shipped_accelerator_has_a_before_and_after_pair():
    assert sorted({ident for ident, _, _ in PAIRS}) == sorted(load_catalog())


@pytest.mark.parametrize("ident,before,after", PAIRS, ids=[p[1] for p in PAIRS])
def test_present_without_ready_then_both(tmp_path, ident, before, after):
    first = show_state(tmp_path / "before", before)
    assert f"{PREFIX}/{ident}.present" in first
    assert not any(key.startswith(f"{PREFIX}/{ident}.ready") for key in first)
    second = show_state(tmp_path / "after", after)
    assert second[f"{PREFIX}/{ident}.present"] == "true" and second[f"{PREFIX}/{ident}.ready"] == "true"
    assert second[f"{PREFIX}/{ident}.ready-count"] == "1"


def test_json_says_why_a_device_is_or_is_not_ready(tmp_path):
    sysfs = STATES / "coral-pcie-apex" / "sys"
    dev = make_dev(tmp_path, sysfs)
    done = run_cli(["show", "--sysfs", str(sysfs), "--dev", str(dev), "--format", "json"])
    (match,) = json.loads(done.stdout)["sources"]["accelerators"]["matches"]
    assert match["ready_count"] == 1
    assert match["pci"] == [{"address": "0000:01:00.0", "id": "1ac1:089a", "driver": "apex",
                             "device_nodes": ["apex_0"], "ready": True}]
    assert match["ready_rule"] == {"usb": ["18d1:9302"], "drivers": ["apex"], "device_class": "apex"}


def test_two_pcie_tpus_one_ready(tmp_path):
    sysfs = tmp_path / "sys"
    add_pci_device(sysfs, "0000:01:00.0", "1ac1", "089a", driver="apex", class_device=ClassDevice("apex", "apex_0", 120, 0))
    add_pci_device(sysfs, "0000:02:00.0", "1ac1", "089a")
    dev = make_dev(tmp_path, sysfs)
    labels = ours(show_state_args(sysfs, dev))
    assert labels[f"{PREFIX}/edgetpu.count"] == "2" and labels[f"{PREFIX}/edgetpu.ready-count"] == "1"


def show_state_args(sysfs, dev, *extra):
    done = run_cli(["show", "--sysfs", str(sysfs), "--dev", str(dev), "--no-devicetree", *extra])
    assert done.returncode == 0, done.stderr.decode()
    return dict(line.split("=", 1) for line in done.stdout.decode().splitlines() if line and not line.startswith("#"))


# The probe, against hostile or half-made trees


def probe_pci(sysfs, dev, device_class="apex"):
    notices = []
    probe = SysfsProbe(sysfs, dev, notices)
    try:
        return probe.pci("0000:01:00.0", device_class), notices
    finally:
        probe.close()


def test_a_node_with_the_wrong_number_or_kind_is_not_present(tmp_path):
    sysfs = tmp_path / "sys"
    add_pci_device(sysfs, "0000:01:00.0", "1ac1", "089a", driver="apex", class_device=ClassDevice("apex", "apex_0", 120, 0))
    dev = tmp_path / "dev"
    dev.mkdir()
    (dev / "apex_0").write_text("not a device\n")
    assert probe_pci(sysfs, dev)[0] == Binding("apex", ())
    (dev / "apex_0").unlink()
    try:
        os.mknod(dev / "apex_0", 0o600 | 0o020000, os.makedev(120, 1))  # another minor: a stale node
    except PermissionError:
        pytest.skip("making character device nodes needs root (CAP_MKNOD)")
    assert probe_pci(sysfs, dev)[0] == Binding("apex", ())
    (dev / "apex_0").unlink()
    os.symlink("/dev/null", dev / "apex_0")  # a link is looked at, not followed
    assert probe_pci(sysfs, dev)[0] == Binding("apex", ())


def test_a_devname_leading_out_of_the_dev_root_is_refused(tmp_path):
    sysfs = tmp_path / "sys"
    node = add_pci_device(sysfs, "0000:01:00.0", "1ac1", "089a", driver="apex", class_device=ClassDevice("apex", "apex_0", 1, 3))
    (node / "apex" / "apex_0" / "uevent").write_text("MAJOR=1\nMINOR=3\nDEVNAME=../outside/null\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    try:
        os.mknod(outside / "null", 0o600 | 0o020000, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("making character device nodes needs root (CAP_MKNOD)")
    dev = tmp_path / "dev"
    dev.mkdir()
    assert probe_pci(sysfs, dev)[0] == Binding("apex", ())


def test_fifos_and_links_in_place_of_attributes_neither_hang_nor_count(tmp_path):
    sysfs = tmp_path / "sys"
    node = add_pci_device(sysfs, "0000:01:00.0", "1ac1", "089a", driver="apex", class_device=ClassDevice("apex", "apex_0", 120, 0))
    (node / "apex" / "apex_0" / "dev").unlink()
    os.mkfifo(node / "apex" / "apex_0" / "dev")
    (node / "apex" / "apex_0" / "uevent").unlink()
    (node / "apex" / "apex_0" / "uevent").symlink_to("/etc/passwd")
    assert probe_pci(sysfs, tmp_path)[0] == Binding("apex", ())


def test_no_dev_root_is_said_once_and_nothing_is_present(tmp_path):
    sysfs = tmp_path / "sys"
    add_pci_device(sysfs, "0000:01:00.0", "1ac1", "089a", driver="apex", class_device=ClassDevice("apex", "apex_0", 120, 0))
    binding, notices = probe_pci(sysfs, tmp_path / "missing")
    assert binding == Binding("apex", ()) and len(notices) == 1 and "missing" in notices[0]


def test_an_unbound_function_and_a_missing_one_are_unbound(tmp_path):
    sysfs = tmp_path / "sys"
    add_pci_device(sysfs, "0000:01:00.0", "1ac1", "089a")
    assert probe_pci(sysfs, tmp_path)[0] == Binding(None, ())
    assert probe_pci(tmp_path / "nothing", tmp_path)[0] == Binding(None, ())


def test_devicetree_nodes_find_their_platform_device_by_of_node(tmp_path):
    sysfs = tmp_path / "sys"
    add_platform_device(sysfs, "57000000.gpu", "/gpu@57000000", "nvidia,gm20b", driver="gk20a")
    add_platform_device(sysfs, "soc@0", "/soc@0", "simple-bus")
    (sysfs / "bus" / "platform" / "devices" / "escaped").symlink_to("/")  # leads out of the tree: ignored
    probe = SysfsProbe(sysfs, None, [])
    try:
        assert probe.devicetree("/gpu@57000000", None) == Binding("gk20a", ())
        assert probe.devicetree("/soc@0", None) == Binding(None, ())
        assert probe.devicetree("/", None) == Binding(None, ())
    finally:
        probe.close()


# The catalog's ready and compat tables

ENTRY = '[accelerators.k]\nname = "K"\nusb = ["0403:6001"]\npci = ["1ac1:089a"]\n'


@pytest.mark.parametrize("extra,reason", [
    ('[accelerators.k.ready]\nusb = ["18d1:9302"]\n', "is not one of its usb ids"),
    ('[accelerators.k.ready]\nfirmware = true\n', "unknown ready key 'firmware'"),
    ('[accelerators.k.ready]\ndevice-class = "apex"\n', "needs a 'driver'"),
    ('[accelerators.k.ready]\n', "lists no usb ids and no driver"),
    ('[accelerators.k.ready]\ndriver = ["apex/../x"]\n', "must be a kernel name"),
    ('[accelerators.k.compat]\n"example.com/bad name" = "true"\n', "compat label"),
    ('[accelerators.k.compat]\n"example.com/ok" = 1\n', "its value must be a string"),
    ('[accelerators.k.compat]\n"node.kubernetes.io/x" = "true"\n', "rejected by nfd-master"),
])
def test_broken_ready_and_compat_tables_are_refused(extra, reason):
    with pytest.raises(InputError, match=reason):
        parse_catalog(ENTRY + extra, "mine.toml")


def test_a_ready_table_inline_is_the_same(tmp_path):
    inline = parse_catalog(ENTRY.replace('pci = ["1ac1:089a"]\n', 'pci = ["1ac1:089a"]\nready = {driver = ["apex"]}\n'), "x")
    table = parse_catalog(ENTRY + '[accelerators.k.ready]\ndriver = ["apex"]\n', "x")
    assert inline["k"].ready == table["k"].ready


def test_two_entries_may_not_give_one_compat_label_two_values(tmp_path):
    mine = tmp_path / "mine.toml"
    mine.write_text('[accelerators.other-gpu]\nname = "G"\npci = ["10de:1234"]\n'
                    '[accelerators.other-gpu.compat]\n"nvidia.com/gpu.present" = "yes"\n')
    with pytest.raises(InputError, match="contradicts 'nvidia-igpu'"):
        load_catalog([mine])


def test_compat_labels_may_not_enter_our_own_namespaces(tmp_path):
    mine = tmp_path / "mine.toml"
    mine.write_text('[accelerators.x]\nname = "X"\npci = ["1e60:2864"]\n'
                    f'[accelerators.x.compat]\n"{PREFIX}/hailo.present" = "false"\n')
    done = run_cli(["show", "--sysfs", str(tmp_path), "--catalog", str(mine), "--compat-labels"])
    assert done.returncode == 2 and b"namespace nfd-hooks writes" in done.stderr
    assert done.stderr.count(b"\n") == 1
    assert run_cli(["show", "--sysfs", str(tmp_path), "--catalog", str(mine)]).returncode == 0
