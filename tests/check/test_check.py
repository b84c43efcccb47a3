"""``check`` reads features files as NFD v0.19's source/local/local.go does.

Expected results here come from reading local.go and the Kubernetes label rules,
not from running the checker.
"""

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.conftest import DTB_DIR, FIXTURES, run_cli
from nfd_hooks import api
from nfd_hooks.check import check_paths
from nfd_hooks.nfdfile import parse, parse_rfc3339

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=timezone.utc)


def problems(text: str):
    return [(p.line, p.warning) for p in parse(text.encode("utf-8"), NOW).problems]


def messages(text: str):
    return [p.message for p in parse(text.encode("utf-8"), NOW).problems]


def test_clean_file_has_no_problems_and_nfd_values():
    parsed = parse(
        b"# a comment\n\n  example.com/flag  \nexample.com/empty=\n"
        b"# +no-label\nexample.com/raw=a=b c!\n",
        NOW,
    )
    assert parsed.problems == []
    assert {k: e.value for k, e in parsed.labels.items()} == {
        "example.com/flag": "true",  # name alone means true
        "example.com/empty": "",  # name= means empty
    }
    assert {k: e.value for k, e in parsed.features.items()} == {
        "example.com/flag": "true",
        "example.com/empty": "",
        "example.com/raw": "a=b c!",  # split at the first '='; raw features are not validated
    }


@pytest.mark.parametrize(
    "line",
    [
        "example.com/has space=1",  # invalid name
        "example.com/x =1",  # nothing is trimmed around '=': the name ends with a space
        "example.com/" + "n" * 64 + "=1",  # name over 63 characters
        "Example.com/x=1",  # prefix must be lowercase
        "kubernetes.io/x=1",  # namespace rejected by nfd-master
        "example.com/x= 1",  # value starts with a space
        "example.com/x=a,b",  # ',' is not allowed in values
        "example.com/x=" + "v" * 64,  # value over 63 characters
        "example.com/a/b=1",  # '/' inside the name
        "bad name=1",  # un-prefixed and invalid: an error, not just a warning
    ],
)
def test_invalid_labels_are_errors(line):
    assert problems(line + "\n") == [(1, False)]


def test_no_label_line_is_not_validated_and_applies_to_one_line_only():
    text = "# +no-label\nexample.com/raw=a b\nexample.com/label=a b\n"
    assert problems(text) == [(3, False)]


def test_no_feature_still_validates_the_label():
    assert problems("# +no-feature\nexample.com/x=a b\n") == [(2, False)]


def test_unprefixed_name_is_a_warning():
    assert problems("plain=1\n") == [(1, True)]
    assert "no prefix" in messages("plain=1\n")[0]


@pytest.mark.parametrize(
    "directive",
    ["# +expires=2030-01-01T00:00:00Z", "# +nolabel", "# +expiry-time =2030-01-01T00:00:00Z", "# + no-label"],
)
def test_unknown_directives(directive):
    found = messages(directive + "\nexample.com/x=1\n")
    assert len(found) == 1 and "unknown directive" in found[0]


def test_comments_that_are_not_directives_are_ignored():
    assert problems("#+no-label\n#  +weird\n# plain comment\nexample.com/x=1\n") == []


@pytest.mark.parametrize(
    "stamp",
    [
        "2030-01-01",  # date only
        "2030-01-01 00:00:00Z",  # space instead of T
        "2030-01-01T00:00:00",  # no zone
        "2030-01-01T00:00:00+0100",  # zone without colon
        "2030-13-01T00:00:00Z",  # month 13
        "2030-02-30T00:00:00Z",  # 30 February
        "2030-01-01T24:00:00Z",  # hour 24
        "2030-01-01T00:00:00z",  # lower-case z
        "tomorrow",
        "",
    ],
)
def test_malformed_expiry_times(stamp):
    found = messages(f"# +expiry-time={stamp}\nexample.com/x=1\n")
    assert len(found) == 1 and "malformed expiry time" in found[0]


def test_expiry_without_value_is_malformed():
    assert "malformed directive" in messages("# +expiry-time\n")[0]


@pytest.mark.parametrize(
    "stamp, expected",
    [
        ("2030-01-31T12:00:00Z", datetime(2030, 1, 31, 12, tzinfo=timezone.utc)),
        ("  2030-01-31T12:00:00Z ", datetime(2030, 1, 31, 12, tzinfo=timezone.utc)),  # value is trimmed
        ("2030-01-31T12:00:00+02:00", datetime(2030, 1, 31, 10, tzinfo=timezone.utc)),
        ("2030-01-31T12:00:00.5-01:30", datetime(2030, 1, 31, 13, 30, 0, 500000, tzinfo=timezone.utc)),
        ("2030-01-31T12:00:00,25Z", datetime(2030, 1, 31, 12, 0, 0, 250000, tzinfo=timezone.utc)),
        ("2030-01-31T2:00:00Z", datetime(2030, 1, 31, 2, tzinfo=timezone.utc)),  # Go takes a 1-digit hour
        ("2028-02-29T00:00:00Z", datetime(2028, 2, 29, tzinfo=timezone.utc)),  # leap day
    ],
)
def test_valid_expiry_times(stamp, expected):
    assert parse_rfc3339(stamp.strip()) == expected
    parsed = parse(f"# +expiry-time={stamp}\nexample.com/x=1\n".encode(), NOW)
    assert parsed.problems == [] and "example.com/x" in parsed.labels


def test_expired_lines_are_dropped_with_a_warning():
    text = "example.com/before=1\n# +expiry-time=2026-06-01T11:59:59Z\nexample.com/after=1\nbad name=x\n"
    parsed = parse(text.encode(), NOW)
    assert list(parsed.labels) == ["example.com/before"]  # NFD keeps the lines before it
    assert [(p.line, p.warning) for p in parsed.problems] == [(2, True)]


def test_a_later_future_expiry_revives_lines():
    text = "# +expiry-time=2020-01-01T00:00:00Z\nexample.com/a=1\n# +expiry-time=2030-01-01T00:00:00Z\nexample.com/b=1\n"
    assert list(parse(text.encode(), NOW).labels) == ["example.com/b"]


def test_duplicate_keys():
    found = parse(b"example.com/x=1\nexample.com/y=1\nexample.com/x=2\n", NOW)
    assert [(p.line, p.warning) for p in found.problems] == [(3, False)]
    assert "line 1" in found.problems[0].message
    assert found.labels["example.com/x"].value == "2"


def test_no_label_after_a_label_removes_it_as_nfd_does():
    parsed = parse(b"example.com/x=1\n# +no-label\nexample.com/x=2\n", NOW)
    assert "example.com/x" not in parsed.labels
    assert parsed.features["example.com/x"].value == "2"
    assert len(parsed.problems) == 1  # the duplicate


def test_trimming_is_go_strings_trimspace():
    # U+00A0 and CR are Go whitespace; U+001F is not (Python's strip would remove it).
    assert problems("\u00a0example.com/x=1\r\n") == []
    assert problems("example.com/x=1\x1f\n") == [(1, False)]


def test_invalid_utf8_label_is_an_error():
    assert [(p.line, p.warning) for p in parse(b"example.com/x=\xff\n", NOW).problems] == [(1, False)]


def test_file_over_64_kib(tmp_path):
    path = tmp_path / "big"
    path.write_bytes(b"# padding\n" * 6554)  # 65540 bytes
    result = check_paths([path], NOW)
    assert [(p.line, p.message.split(":")[0]) for _, p in result.problems] == [(None, "65540 bytes")]
    assert result.exit_code() == 1
    path.write_bytes(b"#" * 65535 + b"\n")  # exactly 65536: NFD still reads it
    assert check_paths([path], NOW).exit_code() == 0


def test_directory_means_the_files_nfd_reads(tmp_path):
    (tmp_path / "good").write_text("example.com/a=1\n")
    (tmp_path / "bad").write_text("example.com/b=a b\n")
    (tmp_path / ".hidden").write_text("bad name\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "ignored").write_text("bad name\n")
    (tmp_path / "link").symlink_to(tmp_path / "bad")
    result = check_paths([tmp_path], NOW)
    found = sorted((Path(path).name, problem.warning) for path, problem in result.problems)
    # link (same content as bad, later in name order) also overrides bad's key, as NFD logs.
    assert found == [("bad", False), ("link", False), ("link", True)]


def test_directory_reports_cross_file_overrides_as_nfd_resolves_them(tmp_path):
    (tmp_path / "10-vendor").write_text("example.com/a=1\nexample.com/b=1\nshared=1\n# +no-label\nexample.com/raw=1\n")
    (tmp_path / "20-nfd-hooks").write_text("example.com/a=2\n")
    (tmp_path / "30-site").write_text("example.com/a=3\nfeature.node.kubernetes.io/shared=2\n# +no-label\nexample.com/raw=2\n")
    result = check_paths([tmp_path], NOW)
    lines = sorted(problem.format(Path(path).name) for path, problem in result.problems)
    assert lines == [
        "10-vendor:3: warning: label 'shared' has no prefix: nfd-master adds 'feature.node.kubernetes.io/' "
        "(and keeps it unprefixed when its DisableAutoPrefix feature gate is on); write the full name",
        "10-vendor:3: warning: label 'shared' is ignored by nfd-master: feature.node.kubernetes.io/shared is also given "
        f"({tmp_path}/30-site:2)",
        f"20-nfd-hooks:1: warning: label 'example.com/a'='2' overrides {tmp_path}/10-vendor:1 ('1'): "
        "NFD keeps this value (later file in name order)",
        f"30-site:1: warning: label 'example.com/a'='3' overrides {tmp_path}/20-nfd-hooks:1 ('2'): "
        "NFD keeps this value (later file in name order)",
        f"30-site:4: warning: raw feature 'example.com/raw'='2' overrides {tmp_path}/10-vendor:5 ('1'): "
        "NFD keeps this value (later file in name order)",
    ]
    assert result.exit_code() == 0 and result.exit_code(strict=True) == 1
    # Each file alone has none of them.
    assert all(not check_paths([tmp_path / name], NOW).problems for name in ("20-nfd-hooks", "30-site"))


def test_cli_output_and_exit_codes(tmp_path):
    good = tmp_path / "good"
    good.write_text("example.com/a=1\n")
    warn = tmp_path / "warn"
    warn.write_text("plain=1\n")
    bad = tmp_path / "bad"
    bad.write_text("example.com/a=1\n# +bogus\n")
    assert run_cli(["check", str(good)]).returncode == 0
    done = run_cli(["check", str(good), str(bad)])
    assert done.returncode == 1
    assert done.stdout.decode().splitlines() == [
        f"{bad}:2: unknown directive 'bogus': NFD logs and ignores it (known: expiry-time, no-label, no-feature)"
    ]
    assert run_cli(["check", str(warn)]).returncode == 0
    assert run_cli(["check", "--strict", str(warn)]).returncode == 1
    missing = run_cli(["check", str(bad), str(tmp_path / "missing")])
    assert missing.returncode == 2
    assert missing.stderr.decode().count("\n") == 1 and "missing: cannot read" in missing.stderr.decode()
    assert run_cli(["check"]).returncode == 2  # no file named: usage error


@pytest.mark.parametrize("dtb", sorted(DTB_DIR.glob("*.dtb")), ids=lambda p: p.stem)
def test_every_file_write_produces_passes(dtb, tmp_path):
    for options in (
        api.Options(devicetree=dtb, use_usb=False, expires_in=timedelta(hours=1)),
        api.Options(devicetree=dtb, use_usb=False, include_disabled=True, nodes=("cpus", "soc")),
    ):
        target, _ = api.write(options, tmp_path, dtb.stem)
        result = check_paths([target])
        assert result.problems == [] and result.exit_code(strict=True) == 0


def test_usb_and_replayed_files_write_produces_pass(tmp_path):
    edge = FIXTURES / "usb" / "edge-node"
    for number, options in enumerate((
        api.Options(sysfs=edge, use_devicetree=False, usb_backend="sysfs"),
        api.Options(sysfs=edge, use_devicetree=False, usb_backend="sysfs", usb_classes=("08", "ff", "09"),
                    usb_label_fields=("class", "vendor", "device", "serial")),
        api.replay_options(FIXTURES / "nodes" / "rpi4b-ncs2-webcam", api.Options(expires_in=timedelta(minutes=5))),
    )):
        target, result = api.write(options, tmp_path, f"file{number}")
        assert any(f.name.startswith("feature.node.kubernetes.io/usb-") for f in result.features)
        checked = check_paths([target])
        assert checked.problems == [] and checked.exit_code(strict=True) == 0
