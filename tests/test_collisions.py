"""Names two features meet on (issue 14, item 2): a compatible string that
cleans to another feature's name, a --prefix equal to another source's. One
entry gives way, with a notice naming the node and the string; never the file.

The devicetrees are the real Raspberry Pi 4B blob with one property changed by
fdtput (libfdt), as a board's firmware could ship it.
"""

import json
import subprocess
from pathlib import Path
from typing import List

import pytest

from nfd_hooks import api
from tests.conftest import DTB_DIR, FIXTURES, features_entries, labels_of, require_tool, run_cli

PREFIX = "beta.devicetree.org"
PI_LABELS = {
    f"{PREFIX}/raspberrypi-4-model-b": "1",
    f"{PREFIX}/brcm-bcm2711": "1",
    f"{PREFIX}/brcm-bcm2711-vc5": "1",
    f"{PREFIX}/brcm-2711-v3d": "1",
}
EDGE_NODE = FIXTURES / "usb" / "edge-node"  # NCS2 03e7:2485 among others


def pi_with(tmp_path: Path, node: str, prop: str, *strings: str) -> Path:
    """The real Pi 4B blob with ``node``'s ``prop`` set to ``strings``."""
    blob = tmp_path / "pi.dtb"
    blob.write_bytes((DTB_DIR / "rpi-4-b.dtb").read_bytes())
    subprocess.run([require_tool("fdtput"), "-t", "s", str(blob), node, prop, *strings], check=True)
    return blob


def show(args: List[str]) -> subprocess.CompletedProcess:
    done = run_cli(["show", *args])
    assert done.returncode == 0, done.stderr.decode()
    assert b"Traceback" not in done.stderr
    return done


@pytest.mark.parametrize("compatible", ["model", "model,", "/model", "model "])
def test_a_compatible_that_cleans_to_model_is_a_label_beside_the_raw_model(tmp_path, compatible):
    blob = pi_with(tmp_path, "/cpus/cpu@0", "compatible", compatible, "arm,cortex-a72")
    done = show(["--devicetree", str(blob), "--no-usb"])
    labels = labels_of(done.stdout)
    assert labels == {**PI_LABELS, f"{PREFIX}/arm-cortex-a72": "4", f"{PREFIX}/model": "1"}
    raw = labels_of(done.stdout, raw_features=True)
    assert raw[f"{PREFIX}/root/model"] == "Raspberry Pi 4 Model B"
    assert raw[f"{PREFIX}/compatible/{compatible}"] == "1"
    assert done.stderr == b""  # nothing collided: nothing left out

    out = tmp_path / "features.d"
    out.mkdir()
    written = run_cli(["write", "--devicetree", str(blob), "--no-usb", "--features-dir", str(out)])
    assert written.returncode == 0, written.stderr.decode()
    assert (out / "nfd-hooks").read_bytes() == done.stdout
    assert features_entries(out) == ["nfd-hooks"]


def test_raw_features_have_a_second_slash_no_label_can_have(tmp_path):
    blob = pi_with(tmp_path, "/cpus/cpu@0", "compatible", "model", "compatible")
    result = api.scan(api.Options(devicetree=blob, use_usb=False))
    assert result.features
    for feature in result.features:
        slashes = feature.name.count("/")
        assert slashes == 1 if feature.label else slashes >= 2, feature


@pytest.mark.parametrize(
    "flags,kept",
    [
        # --prefix equal to the USB source's: its label stays true.
        (["--prefix", "feature.node.kubernetes.io"], ("feature.node.kubernetes.io/usb-ff_03e7_2485.present", "true")),
        # the devicetree labels under the accelerator prefix, or the accelerators under the devicetree's.
        (["--prefix", api.DEFAULT_ACCELERATOR_PREFIX], (f"{api.DEFAULT_ACCELERATOR_PREFIX}/movidius-vpu.present", "true")),
        (["--accelerator-prefix", PREFIX], (f"{PREFIX}/movidius-vpu.present", "true")),
    ],
)
def test_a_prefix_meeting_another_sources_names_drops_only_that_label(tmp_path, flags, kept):
    name = kept[0].rsplit("/", 1)[1]
    blob = pi_with(tmp_path, "/cpus/cpu@0", "compatible", name, "arm,cortex-a72")
    done = show(["--devicetree", str(blob), "--sysfs", str(EDGE_NODE), *flags])
    labels = labels_of(done.stdout)
    assert labels[kept[0]] == kept[1]
    dt_prefix = flags[1] if flags[0] == "--prefix" else PREFIX
    for label, value in {**PI_LABELS, f"{PREFIX}/arm-cortex-a72": "4"}.items():
        assert labels[label.replace(PREFIX, dt_prefix, 1)] == value
    # The exact string is still there for NodeFeatureRules.
    assert labels_of(done.stdout, raw_features=True)[f"{dt_prefix}/compatible/{name}"] == "1"
    notices = done.stderr.decode().splitlines()
    assert notices == [
        f"nfd-hooks: left out label {kept[0]}=1 (compatible {name!r} at /cpus/cpu@0): "
        f"the {'usb' if 'usb-' in name else 'accelerators'} source gives that name 'true'"
    ]


def test_a_collision_writes_the_file_and_json_lists_what_was_written(tmp_path):
    blob = pi_with(tmp_path, "/cpus/cpu@0", "compatible", "usb-ff_03e7_2485.present")
    args = ["--devicetree", str(blob), "--sysfs", str(EDGE_NODE), "--prefix", "feature.node.kubernetes.io"]
    out = tmp_path / "features.d"
    out.mkdir()
    (out / "nfd-hooks").write_text("previous\n")
    written = run_cli(["write", *args, "--features-dir", str(out)])
    assert written.returncode == 0, written.stderr.decode()
    assert "left out label feature.node.kubernetes.io/usb-ff_03e7_2485.present=1" in written.stderr.decode()
    content = (out / "nfd-hooks").read_bytes()
    assert content == show(args).stdout
    document = json.loads(show([*args, "--format", "json"]).stdout)
    assert {(f["name"], f["value"]) for f in document["features"]} == set(labels_of(content, raw_features=True).items())
    assert any("at /cpus/cpu@0" in notice for notice in document["notices"])
