"""``show --format table``: the account a person reads, from the same scan as the file."""

import os
import pty
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nfd_hooks import cli
from nfd_hooks.sources.usb.ids import USB_IDS_PATHS
from nfd_hooks.table import columns
from tests.conftest import DTB_DIR, FIXTURES, ROOT, labels_of

SAMPLE = FIXTURES / "nodes" / "rpi4b-ncs2-webcam"
EDGE_NODE = FIXTURES / "usb" / "edge-node"


def run(capsys, *args):
    assert cli.run(list(args)) == 0
    return capsys.readouterr().out


def rows(table, first_word):
    """The lines of the row that starts with ``first_word`` (a bus path, a node path, an id),
    its wrapped continuation lines included."""
    return row_lines(table, first_word)[1]


def row_lines(table, first_word):
    """The header above the row that starts with ``first_word``, and the row's lines."""
    lines = table.splitlines()
    for i, line in enumerate(lines):
        if line.split()[:1] == [first_word]:
            end = i + 1
            while end < len(lines) and lines[end].startswith(" " * 5) and lines[end].strip():
                end += 1
            header = next(h for h in reversed(lines[:i]) if h.split()[0] in ("BUS", "NODE", "ID"))
            return header, lines[i:end]
    raise AssertionError(f"no row {first_word!r} in\n{table}")


def cells(table, first_word):
    """That row as {column name: [its lines]}, cut where the header's columns start."""
    header, lines = row_lines(table, first_word)
    spans = [(m.group(), m.start()) for m in re.finditer(r"\S+(?: \S+)*", header)]
    bounds = [start for _, start in spans[1:]] + [None]
    return {
        name: [text for text in (line[start:end].strip() for line in lines) if text]
        for (name, start), end in zip(spans, bounds)
    }


def words(lines):
    return " ".join(" ".join(lines).split())


def test_sample_node_table_accounts_for_every_label_and_device(capsys):
    table = run(capsys, "show", "--format", "table", "--replay", str(SAMPLE))
    written = labels_of(run(capsys, "show", "--replay", str(SAMPLE)).encode())
    assert all(len(line) <= 80 for line in table.splitlines())
    assert "\033" not in table  # captured stdout is no terminal: plain text
    for name, value in written.items():  # every label of the file is accounted for
        prefix, short = name.rsplit("/", 1)
        if prefix == "beta.devicetree.org":
            assert f"{short}={value}" in table, name
        elif prefix == "feature.node.kubernetes.io":  # the column leaves out the .present all end in
            assert short.endswith(".present") and short[: -len(".present")] in table, name
        else:
            ident, kind = short.rsplit(".", 1)
            assert rows(table, ident)[0].split()[1] == written[f"{prefix}/{ident}.count"], name
    assert f"Features file: {len(written)} labels" in table
    # the NCS2 in the USB 3 port and the webcam behind the Pi's hub; the hubs label nothing
    assert rows(table, "2-1")[0].endswith("usb-ff_03e7_2485")
    assert "Labels: feature.node.kubernetes.io/<LABEL>.present=true." in words(table.splitlines())
    assert rows(table, "1-1")[0].endswith("hub") and rows(table, "usb1")[0].endswith("hub")
    webcam = cells(table, "1-1.3")
    assert (webcam["ID"], webcam["CLASS"], webcam["IFACES"]) == (["046d:0825"], ["ef"], ["01 0e"])
    assert webcam["LABEL, OR WHY NONE"] == ["usb-0e_046d_0825", "usb-ef_046d_0825"]
    # devicetree: the root's two strings; each cpu node with the label's total
    root = cells(table, "/")
    assert (root["STATUS"], root["COMPATIBLE"]) == (["-"], ["raspberrypi,4-model-b", "brcm,bcm2711"])
    assert root["LABEL"] == ["raspberrypi-4-model-b=1", "brcm-bcm2711=1"]
    assert cells(table, "/cpus/cpu@0")["LABEL"] == ["arm-cortex-a72=4"]
    assert rows(table, "movidius-vpu")[0].endswith("USB 2-1 03e7:2485")


def test_names_come_from_usb_ids(capsys):
    if not any(Path(path).is_file() for path in USB_IDS_PATHS):
        pytest.skip("usb.ids not installed (Debian package usb.ids): names not checked")
    table = run(capsys, "show", "--format", "table", "--replay", str(SAMPLE))
    assert words(cells(table, "1-1.3")["VENDOR PRODUCT"]) == "Logitech, Inc. Webcam C270"
    assert words(cells(table, "2-1")["VENDOR PRODUCT"]) == "Intel Movidius MyriadX"
    assert "ff Vendor Specific." in words(table.splitlines())


def test_usb_fixture_says_why_a_device_gives_no_label(capsys):
    table = run(capsys, "show", "--format", "table", "--sysfs", str(EDGE_NODE), "--no-devicetree")
    assert all(len(line) <= 80 for line in table.splitlines())
    assert words(cells(table, "1-1.2")["LABEL, OR WHY NONE"]) == "class 08 not allowlisted"  # the SanDisk stick
    assert "Devicetree" not in table
    edgetpu = cells(table, "edgetpu")
    assert edgetpu["COUNT"] == ["2"]  # the Coral before and after its firmware
    assert edgetpu["READY"] == ["1"]  # only the one with its firmware loaded
    assert edgetpu["MATCHED"] == ["USB 1-2 1a6e:089a", "USB 2-2 18d1:9302 ready"]
    only_08 = run(capsys, "show", "--format", "table", "--sysfs", str(EDGE_NODE), "--no-devicetree", "--usb-class", "08")
    assert cells(only_08, "1-1.2")["LABEL, OR WHY NONE"] == ["usb-08_0781_5567"]
    assert words(cells(only_08, "1-1.1")["LABEL, OR WHY NONE"]) == "classes 01 0e ef not allowlisted"


def test_a_device_whose_interfaces_vanished_says_so(tmp_path, capsys):
    """A device unplugged while read: its ids were read, its interfaces (and descriptors) already gone."""
    sysfs = tmp_path / "sys"
    shutil.copytree(EDGE_NODE, sysfs, symlinks=True)
    stick = next(p for p in (sysfs / "devices").rglob("1-1.2") if p.is_dir())
    for entry in stick.iterdir():
        if entry.name.startswith("1-1.2:"):
            shutil.rmtree(entry)
        elif entry.name == "descriptors":
            entry.unlink()
    table = run(capsys, "show", "--format", "table", "--sysfs", str(sysfs), "--no-devicetree", "--no-accelerators")
    stick_row = cells(table, "1-1.2")
    assert (stick_row["CLASS"], stick_row["IFACES"]) == (["00"], ["-"])
    assert words(stick_row["LABEL, OR WHY NONE"]) == "no interface read (unconfigured, or unplugged while read)"


def test_disabled_nodes_are_listed_as_skipped_with_their_status(capsys):
    """juno.dtb (Debian's arm64 kernel): its Mali GPU node has status "disabled"."""
    juno = str(DTB_DIR / "juno.dtb")
    table = run(capsys, "show", "--format", "table", "--devicetree", juno, "--no-usb")
    gpu = cells(table, "/gpu@2d000000")
    assert gpu["STATUS"] == ["disabled"] and gpu["COMPATIBLE"] == ["arm,juno-mali", "arm,mali-t624"]
    assert gpu["LABEL"] == ["skipped: not okay"]
    assert "arm-juno-mali" not in table
    counted = run(capsys, "show", "--format", "table", "--devicetree", juno, "--no-usb", "--include-disabled")
    assert cells(counted, "/gpu@2d000000")["LABEL"] == ["arm-juno-mali=1", "arm-mali-t624=1"]


def test_bold_headings_only_on_a_terminal():
    """A pty is a terminal: headings bold; NO_COLOR turns that off (plain text as in a pipe)."""

    def through_pty(environ):
        leader, follower = pty.openpty()
        done = subprocess.run(
            [sys.executable, "-m", "nfd_hooks", "show", "--format", "table", "--replay", str(SAMPLE)],
            stdout=follower, stderr=subprocess.PIPE, cwd=ROOT, env=environ, timeout=60,
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO once the pty is drained
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(leader)
        assert done.returncode == 0, done.stderr
        return b"".join(chunks).decode()

    environ = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    shown = through_pty({**environ, "TERM": "xterm"})
    assert "\033[1mUSB: 5 devices" in shown
    assert "\033" not in through_pty({**environ, "TERM": "xterm", "NO_COLOR": "1"})


def test_columns_wrap_the_column_asked_first_and_keep_the_width():
    name = "Future Technology Devices International, Ltd FT232 Serial (UART) IC"
    lines = columns(["BUS", "NAME", "LABEL"], [["1-1.3", name, "usb-ff_0403_6001.present"]], width=50, first=[1])
    assert max(len(line) for line in lines) == 50
    assert lines[1].split()[-1] == "usb-ff_0403_6001.present"  # kept whole: the name wrapped instead
    assert " ".join(line[7:].split("  ")[0].strip() for line in lines[1:]) == name
    # a newline starts a line within the cell; other control characters are escaped, never printed raw
    assert columns(["NODE"], [["/soc/evil\nnode"]]) == ["NODE", "/soc/evil", "node"]
    assert columns(["X"], [["a\tb"]])[1] == "a\\tb"


def test_no_usb_device_still_names_the_label_prefix(tmp_path, capsys):
    """A bus with no device on it: the account still says what a USB label would look like."""
    sysfs = tmp_path / "sys"
    (sysfs / "bus" / "usb" / "devices").mkdir(parents=True)
    table = run(capsys, "show", "--format", "table", "--sysfs", str(sysfs), "--no-devicetree", "--no-accelerators")
    assert words(table.splitlines()).startswith(f"USB: 0 devices in {sysfs} (read by sysfs) ")
    assert "Labels: feature.node.kubernetes.io/<LABEL>.present=true." in words(table.splitlines())
    assert "BUS" not in table
