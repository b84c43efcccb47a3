"""Hostile symlinks and FIFOs in sysfs trees and capture bundles: nothing outside
the root is ever opened or printed, nothing hangs, and whatever capture writes
replays to the live result.

Links point out of the tree (absolutely, relatively, through in-tree link
chains that a text check thinks stay inside), at devices that would give labels
if followed, at /dev/zero, at FIFOs, or loop; FIFOs replace attributes, device
entries, PCI ids, the manifest and the blob. See confinement.py for how reads
outside the root are detected.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List, Tuple

from hypothesis import event, example, given
from hypothesis import strategies as st

from nfd_hooks import api
from nfd_hooks.capture import capture
from nfd_hooks.errors import NfdHooksError
from tests.conftest import DTB_DIR, FIXTURES
from tests.fdt_expand import expand
from tests.reliability.confinement import assert_not_leaked, confined, hazards, plant
from tests.reliability.invariants import check_error, check_scan, count, scaled, scratch_dir
from nfd_hooks.sources.usb.sysfs import DEVICE_ATTRIBUTES

SCRATCH = scratch_dir()
EDGE_NODE = FIXTURES / "usb" / "edge-node"
PCI_FUNCTION = "devices/pci0000:00/0000:00:01.0"  # an inside PCI function, in no catalog entry


def make_host(root: Path, devicetree: bool) -> Path:
    """The edge-node USB tree, a PCI function, and (``devicetree``) a Pi 4B's live tree."""
    shutil.copytree(EDGE_NODE, root, symlinks=True)
    pci = root / PCI_FUNCTION
    pci.mkdir(parents=True)
    (pci / "vendor").write_text("0x8086\n")
    (pci / "device").write_text("0x1234\n")
    (root / "bus" / "pci" / "devices").mkdir(parents=True)
    (root / "bus" / "pci" / "devices" / "0000:00:01.0").symlink_to("../../../" + PCI_FUNCTION)
    if devicetree:
        expand((DTB_DIR / "rpi-4-b.dtb").read_bytes(), root / "firmware" / "devicetree" / "base")
    return root


def places(root: Path) -> List[Path]:
    """Every entry a reader opens: device and interface attributes, bus entries, PCI ids."""
    top = root / "bus" / "usb" / "devices"
    found = []
    for name in sorted(os.listdir(top)):
        found.append(top / name)
        real = Path(os.path.realpath(top / name))
        if ":" in name:
            found.append(real / "bInterfaceClass")
        else:
            found.extend(real / attribute for attribute in DEVICE_ATTRIBUTES)
    found += [top / "9-9", root / "bus" / "pci" / "devices" / "0000:00:01.0", root / "bus" / "pci" / "devices" / "0000:09:00.0"]
    found += [root / PCI_FUNCTION / "vendor", root / PCI_FUNCTION / "device"]
    return found


plantings = st.lists(st.tuples(st.integers(0, 255), hazards), min_size=1, max_size=5)


def plant_all(root: Path, chosen: List[Tuple[int, tuple]]) -> List[Path]:
    candidates = places(root)
    planted = []
    for index, hazard in chosen:
        event(f"{hazard[0]} -> {hazard[1]}")
        path = candidates[index % len(candidates)]
        if root in path.parents and not os.path.lexists(path.parent / ".h0"):  # one chain per directory
            planted += plant(path, hazard, root)
    return planted


def options_for(sysfs: Path, devicetree: bool, details: bool) -> api.Options:
    return api.Options(
        sysfs=sysfs, use_devicetree=devicetree, usb_backend="sysfs", usb_details=details,
        usb_label_fields=("class", "vendor", "device", "serial"),
    )


def scan_confined(options: api.Options) -> bytes:
    """check_scan's invariants, inside the root only, and nothing from outside in any output."""
    with confined():
        content = check_scan(options)
        if content is not None:
            result = api.scan(options)
            assert_not_leaked(content, api.render_json(result), "\n".join(result.notices))
    return content


@scaled(3)
@given(plantings, st.booleans())
def test_hostile_links_in_sysfs_never_read_outside(chosen, details):
    count("confined-sysfs")
    with tempfile.TemporaryDirectory(dir=SCRATCH) as scratch:
        root = make_host(Path(scratch) / "sys", devicetree=False)
        plant_all(root, chosen)
        assert scan_confined(options_for(root, False, details)) is not None, "a sysfs tree must never fail the scan"


# ---------------------------------------------------------------- bundles

PRISTINE = SCRATCH / "pristine-bundle"
capture(PRISTINE, make_host(SCRATCH / "pristine-host", devicetree=True), with_serials=True)
BUNDLE_FILES = sorted(json.loads((PRISTINE / "manifest.json").read_text())["files"])
BUNDLE_LINKS = sorted(json.loads((PRISTINE / "manifest.json").read_text())["symlinks"])


def forge_manifest(bundle: Path, planted: List[Path]) -> None:
    """List what was planted as the manifest expects it: a link as a symlink with
    its target, a file with its digest; so only the real checks can refuse it."""
    import hashlib

    path = bundle / "manifest.json"
    if not path.is_file() or path.is_symlink():
        return
    manifest = json.loads(path.read_text())
    for entry in planted:
        relative = str(entry.relative_to(bundle))
        manifest["files"].pop(relative, None)
        manifest["symlinks"].pop(relative, None)
        if entry.is_symlink():
            manifest["symlinks"][relative] = os.readlink(entry)
            if os.path.isfile(entry) and not os.path.isdir(entry):
                try:
                    manifest["files"][relative] = hashlib.sha256(entry.read_bytes()).hexdigest()
                except OSError:
                    pass
    path.write_text(json.dumps(manifest))


@scaled(3)
@given(
    st.lists(st.tuples(st.sampled_from(["file", "link", "manifest", "devicetree", "sys-link"]), st.integers(0, 255), hazards),
             min_size=1, max_size=4),
    st.booleans(),
    st.booleans(),
)
# The attack: device entries and attributes that, listed in a forged
# manifest, read as staying in the bundle and lead out of it.
@example(chosen=[("sys-link", 0, ("chain", "usb-device"))], forge=True, details=False)
@example(chosen=[("file", 7, ("chain", "secret"))], forge=True, details=True)
def test_hostile_bundles_never_read_outside(chosen, forge, details):
    count("confined-bundle")
    with tempfile.TemporaryDirectory(dir=SCRATCH) as scratch:
        bundle = Path(scratch) / "bundle"
        shutil.copytree(PRISTINE, bundle, symlinks=True)
        planted = []
        for where, index, hazard in chosen:
            event(f"{where}: {hazard[0]} -> {hazard[1]}")
            path = bundle / {
                "file": BUNDLE_FILES[index % len(BUNDLE_FILES)],
                "link": BUNDLE_LINKS[index % len(BUNDLE_LINKS)],
                "manifest": "manifest.json",
                "devicetree": "devicetree.dtb",
                "sys-link": f"sys/bus/usb/devices/9-{index % 4}",
            }[where]
            if not os.path.lexists(path.parent / ".h0"):  # one chain per directory
                planted += plant(path, hazard, bundle)
        if forge:
            forge_manifest(bundle, planted)
        base = options_for(Path("/sys"), True, details)
        with confined():
            try:
                options = api.replay_options(bundle, base)
            except NfdHooksError as error:
                check_error(error)
                assert_not_leaked(str(error))
                event("refused")
                return
        event("replayed")
        scan_confined(options)


@scaled(50)
@given(st.lists(st.tuples(st.sampled_from(["file", "link", "devicetree"]), st.integers(0, 255), hazards), min_size=1, max_size=3))
def test_hostile_bundles_through_the_command(chosen):
    """The process too: inotify sees a child's opens; one clean line or a clean output."""
    count("confined-bundle-cli")
    with tempfile.TemporaryDirectory(dir=SCRATCH) as scratch:
        bundle = Path(scratch) / "bundle"
        shutil.copytree(PRISTINE, bundle, symlinks=True)
        planted = []
        for where, index, hazard in chosen:
            names = {"file": BUNDLE_FILES, "link": BUNDLE_LINKS, "devicetree": ["devicetree.dtb"]}[where]
            path = bundle / names[index % len(names)]
            if not os.path.lexists(path.parent / ".h0"):
                planted += plant(path, hazard, bundle)
        forge_manifest(bundle, planted)
        with confined(40):
            done = subprocess.run(
                [sys.executable, "-m", "nfd_hooks", "show", "--replay", str(bundle), "--format", "json",
                 "--usb-label-fields", "class,vendor,device,serial"],
                capture_output=True, timeout=30,
            )
        stderr = done.stderr.decode("utf-8", "replace")
        assert done.returncode in (0, 2) and "Traceback" not in stderr, stderr
        if done.returncode:
            assert stderr.startswith("nfd-hooks: error: ") and stderr.count("\n") == 1, stderr
        assert_not_leaked(done.stdout, stderr)


# ---------------------------------------------------------------- capture of a hostile node


@scaled(3)
@given(plantings)
def test_capture_of_hostile_sysfs_stays_inside_and_replays_the_live_result(chosen):
    count("confined-capture")
    with tempfile.TemporaryDirectory(dir=SCRATCH) as scratch:
        root = make_host(Path(scratch) / "sys", devicetree=False)
        plant_all(root, chosen)
        bundle = Path(scratch) / "bundle"
        live = options_for(root, False, False)
        with confined():
            try:
                capture(bundle, root, with_serials=True)
            except NfdHooksError as error:
                check_error(error)
                assert not bundle.exists()
                return
            expected = api.render_scan(api.scan(live), live)
        assert_not_leaked(*(p.read_bytes() for p in bundle.rglob("*") if p.is_file() and not p.is_symlink()))
        assert [p for p in bundle.rglob("*") if p.is_symlink() and not p.exists()] == [], "dangling link in the bundle"
        with confined():
            replay = api.replay_options(bundle, live)
            assert api.render_scan(api.scan(replay), replay) == expected, "replay differs from the live result"
