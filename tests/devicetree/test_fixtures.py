"""Every real and hand-made DTB gives exactly the labels derived from it with fdtget
(fixtures/dtb/expected, made by scripts/derive-expected-labels), read as a blob
and as an expanded live tree alike."""

from pathlib import Path
from typing import List

import pytest

from nfd_hooks import api
from nfd_hooks.features import Feature
from tests.conftest import DTB_DIR, run_cli
from tests.fdt_expand import expand

PREFIX = "beta.devicetree.org"
BOARDS = sorted(p.stem for p in DTB_DIR.glob("*.dtb"))
VARIANTS = [(board, False) for board in BOARDS] + [
    (p.name.split(".")[0], True) for p in sorted((DTB_DIR / "expected").glob("*.include-disabled.labels"))
]


def expected_labels(board: str, include_disabled: bool) -> List[str]:
    suffix = ".include-disabled" if include_disabled else ""
    return (DTB_DIR / "expected" / f"{board}{suffix}.labels").read_text(encoding="utf-8").splitlines()


def expected_raw(board: str, include_disabled: bool) -> List[Feature]:
    suffix = ".include-disabled" if include_disabled else ""
    features = []
    for line in (DTB_DIR / "expected" / f"{board}{suffix}.raw").read_text(encoding="utf-8").splitlines():
        kind, *rest = line.split("\t")
        if kind == "compatible":
            features.append(Feature(f"{PREFIX}/compatible/{rest[1]}", rest[0], label=False))
        else:
            features.append(Feature(f"{PREFIX}/root/model", rest[0], label=False))
    return sorted(features)


def scan(devicetree: Path, include_disabled: bool) -> api.Scan:
    return api.scan(
        api.Options(devicetree=devicetree, include_disabled=include_disabled, use_usb=False, use_accelerators=False)
    )


def test_every_board_has_expectations():
    assert len(BOARDS) >= 7
    for board in BOARDS:
        assert (DTB_DIR / "expected" / f"{board}.labels").is_file(), board


@pytest.mark.parametrize("board,include_disabled", VARIANTS)
def test_blob_labels_are_the_derived_ones(board, include_disabled):
    result = scan(DTB_DIR / f"{board}.dtb", include_disabled)
    labels = sorted(f"{f.name}={f.value}" for f in result.features if f.label)
    assert labels == expected_labels(board, include_disabled)


@pytest.mark.parametrize("board,include_disabled", VARIANTS)
def test_raw_features_carry_the_exact_strings(board, include_disabled):
    result = scan(DTB_DIR / f"{board}.dtb", include_disabled)
    assert sorted(f for f in result.features if not f.label) == expected_raw(board, include_disabled)


@pytest.mark.parametrize("board,include_disabled", VARIANTS)
def test_live_tree_and_blob_give_the_same_file(board, include_disabled, tmp_path):
    tree = expand((DTB_DIR / f"{board}.dtb").read_bytes(), tmp_path / "base")
    options = dict(include_disabled=include_disabled, use_usb=False, use_accelerators=False)
    from_blob = api.render_scan(
        api.scan(api.Options(devicetree=DTB_DIR / f"{board}.dtb", **options)), api.Options()
    )
    from_tree = api.render_scan(api.scan(api.Options(devicetree=tree, **options)), api.Options())
    assert from_tree == from_blob


def test_default_devicetree_is_the_live_tree_under_sysfs(tmp_path):
    expand((DTB_DIR / "jetson-nano.dtb").read_bytes(), tmp_path / "firmware" / "devicetree" / "base")
    result = api.scan(api.Options(sysfs=tmp_path, use_usb=False, use_accelerators=False))
    assert sorted(f"{f.name}={f.value}" for f in result.features if f.label) == expected_labels("jetson-nano", False)


def test_pi4b_acceptance_from_an_installed_cli():
    """The issue's acceptance line, run as a process."""
    done = run_cli(["show", "--devicetree", str(DTB_DIR / "rpi-4-b.dtb"), "--no-usb"])
    assert done.returncode == 0, done.stderr
    labels = sorted(
        line for line in done.stdout.decode().splitlines() if line.startswith(PREFIX + "/") and "/compatible/" not in line
        and not line.startswith(PREFIX + "/root/model=")
    )
    assert labels == sorted(
        f"{PREFIX}/{label}"
        for label in (
            "raspberrypi-4-model-b=1",
            "brcm-bcm2711=1",
            "arm-cortex-a72=4",
            "brcm-bcm2711-vc5=1",
            "brcm-2711-v3d=1",
        )
    )


def test_extra_node_names_are_counted():
    """``--node`` adds to cpu and gpu: on the Pi 4B, ``--node mmc`` adds its SD controllers."""
    base = scan(DTB_DIR / "rpi-4-b.dtb", False)
    more = api.scan(api.Options(devicetree=DTB_DIR / "rpi-4-b.dtb", nodes=("mmc",), use_usb=False))
    added = {f.name for f in more.features if f.label} - {f.name for f in base.features if f.label}
    assert added, "the Pi 4B has mmc@... nodes with compatible strings"
    assert all(f.name.startswith(PREFIX + "/") for f in more.features)


def test_no_raw_features_flag():
    result = api.scan(api.Options(devicetree=DTB_DIR / "rpi-4-b.dtb", raw_features=False, use_usb=False))
    assert all(f.label for f in result.features)


def test_json_says_where_each_label_came_from():
    import json

    done = run_cli(["show", "--devicetree", str(DTB_DIR / "rpi-4-b.dtb"), "--no-usb", "--format", "json"])
    assert done.returncode == 0
    document = json.loads(done.stdout)
    labels = {entry["label"]: entry for entry in document["sources"]["devicetree"]["labels"]}
    v3d = labels[f"{PREFIX}/brcm-2711-v3d"]
    assert v3d["strings"] == {"brcm,2711-v3d": 1}
    assert v3d["nodes"] == ["/scb/gpu@7ec00000"]
    assert labels[f"{PREFIX}/arm-cortex-a72"]["nodes"] == [f"/cpus/cpu@{n}" for n in range(4)]
    assert document["sources"]["devicetree"]["model"] == "Raspberry Pi 4 Model B"
