"""capture then replay: a bundle replays to what a live run on the node prints."""

import hashlib
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.conftest import DTB_DIR, require_tool, run_cli
from tests.fakehost import C270, NCS2, PI4_HUBS, PI4_NCS2_WEBCAM, make_host
from nfd_hooks import api
from nfd_hooks.bundle import open_bundle
from nfd_hooks.capture import capture
from nfd_hooks.errors import InputError, OutputError
from nfd_hooks.sources.usb.sysfs import ATTRIBUTES

RPI = DTB_DIR / "rpi-4-b.dtb"


@pytest.fixture
def scratch():
    """A temporary directory on tmpfs when there is one: a fake host is thousands
    of small files, and creating them on disk is many times slower."""
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as directory:
        yield Path(directory)


@pytest.fixture
def host(scratch):
    """A Pi 4B with an NCS2 and a webcam; the devicetree only as a live tree."""
    return make_host(scratch / "host", RPI.read_bytes(), PI4_NCS2_WEBCAM)


def rendered(options):
    return api.render_scan(api.scan(options), options)


def shown(*args):
    done = run_cli(["show", *args])
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def test_capture_then_replay_prints_what_the_host_prints(host, scratch):
    bundle = scratch / "bundle"
    done = run_cli(["capture", str(bundle), "--sysfs", str(host)])
    assert done.returncode == 0, done.stderr.decode()
    live = shown("--sysfs", str(host))
    assert b"beta.devicetree.org/raspberrypi-4-model-b=1\n" in live
    assert b"feature.node.kubernetes.io/usb-ff_03e7_2485.present=true\n" in live
    assert b"feature.node.kubernetes.io/usb-0e_046d_0825.present=true\n" in live
    assert shown("--replay", str(bundle)) == live
    assert shown("--replay", str(bundle), "--format", "json").count(b"raspberrypi") >= 1
    features = scratch / "features.d"
    features.mkdir()
    assert run_cli(["write", "--replay", str(bundle), "--features-dir", str(features)]).returncode == 0
    assert (features / "nfd-hooks").read_bytes() == live


def test_bundle_dtb_reads_with_dtc_and_matches_the_board(host, scratch):
    dtc = require_tool("dtc")
    capture(scratch / "bundle", host)
    dts = [
        subprocess.run([dtc, "-s", "-I", "dtb", "-O", "dts", str(blob)], capture_output=True, check=True).stdout
        for blob in (RPI, scratch / "bundle" / "devicetree.dtb")
    ]
    # A live tree has no memory reservation block; everything else is the board's.
    original = b"\n".join(line for line in dts[0].splitlines() if not line.startswith(b"/memreserve/"))
    assert dts[1].splitlines() == original.splitlines()


def test_root_readable_fdt_is_copied_as_is(scratch):
    host = make_host(scratch / "host", RPI.read_bytes(), (), with_fdt=True)
    done = capture(scratch / "bundle", host)
    assert done.devicetree_from == str(host / "firmware" / "fdt")
    assert (scratch / "bundle" / "devicetree.dtb").read_bytes() == RPI.read_bytes()


def test_fdt_that_differs_from_the_live_tree_is_not_used(scratch):
    host = make_host(scratch / "host", RPI.read_bytes(), ())
    (host / "firmware" / "fdt").write_bytes((DTB_DIR / "jetson-nano.dtb").read_bytes())
    done = capture(scratch / "bundle", host)
    assert done.devicetree_from == str(host / "firmware" / "devicetree" / "base")
    assert any("differs" in notice for notice in done.notices)
    replay = api.replay_options(scratch / "bundle", api.Options(use_usb=False))
    assert rendered(replay) == rendered(api.Options(sysfs=host, use_usb=False))


@pytest.mark.parametrize("dtb", sorted(DTB_DIR.glob("*.dtb")), ids=lambda p: p.stem)
def test_every_fixture_board_replays_to_its_live_labels(dtb, scratch):
    host = make_host(scratch / "host", dtb.read_bytes(), ())
    capture(scratch / "bundle", host)
    for extra in ({}, {"include_disabled": True, "nodes": ("soc", "memory")}):
        live = api.Options(sysfs=host, use_usb=False, **extra)
        replay = api.replay_options(scratch / "bundle", live)
        assert rendered(replay) == rendered(live)


def test_serial_labels_replay_only_from_bundles_with_serials(host, scratch):
    capture(scratch / "plain", host)
    capture(scratch / "serials", host, with_serials=True)
    live = api.Options(sysfs=host, use_devicetree=False, usb_label_fields=("class", "vendor", "device", "serial"))
    assert b"usb-ff_03e7_2485_03e72485.present=true" in rendered(live)
    assert rendered(api.replay_options(scratch / "serials", live)) == rendered(live)
    assert rendered(api.replay_options(scratch / "plain", live)) != rendered(live)


def test_only_the_scanned_usb_attributes_and_no_serials(host, scratch):
    capture(scratch / "plain", host)
    capture(scratch / "serials", host, with_serials=True)
    allowed = set(ATTRIBUTES)
    for name, serials in (("plain", False), ("serials", True)):
        files = [p for p in (scratch / name / "sys").rglob("*") if p.is_file() and not p.is_symlink()]
        names = {p.name for p in files}
        assert names <= allowed, names - allowed
        assert ("serial" in names) is serials
        assert {"idVendor", "idProduct", "bDeviceClass", "bInterfaceClass", "descriptors"} <= names
    serial_files = sorted(p.read_text() for p in (scratch / "serials" / "sys").rglob("serial"))
    assert serial_files == sorted(s.serial + "\n" for s in PI4_HUBS + (NCS2, C270) if s.serial)


def test_usb_links_stay_kernel_shaped(host, scratch):
    capture(scratch / "bundle", host)
    links = scratch / "bundle" / "sys" / "bus" / "usb" / "devices"
    for entry in (host / "bus" / "usb" / "devices").iterdir():
        assert os.readlink(links / entry.name) == os.readlink(entry)
        assert (links / entry.name).resolve().is_dir()


def test_manifest_describes_the_bundle(host, scratch):
    capture(scratch / "bundle", host)
    bundle = scratch / "bundle"
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["tool"].startswith("nfd-hooks ")
    assert manifest["kernel_release"] == platform.release()
    assert manifest["architecture"] == platform.machine()
    assert manifest["captured_at"].endswith("Z")
    on_disk = {
        str(p.relative_to(bundle)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in bundle.rglob("*")
        if p.is_file() and not p.is_symlink() and p.name != "manifest.json"
    }
    assert manifest["files"] == on_disk
    assert manifest["usb_devices"] == 5  # two root hubs, the Pi's hub, the NCS2, the webcam
    size = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file() and not p.is_symlink())
    assert size < 1024 * 1024


def tamper_file(bundle):
    next(bundle.rglob("idProduct")).write_text("ffff\n")


def tamper_missing(bundle):
    next(bundle.rglob("bInterfaceClass")).unlink()


def tamper_extra(bundle):
    (next(bundle.rglob("idProduct")).parent / "serial").write_text("123\n")


def tamper_extra_dtb(bundle):
    (bundle / "devicetree.dtb").unlink()
    manifest = json.loads((bundle / "manifest.json").read_text())
    (bundle / "devicetree.dtb").write_bytes(RPI.read_bytes())
    del manifest["files"]["devicetree.dtb"]
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def tamper_link(bundle):
    link = bundle / "sys" / "bus" / "usb" / "devices" / "2-1"
    target = os.readlink(link)
    link.unlink()
    link.symlink_to(target.replace("usb2/2-1", "usb1"))


def tamper_escape(bundle):
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["symlinks"]["sys/bus/usb/devices/evil"] = "../../../../../../etc"
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def tamper_dotdot(bundle):
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"]["sys/../../etc/passwd"] = "0" * 64
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def tamper_manifest_json(bundle):
    (bundle / "manifest.json").write_text("{not json")


def tamper_no_manifest(bundle):
    (bundle / "manifest.json").unlink()


@pytest.mark.parametrize(
    "tamper",
    [tamper_file, tamper_missing, tamper_extra, tamper_extra_dtb, tamper_link, tamper_escape, tamper_dotdot,
     tamper_manifest_json, tamper_no_manifest],
)
def test_damaged_bundles_are_refused(host, scratch, tamper):
    bundle = scratch / "bundle"
    capture(bundle, host)
    open_bundle(bundle)
    tamper(bundle)
    with pytest.raises(InputError):
        open_bundle(bundle)


def test_damaged_bundle_cli_is_one_line_exit_2(host, scratch):
    bundle = scratch / "bundle"
    capture(bundle, host)
    tamper_file(bundle)
    done = run_cli(["show", "--replay", str(bundle)])
    assert done.returncode == 2 and done.stdout == b""
    assert done.stderr.decode().count("\n") == 1 and "bundle damaged" in done.stderr.decode()


def test_replay_refuses_sysfs_devicetree_and_live_usb_backends(host, scratch):
    capture(scratch / "bundle", host)
    for flag, value in (("--sysfs", "/sys"), ("--devicetree", str(RPI)), ("--usb-backend", "udev")):
        done = run_cli(["show", "--replay", str(scratch / "bundle"), flag, value])
        assert done.returncode == 2 and b"--replay" in done.stderr


def test_capture_refuses_a_non_empty_directory_and_leaves_nothing_on_failure(host, scratch):
    target = scratch / "bundle"
    target.mkdir()
    (target / "old").write_text("x")
    with pytest.raises(OutputError):
        capture(target, host)
    corrupt = scratch / "corrupt.dtb"
    corrupt.write_bytes(RPI.read_bytes()[:200])
    done = run_cli(["capture", str(scratch / "new"), "--sysfs", str(host), "--devicetree", str(corrupt)])
    assert done.returncode == 2 and done.stderr.decode().count("\n") == 1
    assert sorted(p.name for p in scratch.iterdir()) == ["bundle", "corrupt.dtb", "host"]


def test_node_without_devicetree(scratch):
    host = make_host(scratch / "host", None, PI4_HUBS)
    done = capture(scratch / "bundle", host)
    assert done.devicetree_from is None and not (scratch / "bundle" / "devicetree.dtb").exists()
    assert shown("--replay", str(scratch / "bundle")) == shown("--sysfs", str(host))


def test_usb_entries_pointing_outside_sysfs_are_skipped(scratch):
    host = make_host(scratch / "host", None, PI4_HUBS)
    outside = scratch / "outside"
    outside.mkdir()
    (outside / "idProduct").write_text("1234\n")
    (host / "bus" / "usb" / "devices" / "9-9").symlink_to(outside)
    done = capture(scratch / "bundle", host)
    assert any("9-9" in notice for notice in done.notices)
    assert not (scratch / "bundle" / "sys" / "bus" / "usb" / "devices" / "9-9").exists()


@pytest.mark.parametrize("attribute", ["idVendor", "idProduct", "bDeviceClass"])
def test_a_device_whose_id_cannot_be_read_is_left_out_as_the_reader_leaves_it_out(host, scratch, attribute):
    """An id that is a symlink is refused by the reader, which skips the device;
    left out of the bundle as an absent file, replay read an empty vendor instead."""
    ncs2 = next(p for p in (host / "bus" / "usb" / "devices").iterdir()
                if (p / "idProduct").is_file() and (p / "idProduct").read_text().strip() == "2485")
    target = ncs2.resolve() / attribute
    (scratch / "elsewhere").write_text((target).read_text())
    target.unlink()
    target.symlink_to(scratch / "elsewhere")
    live = rendered(api.Options(sysfs=host))
    assert b"03e7" not in live
    done = capture(scratch / "bundle", host)
    assert any(ncs2.name in notice and attribute in notice for notice in done.notices)
    assert rendered(api.replay_options(scratch / "bundle", api.Options())) == live
