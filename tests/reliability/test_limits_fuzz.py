"""Numbers, size limits and output streams (issue 25): where the second trial found
defects 4, 7 and 9.

- Every number parsed from sysfs (a class device's ``dev`` MAJOR:MINOR, a USB
  device's ``bConfigurationValue`` and its interfaces' ``<dev>:<cfg>.<n>`` names, the
  hex USB and PCI ids) as out-of-range, signed, spaced, and non-ASCII digits ('²',
  Arabic-Indic, fullwidth): the parsers agree with a plain model and never raise;
  a scan keeps the devicetree labels and every device whose numbers are sound.
- Capture then replay at every size limit (``sysfs.ATTRIBUTE_LIMITS``, the
  devicetree's ``MAX_PROPERTY_SIZE``), one byte either side and at random:
  ``show --replay`` of the bundle prints what ``show --sysfs`` printed.
- stdout and stderr that fail (a full disk, a reader gone, a closed descriptor)
  under every command that prints: one line and exit 1 for a lost stdout (exit 0
  and silence for a reader gone), nothing lost for a lost stderr, never a
  traceback, and the features file written all the same.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from hypothesis import event, given
from hypothesis import strategies as st

from nfd_hooks import api
from nfd_hooks.safe_read import decimal
from nfd_hooks.sources.accelerators.binding import MAX_MAJOR, MAX_MINOR, _device_number
from nfd_hooks.sources.devicetree.tree import MAX_PROPERTY_SIZE
from nfd_hooks.sources.usb.model import MAX_CONFIGURATION, active_configuration, hex_value
from nfd_hooks.sources.usb.sysfs import ATTRIBUTE_LIMITS
from tests.conftest import DTB_DIR
from tests.fakehost import NCS2, ClassDevice, add_pci_device, add_usb_device
from tests.reliability.invariants import count, scaled, scratch_dir

SCRATCH = scratch_dir()
RPI = DTB_DIR / "rpi-4-b.dtb"
CHECKOUT = DTB_DIR.parents[1]
NCS2_LABEL = "feature.node.kubernetes.io/usb-ff_03e7_2485.present"

# ---------------------------------------------------------------- numbers

ODD_DIGITS = "\u00b2\u00b9\u0661\u0663\u06f4\u0967\uff11\uff19\u2460\U0001d7ce"  # superscripts, Arabic-Indic, fullwidth, ...
digit_runs = st.one_of(
    st.integers(0, 2**70).map(str),
    st.text(st.sampled_from("0123456789"), min_size=1, max_size=40),
    st.text(st.sampled_from("0123456789" + ODD_DIGITS), min_size=1, max_size=8),
    st.sampled_from(["", "-1", "+1", "1 3", "0x10", "1e3", "1_000", " 7 ", "\t255\n", "256", "4095", "4096", "1048575", "1048576"]),
)
numbers = st.one_of(digit_runs, st.text(max_size=12))


def model_decimal(text: str, maximum: int):
    """What ``decimal`` must give: ASCII digits (ASCII whitespace around) within range."""
    stripped = text.strip(" \t\n\r\x0b\x0c")
    if not stripped or len(stripped) > 20 or any(c not in "0123456789" for c in stripped):
        return None
    return int(stripped) if int(stripped) <= maximum else None


@given(numbers, st.sampled_from([MAX_CONFIGURATION, MAX_MAJOR, MAX_MINOR]))
def test_every_decimal_parser_agrees_with_the_model(text, maximum):
    count("number-decimal")
    expected = model_decimal(text, maximum)
    event("a number" if expected is not None else "refused")
    assert decimal(text, maximum) == expected
    assert decimal(text.encode("utf-8", "surrogatepass"), maximum) == expected
    notices = []
    raw = text.encode("utf-8", "surrogatepass")
    value = active_configuration(raw, "2-1", notices)
    if not raw.strip():
        assert value == 0 and not notices
    else:
        assert value == model_decimal(text, MAX_CONFIGURATION) and bool(notices) == (value is None)


@given(numbers, numbers)
def test_a_dev_number_is_in_range_or_none(major, minor):
    count("number-dev")
    text = f"{major}:{minor}"
    number = _device_number(text)
    ok = model_decimal(major, MAX_MAJOR) is not None and model_decimal(minor, MAX_MINOR) is not None and ":" not in major
    event("MAJOR:MINOR" if number is not None else "refused")
    if number is None:
        assert not ok
    else:
        assert (os.major(number), os.minor(number)) == (int(major), int(minor.strip()))


@given(st.one_of(st.text(max_size=8), st.text(st.sampled_from("0123456789abcdefABCDEF\uff10\uff41\u0661 "), max_size=6)))
def test_a_hex_id_is_four_ascii_hex_digits_or_none(text):
    count("number-hex")
    value = hex_value(text.encode("utf-8", "surrogatepass"), 4)
    stripped = text.encode("utf-8", "surrogatepass").strip()
    if value is None:
        assert not re.fullmatch(rb"[0-9a-fA-F]{4}", stripped)
    else:
        assert re.fullmatch(r"[0-9a-f]{4}", value) and value == stripped.decode().lower()


@scaled(2)
@given(
    dev=st.one_of(st.just(None), numbers.filter(lambda s: "\0" not in s)),
    configuration=st.one_of(st.just(None), numbers.filter(lambda s: "\0" not in s)),
    interface_config=st.one_of(st.just("1"), digit_runs.filter(lambda s: s and "/" not in s and "\0" not in s and s.strip() == s)),
    vendor=st.one_of(st.just("03e7"), st.text(st.sampled_from("03e7\uff10\u0663x "), min_size=1, max_size=6)),
    pci_vendor=st.one_of(st.just("0x1ac1"), st.text(st.sampled_from("0x1acAC\uff11\u0661 \t"), min_size=1, max_size=8)),
)
def test_odd_numbers_cost_no_file_and_no_other_device(dev, configuration, interface_config, vendor, pci_vendor):
    """A scan of a Pi 4B with an NCS2 and a bound Coral PCIe whose numbers are odd: no
    exception, the devicetree labels kept, the NCS2 and the Coral labelled whenever their ids are sound."""
    count("number-scan")
    with tempfile.TemporaryDirectory(dir=SCRATCH) as scratch:
        sysfs = Path(scratch) / "sys"
        node = add_pci_device(sysfs, "0000:01:00.0", "1ac1", "089a", driver="apex",
                              class_device=ClassDevice("apex", "null", 1, 3))
        if dev is not None:
            (node / "apex" / "null" / "dev").write_bytes(dev.encode("utf-8", "surrogatepass") + b"\n")
        add_usb_device(sysfs, NCS2)
        device = sysfs / NCS2.path
        if configuration is not None:
            (device / "bConfigurationValue").write_bytes(configuration.encode("utf-8", "surrogatepass") + b"\n")
        if interface_config != "1":
            old = f"{NCS2.interface_prefix}:1.0"
            new = f"{NCS2.interface_prefix}:{interface_config}.0"
            try:
                os.rename(device / old, device / new)
                links = sysfs / "bus" / "usb" / "devices"
                (links / old).unlink()
                (links / new).symlink_to(os.path.relpath(device / new, links))
            except OSError:
                event("interface name not possible")
        (device / "idVendor").write_bytes(vendor.encode() + b"\n")
        (node / "vendor").write_bytes(pci_vendor.encode() + b"\n")
        coral = re.fullmatch(r"0x1ac1", pci_vendor.strip(" \t").lower()) is not None
        options = api.Options(sysfs=sysfs, dev=Path("/dev"), devicetree=RPI, usb_backend="sysfs")
        result = api.scan(options)
        labels = {f.name: f.value for f in result.features if f.label}
        assert labels["beta.devicetree.org/raspberrypi-4-model-b"] == "1"
        assert (labels.get("accelerator.feature.node.kubernetes.io/edgetpu.present") == "true") == coral, pci_vendor
        stripped = vendor.strip(" ")
        sound_ids = stripped == "03e7"
        event(f"NCS2 ids {'sound' if sound_ids else 'odd'}")
        if not sound_ids:  # empty (NFD's empty field), another vendor's id, or no id at all
            assert NCS2_LABEL not in labels
            if stripped and not re.fullmatch("[0-9a-f]{4}", stripped):  # no id: skipped, and said
                assert any("skipped USB device 2-1" in n for n in result.notices), result.notices
        elif interface_config == "1" and active_in(configuration) in (1, None):  # None: unknown, every one counts
            assert NCS2_LABEL in labels, result.notices
        assert all("\n" not in notice for notice in result.notices)


def active_in(configuration):
    """The configuration the NCS2's bConfigurationValue says is active (None: unknown)."""
    if configuration is None:
        return 1  # as add_usb_device writes it
    if not configuration.encode("utf-8", "surrogatepass").strip():
        return 0  # unconfigured
    return model_decimal(configuration, MAX_CONFIGURATION)


# ---------------------------------------------------------------- capture -> replay at every size limit

def around(limit: int) -> st.SearchStrategy:
    return st.one_of(st.sampled_from([limit - 1, limit, limit + 1]), st.integers(max(0, limit - 64), limit + 64),
                     st.integers(0, limit * 2))


USB_LIMITED = sorted(name for name in ATTRIBUTE_LIMITS if name not in ("descriptors", "bInterfaceClass"))


@st.composite
def oversized_attributes(draw):
    attribute = draw(st.sampled_from(USB_LIMITED + ["descriptors", "bInterfaceClass", "compatible", "model", "cpu-compatible"]))
    limit = MAX_PROPERTY_SIZE if attribute in ("compatible", "model", "cpu-compatible") else ATTRIBUTE_LIMITS[attribute]
    return attribute, draw(around(limit)), draw(st.sampled_from(["head", "tail", "padding"]))


def sized(value: bytes, size: int, where: str, filler: bytes = b" ") -> bytes:
    """``value`` grown (or cut) to ``size`` bytes: padded before or after, or repeated."""
    if where == "head":
        return (filler * size + value)[-size:] if size else b""
    if where == "tail":
        return (value + filler * size)[:size]
    return (value * (size // max(1, len(value)) + 1))[:size]


@scaled(5)
@given(oversized_attributes())
def test_capture_then_replay_prints_what_the_node_printed(case):
    count("limit-replay")
    attribute, size, where = case
    limit = MAX_PROPERTY_SIZE if attribute in ("compatible", "model", "cpu-compatible") else ATTRIBUTE_LIMITS[attribute]
    event(f"{attribute} {'under' if size < limit else 'at or over'} its limit")
    with tempfile.TemporaryDirectory(dir=SCRATCH) as scratch:
        sysfs = Path(scratch) / "sys"
        add_usb_device(sysfs, NCS2)
        device = sysfs / NCS2.path
        base = sysfs / "firmware" / "devicetree" / "base"
        (base / "cpus" / "cpu@0").mkdir(parents=True)
        (base / "name").write_bytes(b"\0")
        (base / "compatible").write_bytes(b"raspberrypi,4-model-b\0brcm,bcm2711\0")
        (base / "model").write_bytes(b"Raspberry Pi 4 Model B\0")
        (base / "cpus" / "cpu@0" / "compatible").write_bytes(b"arm,cortex-a72\0")
        if attribute == "compatible":
            (base / "compatible").write_bytes(sized(b"acme,board\0", size, where, b"\0"))
        elif attribute == "model":
            (base / "model").write_bytes(sized(b"Acme Board\0", size, where, b"M"))
        elif attribute == "cpu-compatible":
            (base / "cpus" / "cpu@0" / "compatible").write_bytes(sized(b"arm,cortex-a72\0", size, where, b"\0"))
        elif attribute == "bInterfaceClass":
            interface = device / f"{NCS2.interface_prefix}:1.0" / "bInterfaceClass"
            interface.write_bytes(sized(b"ff\n", size, where))
        elif attribute == "descriptors":
            head = (device / "descriptors").read_bytes()
            (device / "descriptors").write_bytes(head + sized(bytes([255, 0x24]) + bytes(253), max(0, size - len(head)), "padding"))
        else:
            old = (device / attribute).read_bytes() if (device / attribute).exists() else b"x\n"
            (device / attribute).write_bytes(sized(old, size, where))
        live = api.Options(sysfs=sysfs, usb_backend="sysfs")
        result = api.scan(live)
        shown = api.render_scan(result, live), json.loads(api.render_json(result))["features"]
        bundle = Path(scratch) / "bundle"
        api.capture(bundle, sysfs)
        replayed = api.replay_options(bundle, api.Options())
        again = api.scan(replayed)
        assert (api.render_scan(again, replayed), json.loads(api.render_json(again))["features"]) == shown


# ---------------------------------------------------------------- stdout and stderr that fail

COMMANDS = {
    "show": ["show", "--devicetree", str(RPI), "--no-usb"],
    "show-json": ["show", "--devicetree", str(RPI), "--no-usb", "--format", "json"],
    "show-table": ["show", "--devicetree", str(RPI), "--no-usb", "--format", "table"],
    "show-diff": ["show", "--diff", "--devicetree", str(RPI), "--no-usb", "--features-dir", "{features}"],
    "write": ["write", "--devicetree", str(RPI), "--no-usb", "--features-dir", "{features}"],
    "write-diff": ["write", "--diff", "--devicetree", str(RPI), "--no-usb", "--features-dir", "{features}"],
    "check": ["check", "{features}"],
    "test": ["test", str(CHECKOUT / "fixtures" / "nodes")],
    "version": ["--version"],
    "help": ["show", "--help"],
}
STREAMS = ["file", "full", "reader-gone", "closed"]


@scaled(40)
@given(st.sampled_from(sorted(COMMANDS)), st.sampled_from(STREAMS), st.sampled_from(STREAMS), st.booleans())
def test_failing_stdout_and_stderr(command, stdout, stderr, old_file):
    count("failing-streams")
    event(f"stdout {stdout}, stderr {stderr}")
    with tempfile.TemporaryDirectory(dir=SCRATCH) as scratch:
        features = Path(scratch) / "features.d"
        features.mkdir()
        if old_file:
            (features / "nfd-hooks").write_bytes(b"example.com/old=1\n")
        args = [arg.replace("{features}", str(features)) for arg in COMMANDS[command]]
        opened = {}
        closing = []

        def stream(kind, name):
            if kind == "file":
                handle = open(Path(scratch) / name, "wb")
            elif kind == "full":
                handle = open("/dev/full", "wb")
            else:  # reader-gone: a pipe whose reader closed; closed: no descriptor at all
                read, write = os.pipe()
                os.close(read)
                handle = os.fdopen(write, "wb")
            closing.append(handle)
            return handle

        opened["stdout"], opened["stderr"] = stream(stdout, "out"), stream(stderr, "err")
        closed = [fd for fd, kind in ((1, stdout), (2, stderr)) if kind == "closed"]
        try:
            done = subprocess.run(
                [sys.executable, "-m", "nfd_hooks", *args], stdout=opened["stdout"], stderr=opened["stderr"],
                stdin=subprocess.DEVNULL, timeout=60, cwd=CHECKOUT,
                preexec_fn=(lambda: [os.close(fd) for fd in closed]) if closed else None,
            )
        finally:
            for handle in closing:
                handle.close()
        err = (Path(scratch) / "err").read_text(errors="replace") if stderr == "file" else ""
        out = (Path(scratch) / "out").read_bytes() if stdout == "file" else b""
        assert "Traceback" not in err, err
        prints = command not in ("write", "check")  # the others print on stdout (check: only problems)
        if stdout == "file" and command not in ("check", "test"):  # their codes say what they found
            assert done.returncode == 0 and bool(out) == prints, (done.returncode, err)
        # click prints --help itself, and to no descriptor 1 at all prints nothing, exit 0 (left so)
        if stdout in ("full", "closed") and prints and not (stdout == "closed" and command == "help"):
            assert done.returncode == 1, (done.returncode, err)
            if stderr == "file":
                errors = [line for line in err.splitlines() if line.startswith("nfd-hooks: error: ")]
                assert len(errors) == 1 and errors[0].startswith("nfd-hooks: error: cannot write"), err
        if stdout == "reader-gone" and command.startswith("show") and command != "show-diff":
            assert done.returncode == 0 and err == "", (done.returncode, err)
        if stdout != "file" and not prints:
            assert done.returncode == 0, (done.returncode, err)
        if command.startswith("write"):
            assert "raspberrypi-4-model-b=1" in (features / "nfd-hooks").read_text()
        elif old_file:
            assert (features / "nfd-hooks").read_bytes() == b"example.com/old=1\n"
