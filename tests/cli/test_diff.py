"""``--diff``: what a write changes in the features NFD reads from the installed file."""

import shutil
from datetime import datetime, timezone

import pytest

from nfd_hooks import cli
from nfd_hooks.diff import Change, changes, features_of
from tests.conftest import FIXTURES, features_entries, labels_of

SAMPLE = FIXTURES / "nodes" / "rpi4b-ncs2-webcam"
EDGE_NODE = FIXTURES / "usb" / "edge-node"
EDGETPU = "accelerator.feature.node.kubernetes.io/edgetpu.count"


def run(capsys, *args, code=0):
    assert cli.run(list(args)) == code
    out = capsys.readouterr()
    return out.out.splitlines(), out.err.splitlines()


def test_with_nothing_installed_every_feature_is_added(tmp_path, capsys):
    shown, _ = run(capsys, "show", "--replay", str(SAMPLE))
    lines, err = run(capsys, "show", "--diff", "--replay", str(SAMPLE), "--features-dir", str(tmp_path))
    file = "\n".join(shown).encode()
    labels, everything = labels_of(file), labels_of(file, raw_features=True)
    expected = [f"+ {k}={v}" if k in labels else f"+ {k}={v} (raw)" for k, v in sorted(everything.items())]
    assert lines == expected
    assert err == [f"nfd-hooks: no features file at {tmp_path / 'nfd-hooks'} yet: {len(expected)} added, 0 removed, 0 changed"]
    assert features_entries(tmp_path) == []  # show never writes


def test_after_a_write_nothing_differs(tmp_path, capsys):
    run(capsys, "write", "--replay", str(SAMPLE), "--features-dir", str(tmp_path))
    lines, err = run(capsys, "show", "--diff", "--replay", str(SAMPLE), "--features-dir", str(tmp_path))
    assert lines == []
    assert err == [f"nfd-hooks: against {tmp_path / 'nfd-hooks'}: 0 added, 0 removed, 0 changed"]


def test_a_coral_unplugged_changes_the_count_and_removes_its_usb_label(tmp_path, capsys):
    features = tmp_path / "features.d"
    features.mkdir()
    run(capsys, "write", "--sysfs", str(EDGE_NODE), "--no-devicetree", "--features-dir", str(features))
    sysfs = tmp_path / "sys"
    shutil.copytree(EDGE_NODE, sysfs, symlinks=True)
    (sysfs / "bus" / "usb" / "devices" / "2-2").unlink()  # the Coral that had its firmware (18d1:9302)
    lines, err = run(capsys, "write", "--diff", "--sysfs", str(sysfs), "--no-devicetree", "--features-dir", str(features))
    ready = EDGETPU.replace(".count", ".ready")
    assert lines == [
        f"~ {EDGETPU}=2 -> 1",
        f"- {ready}=true",  # the one left has no firmware: present, not ready
        f"- {ready}-count=1",
        "- feature.node.kubernetes.io/usb-ff_18d1_9302.present=true",
    ]
    assert err[0] == f"nfd-hooks: against {features / 'nfd-hooks'}: 0 added, 3 removed, 1 changed"
    assert err[1].startswith(f"nfd-hooks: wrote {features / 'nfd-hooks'}")
    assert labels_of((features / "nfd-hooks").read_bytes())[EDGETPU] == "1"  # and it did write
    again, _ = run(capsys, "write", "--diff", "--sysfs", str(sysfs), "--no-devicetree", "--features-dir", str(features))
    assert again == []


def test_an_expired_file_is_compared_as_nfd_reads_it(tmp_path, capsys):
    """NFD ignores every line after an expiry that has passed: they count as not installed."""
    run(capsys, "write", "--replay", str(SAMPLE), "--features-dir", str(tmp_path), "--expires-in", "1h")
    target = tmp_path / "nfd-hooks"
    content = target.read_bytes().splitlines(keepends=True)
    content = [b"# +expiry-time=2020-01-01T00:00:00Z\n" if line.startswith(b"# +expiry-time=") else line for line in content]
    target.write_bytes(b"".join(content))
    lines, _ = run(capsys, "show", "--diff", "--replay", str(SAMPLE), "--features-dir", str(tmp_path))
    assert lines and all(line.startswith("+ ") for line in lines)
    # and a fresh expiry alone is no change
    run(capsys, "write", "--replay", str(SAMPLE), "--features-dir", str(tmp_path), "--expires-in", "1h")
    lines, _ = run(capsys, "show", "--diff", "--replay", str(SAMPLE), "--features-dir", str(tmp_path), "--expires-in", "2h")
    assert lines == []


def test_a_label_that_became_a_raw_feature_is_a_change():
    now = datetime.now(timezone.utc)
    old = features_of(b"beta.devicetree.org/model=Pi\n", now)
    new = features_of(b"# +no-label\nbeta.devicetree.org/model=Pi\n", now)
    assert changes(old, new) == [Change("beta.devicetree.org/model", ("Pi", True), ("Pi", False))]
    assert changes(old, new)[0].format() == "~ beta.devicetree.org/model=Pi -> Pi (raw)"


@pytest.mark.parametrize("format_", ["json", "table"])
def test_diff_with_another_format_is_bad_input(tmp_path, capsys, format_):
    lines, err = run(capsys, "show", "--diff", "--format", format_, "--replay", str(SAMPLE),
                     "--features-dir", str(tmp_path), code=2)
    assert lines == [] and len(err) == 1 and err[0].startswith("nfd-hooks: error: --diff prints changes")


def test_an_unreadable_installed_file_is_one_line_exit_2(tmp_path, capsys):
    (tmp_path / "nfd-hooks").mkdir()  # a directory where the file should be
    lines, err = run(capsys, "show", "--diff", "--replay", str(SAMPLE), "--features-dir", str(tmp_path), code=2)
    assert lines == [] and len(err) == 1
    assert err[0].startswith(f"nfd-hooks: error: cannot read {tmp_path / 'nfd-hooks'} to compare with")


def test_quiet_write_prints_nothing_but_keeps_the_diff(tmp_path, capsys):
    lines, err = run(capsys, "write", "--quiet", "--replay", str(SAMPLE), "--features-dir", str(tmp_path))
    assert (lines, err) == ([], [])
    assert (tmp_path / "nfd-hooks").is_file()
    lines, err = run(capsys, "write", "-q", "--diff", "--replay", str(SAMPLE), "--features-dir", str(tmp_path),
                     "--no-accelerators")
    assert lines == ["- accelerator.feature.node.kubernetes.io/movidius-vpu.count=1",
                     "- accelerator.feature.node.kubernetes.io/movidius-vpu.present=true"]
    assert err == []


def test_quiet_drops_the_notices_too(tmp_path, capsys):
    """A node without a devicetree or USB: a notice each, one line each, unless --quiet."""
    sysfs, features = tmp_path / "sys", tmp_path / "features.d"
    sysfs.mkdir()
    features.mkdir()
    _, err = run(capsys, "write", "--sysfs", str(sysfs), "--features-dir", str(features))
    assert any("no devicetree" in line for line in err) and err[-1].startswith("nfd-hooks: wrote ")
    assert all(line.startswith("nfd-hooks: ") for line in err)
    assert run(capsys, "write", "--quiet", "--sysfs", str(sysfs), "--features-dir", str(features)) == ([], [])
