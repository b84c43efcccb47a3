"""Wrong input that used to pass silently (issue 26, item 4): a directory that is no devicetree,
a file that is no features file. Each is one line and exit code 2, and nothing is walked first."""

import os
import shutil
from pathlib import Path

import pytest

from nfd_hooks import api, cli
from nfd_hooks.sources.devicetree import tree
from tests.conftest import DTB_DIR, FIXTURES, ROOT, features_entries, labels_of, run_cli
from tests.fdt_expand import expand

SAMPLE = FIXTURES / "nodes" / "rpi4b-ncs2-webcam"
JETSON_SYS = FIXTURES / "accelerators" / "jetson-nano-l4t-gk20a" / "sys"  # a trimmed live tree: compatible, model, name
PI = (DTB_DIR / "rpi-4-b.dtb").read_bytes()


def error_line(done, code: int = 2) -> str:
    stderr = done.stderr.decode()
    assert done.returncode == code, stderr
    assert len(stderr.splitlines()) == 1 and stderr.startswith("nfd-hooks: error: "), stderr
    assert done.stdout == b""
    return stderr.strip()[len("nfd-hooks: error: "):]


def another_jobs_scratch(top: Path) -> Path:
    """A directory like /tmp on a build machine: another job's devicetree somewhere inside it."""
    expand(PI, top / "job-1234" / "rootfs" / "proc-device-tree")
    (top / "notes.txt").write_text("not a tree\n")
    return top


def test_a_bundle_named_as_devicetree_says_replay(tmp_path):
    """The easy slip: before, an empty features file and exit 0."""
    assert error_line(run_cli(["show", "--devicetree", str(SAMPLE)])) == (
        f"{SAMPLE} is a capture bundle, not a devicetree: did you mean --replay {SAMPLE}?"
    )
    (tmp_path / "nfd-hooks").write_text("previous\n")
    done = run_cli(["write", "--devicetree", str(SAMPLE), "--features-dir", str(tmp_path)])
    assert "did you mean --replay" in error_line(done)
    assert (tmp_path / "nfd-hooks").read_text() == "previous\n"


def test_a_directory_that_is_no_tree_is_refused_without_walking_it(tmp_path, monkeypatch, capsys):
    """Before, --devicetree /tmp walked all of /tmp and labelled the cpu and gpu nodes of another job's tree."""
    scratch = another_jobs_scratch(tmp_path / "tmp")
    listed = []
    real_scandir = os.scandir
    monkeypatch.setattr(tree.os, "scandir", lambda path: listed.append(path) or real_scandir(path))
    assert cli.run(["show", "--devicetree", str(scratch), "--no-usb"]) == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err == (
        f"nfd-hooks: error: {scratch}: not a devicetree directory "
        "(no 'name' or 'compatible' file at its top, as a live tree has)\n"
    )
    assert listed == []  # not one directory listed


@pytest.mark.parametrize("markers", [("name",), ("compatible",), ("name", "compatible", "model")])
def test_a_tree_is_told_by_what_a_live_root_has(tmp_path, markers):
    root = tmp_path / "base"
    (root / "cpus" / "cpu@0").mkdir(parents=True)
    (root / "cpus" / "cpu@0" / "compatible").write_bytes(b"arm,cortex-a53\0")
    contents = {"name": b"\0", "compatible": b"acme,board\0", "model": b"Acme Board\0"}
    for marker in markers:
        (root / marker).write_bytes(contents[marker])
    done = run_cli(["show", "--devicetree", str(root), "--no-usb"])
    assert done.returncode == 0, done.stderr
    assert labels_of(done.stdout)["beta.devicetree.org/arm-cortex-a53"] == "1"


def test_real_shaped_trees_are_still_read(tmp_path):
    """A tree expanded as Linux shows a DTB, and a fixture's trimmed one, read as before."""
    full = expand(PI, tmp_path / "base")
    assert labels_of(run_cli(["show", "--devicetree", str(full), "--no-usb"]).stdout)[
        "beta.devicetree.org/raspberrypi-4-model-b"] == "1"
    jetson = run_cli(["show", "--devicetree", str(JETSON_SYS / "firmware" / "devicetree" / "base"), "--no-usb"])
    assert jetson.returncode == 0 and labels_of(jetson.stdout)["beta.devicetree.org/nvidia-p3450-0000"] == "1"


def test_a_sysfs_root_or_the_trees_parent_is_pointed_at_the_tree():
    sysfs = error_line(run_cli(["show", "--devicetree", str(JETSON_SYS), "--no-usb"]))
    assert sysfs.endswith(f"it is a sysfs root: did you mean --sysfs {JETSON_SYS}?")
    parent = JETSON_SYS / "firmware" / "devicetree"
    assert error_line(run_cli(["show", "--devicetree", str(parent), "--no-usb"])).endswith(
        f"did you mean {parent / 'base'}?")


def test_the_nodes_own_tree_torn_costs_only_the_devicetree_labels(tmp_path):
    """Not named by the user: the hook writes the file without it (a node's hardware never blocks its pod)."""
    sysfs = tmp_path / "sys"
    shutil.copytree(FIXTURES / "usb" / "edge-node", sysfs, symlinks=True)
    (sysfs / "firmware" / "devicetree" / "base" / "cpus").mkdir(parents=True)  # emptied: no name, no compatible
    out = tmp_path / "features.d"
    out.mkdir()
    done = run_cli(["write", "--sysfs", str(sysfs), "--features-dir", str(out)])
    assert done.returncode == 0, done.stderr
    assert "no devicetree labels" in done.stderr.decode()
    assert labels_of((out / "nfd-hooks").read_bytes())["feature.node.kubernetes.io/usb-ff_03e7_2485.present"] == "true"


def test_capture_refuses_a_directory_that_is_no_tree_before_walking_it(tmp_path):
    scratch = another_jobs_scratch(tmp_path / "tmp")
    sysfs = tmp_path / "sys"
    sysfs.mkdir()
    line = error_line(run_cli(["capture", str(tmp_path / "bundle"), "--sysfs", str(sysfs), "--devicetree", str(scratch)]))
    assert line.startswith(f"{scratch}: not a devicetree directory")
    assert features_entries(tmp_path) == ["sys", "tmp"]  # no bundle, no staging directory


# ---------------------------------------------------------------- check


def test_check_on_a_readme_says_so_once():
    """Before: 481 problems, one per line of prose."""
    line = error_line(run_cli(["check", str(ROOT / "README.md")]))
    assert line.startswith(f"{ROOT / 'README.md'}: not a features file: ")
    assert "non-comment lines have spaces before any '='" in line


def test_check_on_a_dtb_says_so_once():
    """Before: the blob's bytes printed as label names."""
    dtb = DTB_DIR / "rpi-4-b.dtb"
    assert error_line(run_cli(["check", str(dtb)])) == (
        f"{dtb}: not a features file: it is a devicetree blob ('nfd-hooks show --devicetree FILE' reads it)"
    )
    binary = run_cli(["check", "/bin/true"])
    assert error_line(binary) == "/bin/true: not a features file: it is binary (it holds NUL bytes)"


def test_check_stays_useful_on_features_files_with_bad_lines(tmp_path):
    """A few bad lines, or many lines that are features with bad values: each line is reported."""
    few = tmp_path / "few"
    few.write_text("example.com/a=1\nexample.com/b=2\nthis is a note someone left\nexample.com/c=3\n")
    done = run_cli(["check", str(few)])
    assert done.returncode == 1 and done.stderr == b""
    assert done.stdout.decode().splitlines() == [
        f"{few}:3: label name 'this is a note someone left' is not a valid Kubernetes label name"]
    values = tmp_path / "values"
    values.write_text("".join(f"example.com/model{n}=Raspberry Pi {n}\n" for n in range(12)))
    lines = run_cli(["check", str(values)]).stdout.decode().splitlines()
    assert len(lines) == 12 and all("is not a valid Kubernetes label value" in line for line in lines)


def test_a_foreign_file_in_a_features_directory_is_one_error_of_it(tmp_path):
    """NFD reads every file there: it is an error of the directory (exit 1), reported once."""
    features = tmp_path / "features.d"
    features.mkdir()
    shutil.copy(ROOT / "README.md", features / "README.md")
    (features / "nfd-hooks").write_bytes(api.render_scan(api.scan(api.replay_options(SAMPLE, api.Options())), api.Options()))
    done = run_cli(["check", str(features)])
    assert done.returncode == 1 and done.stderr == b""
    [line] = done.stdout.decode().splitlines()
    assert line.startswith(f"{features / 'README.md'}: not a features file: ")
    assert line.endswith("NFD reads it all the same, and drops what it cannot use")
