"""Output over NFD's 64 KiB per file (issue 14, item 3): nothing a node presents
may block its NFD pod. Raw features give way, then USB labels with serials,
then the labels are split over several files, each one NFD reads; show still
prints, write exits 0, and the node keeps its devicetree labels."""

import os
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List

import pytest

from nfd_hooks import api, writer
from nfd_hooks.features import MAX_FILE_SIZE, PART_INFIX
from tests.conftest import DTB_DIR, features_entries, labels_of, require_tool, run_cli
from tests.fakehost import crowded_usb, make_host

PREFIX = "beta.devicetree.org"
PI_LABELS = {
    f"{PREFIX}/raspberrypi-4-model-b": "1",
    f"{PREFIX}/brcm-bcm2711": "1",
    f"{PREFIX}/arm-cortex-a72": "4",
    f"{PREFIX}/brcm-bcm2711-vc5": "1",
    f"{PREFIX}/brcm-2711-v3d": "1",
}
NOW = datetime(2026, 12, 4, 7, 0, tzinfo=timezone.utc)


def ok(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, done.stderr.decode()
    assert b"Traceback" not in done.stderr
    return done


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    """A Pi 4B's sysfs with N crowded USB devices, built once per N (thousands of files)."""
    built: Dict[int, Path] = {}

    def host(usb_devices: int) -> Path:
        if usb_devices not in built:
            root = tmp_path_factory.mktemp(f"pi-{usb_devices}") / "sys"
            built[usb_devices] = make_host(root, (DTB_DIR / "rpi-4-b.dtb").read_bytes(), crowded_usb(usb_devices))
        return built[usb_devices]

    return host


def written(directory: Path) -> Dict[str, bytes]:
    return {name: (directory / name).read_bytes() for name in features_entries(directory)}


def read_as_nfd(files: Dict[str, bytes], raw_features: bool = False) -> Dict[str, str]:
    """Every file merged, as NFD's local source merges a directory."""
    seen: Dict[str, str] = {}
    for name in sorted(files):
        seen.update(labels_of(files[name], raw_features))
    return seen


def test_a_65500_byte_model_leaves_out_the_model_alone(tmp_path):
    blob = tmp_path / "pi.dtb"
    blob.write_bytes((DTB_DIR / "rpi-4-b.dtb").read_bytes())
    subprocess.run([require_tool("fdtput"), "-t", "s", str(blob), "/", "model", "M" * 65500], check=True)
    shown = ok(run_cli(["show", "--devicetree", str(blob), "--no-usb"]))
    assert labels_of(shown.stdout) == PI_LABELS
    raw = labels_of(shown.stdout, raw_features=True)
    assert f"{PREFIX}/compatible/raspberrypi,4-model-b" in raw and f"{PREFIX}/root/model" not in raw
    assert shown.stderr.decode().splitlines() == [
        f"nfd-hooks: left out raw feature '{PREFIX}/root/model': its line alone is 65544 bytes, "
        f"more than one features file can hold ({MAX_FILE_SIZE})"
    ]
    out = tmp_path / "features.d"
    out.mkdir()
    ok(run_cli(["write", "--devicetree", str(blob), "--no-usb", "--features-dir", str(out)]))
    assert written(out) == {"nfd-hooks": shown.stdout}


def test_378_usb_devices_split_over_files_nfd_reads_each(tmp_path, hosts):
    sysfs = hosts(378)
    shown = ok(run_cli(["show", "--sysfs", str(sysfs)]))
    out = tmp_path / "features.d"
    out.mkdir()
    (out / "nfd-hooks").write_text("previous\n")
    done = ok(run_cli(["write", "--sysfs", str(sysfs), "--features-dir", str(out)]))
    files = written(out)
    assert len(files) == 2 and "nfd-hooks" in files
    assert all(len(content) <= MAX_FILE_SIZE for content in files.values())
    (part,) = set(files) - {"nfd-hooks"}
    assert part.startswith("nfd-hooks" + PART_INFIX)
    # show prints exactly the files, main first.
    assert shown.stdout == files["nfd-hooks"] + files[part]
    labels = read_as_nfd(files)
    assert len(labels) == sum(len(labels_of(c)) for c in files.values())  # no label in two files
    assert PI_LABELS.items() <= labels.items()
    usb = {key for key in labels if "/usb-" in key}
    assert len(usb) == 4 * 378  # 0e, ef, fe and ff of each device
    stderr = done.stderr.decode()
    assert "left out the 6 raw features" in stderr and "written as 2 files" in stderr
    assert f"wrote {out / 'nfd-hooks'} and 1 more file beside it" in stderr
    # The same node gives the same files.
    again = tmp_path / "again"
    again.mkdir()
    ok(run_cli(["write", "--sysfs", str(sysfs), "--features-dir", str(again)]))
    assert written(again) == files
    # NFD would read every one of them: check finds nothing wrong, not even a warning.
    check = run_cli(["check", "--strict", str(out)])
    assert (check.returncode, check.stdout) == (0, b""), check.stdout.decode()


def test_serial_labels_give_way_before_a_split(tmp_path):
    """1000 devices, one allowlisted interface each, labelled with serials: too
    long with them, one file without."""
    sysfs = make_host(tmp_path / "sys", (DTB_DIR / "rpi-4-b.dtb").read_bytes(), crowded_usb(1000, ("ff",), serials=True))
    done = ok(run_cli(["show", "--sysfs", str(sysfs), "--usb-label-fields", "class,vendor,device,serial"]))
    assert done.stdout.count(b"# Written by") == 1
    labels = labels_of(done.stdout)
    assert not any("/usb-" in key for key in labels)
    assert PI_LABELS.items() <= labels.items()
    stderr = done.stderr.decode()
    assert "left out the 6 raw features" in stderr and "left out the 1000 USB labels with serials" in stderr


def test_fewer_files_later_removes_the_extra_ones(tmp_path, hosts):
    out = tmp_path / "features.d"
    out.mkdir()
    ok(run_cli(["write", "--sysfs", str(hosts(378)), "--features-dir", str(out)]))
    assert len(features_entries(out)) == 2
    (out / "other-tool").write_text("example.com/other=1\n")
    (out / "nfd-hooks.part-notours").write_text("example.com/other=2\n")
    ok(run_cli(["write", "--sysfs", str(hosts(3)), "--features-dir", str(out)]))
    assert features_entries(out) == ["nfd-hooks", "nfd-hooks.part-notours", "other-tool"]


def labels_on_disk(directory: Path) -> Dict[str, str]:
    return read_as_nfd({name: (directory / name).read_bytes() for name in os.listdir(directory) if not name.startswith(".")})


@pytest.mark.parametrize("before,after", [(378, 600), (600, 378), (378, 3), (3, 378), (600, 601)])
def test_no_label_in_both_old_and_new_files_is_ever_missing(tmp_path, monkeypatch, hosts, before, after):
    """A worker may read features.d between any two steps of a split write: at
    each, every label the old and the new files share is there."""
    out = tmp_path / "features.d"
    out.mkdir()
    old_options = api.Options(sysfs=hosts(before))
    new_options = api.Options(sysfs=hosts(after))
    api.write(old_options, out)
    old = labels_on_disk(out)
    new = read_as_nfd(dict(api.files(api.scan(new_options), new_options)))
    shared = {key for key in old if key in new}
    states: List[Dict[str, str]] = []
    replace, unlink = writer._replace, os.unlink

    def observed_replace(*args):
        replace(*args)
        states.append(labels_on_disk(out))

    def observed_unlink(path, *args, **kwargs):
        unlink(path, *args, **kwargs)
        if Path(path).parent == out:
            states.append(labels_on_disk(out))

    monkeypatch.setattr(writer, "_replace", observed_replace)
    monkeypatch.setattr(writer.os, "unlink", observed_unlink)
    api.write(new_options, out)
    assert states and states[-1] == new
    for state in states:
        assert shared <= state.keys()
        assert all(state[key] in (old[key], new[key]) for key in shared)


def test_a_failed_split_write_leaves_the_old_files_and_nothing_new(tmp_path, monkeypatch, hosts):
    out = tmp_path / "features.d"
    out.mkdir()
    (out / "nfd-hooks").write_text("previous\n")
    options = api.Options(sysfs=hosts(378))
    replace = writer._replace

    def main_fails(directory, scratch, target, content):
        if target.name == "nfd-hooks":
            raise writer.OutputError("disk full")
        replace(directory, scratch, target, content)

    monkeypatch.setattr(writer, "_replace", main_fails)
    with pytest.raises(writer.OutputError):
        api.write(options, out)
    assert features_entries(out) == ["nfd-hooks"]
    assert (out / "nfd-hooks").read_text() == "previous\n"


def test_an_expiry_never_moves_the_split(hosts):
    options = api.Options(sysfs=hosts(378))
    result = api.scan(options)
    plain = api.files(result, options)
    expiring = api.files(result, options._replace(expires_in=api.timedelta(days=3650)), NOW)
    assert [suffix for suffix, _ in plain] == [suffix for suffix, _ in expiring]
    for (_, a), (_, b) in zip(plain, expiring):
        assert labels_of(a) == labels_of(b) and len(b) <= MAX_FILE_SIZE
        assert b.splitlines()[1].startswith(b"# +expiry-time=")
