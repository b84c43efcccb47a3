"""Issue 14, items 2 and 3, through the real NFD: a node whose compatible string
is "model" and a node whose features outgrow one file get every label that
``nfd-hooks show`` printed, and the raw features reach ``local.feature``.

Named to run after the fleet and scheduling tests (pytest runs files in name
order): these nodes look like fleet nodes, and each is deleted after its test."""

import json
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Tuple

from tests.conftest import DTB_DIR, labels_of, require_tool
from tests.e2e.fleet import SYSFS_SKELETON, labelled, nfd_hooks
from tests.e2e.harness import Cluster
from tests.fakehost import NCS2, PI4_HUBS, crowded_usb, make_host

PREFIX = "beta.devicetree.org"
LOCAL_ONLY = {"core": {"featureSources": ["local"], "labelSources": ["local"]}}


def host(cluster: Cluster, name: str, dtb: bytes, usb) -> Tuple[Path, Path]:
    """The node's sysfs and its (worker-readable) features.d, written by nfd-hooks."""
    directory = cluster.dir / "issue-14" / name
    sysfs = make_host(directory / "sys", dtb, usb)
    for path in SYSFS_SKELETON:
        (sysfs / path).mkdir(parents=True, exist_ok=True)
    features_dir = directory / "features.d"
    features_dir.mkdir()
    nfd_hooks("write", "--sysfs", str(sysfs), "--features-dir", str(features_dir))
    return sysfs, features_dir


@contextmanager
def node(cluster: Cluster, name: str) -> Iterator[None]:
    """A Node for the test's while: these boards look like the fleet's (a Pi 4B,
    an NCS2), and the scheduling tests count where the example pods may go."""
    cluster.add_node(name, "arm64")
    try:
        yield
    finally:
        cluster.kubectl("delete", "node", name, "--wait=false", check=False)


def publish(cluster: Cluster, name: str, sysfs: Path, features_dir: Path) -> str:
    """Run a one-shot worker; its log."""
    worker = cluster.start_worker(name, features_dir, sysfs, config=LOCAL_ONLY, oneshot=True)
    assert worker.wait(120) == 0, worker.log_text()
    return worker.log_text()


def exported(cluster: Cluster, e2e_binaries, sysfs: Path, features_dir: Path) -> dict:
    done = cluster.run_in_node(features_dir, sysfs, [e2e_binaries["nfd"], "export", "features"])
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["attributes"]


def test_a_compatible_named_model_and_the_raw_model_both_reach_the_node(cluster, e2e_binaries, tmp_path):
    blob = tmp_path / "pi.dtb"
    blob.write_bytes((DTB_DIR / "rpi-4-b.dtb").read_bytes())
    subprocess.run([require_tool("fdtput"), "-t", "s", str(blob), "/cpus/cpu@0", "compatible", "model", "arm,cortex-a72"], check=True)
    sysfs, features_dir = host(cluster, "compatible-model", blob.read_bytes(), PI4_HUBS + (NCS2,))
    shown = nfd_hooks("show", "--sysfs", str(sysfs)).stdout
    raw = labels_of(shown, raw_features=True)
    assert raw[f"{PREFIX}/model"] == "1" and raw[f"{PREFIX}/root/model"] == "Raspberry Pi 4 Model B"
    with node(cluster, "compatible-model"):
        log = publish(cluster, "compatible-model", sysfs, features_dir)
        assert labelled(cluster, "compatible-model") == labels_of(shown)
        spec = cluster.node_feature("compatible-model")["spec"]
        assert spec["features"]["attributes"]["local.feature"]["elements"] == raw
        attributes = exported(cluster, e2e_binaries, sysfs, features_dir)
        assert attributes["local.feature"]["elements"] == raw
        assert attributes["local.label"]["elements"] == labels_of(shown)
        assert "overriding" not in log  # no key met another


def test_split_files_all_reach_the_node(cluster, e2e_binaries):
    sysfs, features_dir = host(cluster, "crowded-usb", (DTB_DIR / "rpi-4-b.dtb").read_bytes(), crowded_usb(378))
    files = sorted(p for p in features_dir.iterdir() if not p.name.startswith("."))
    assert len(files) == 2 and all(p.stat().st_size <= 65536 for p in files)
    shown = nfd_hooks("show", "--sysfs", str(sysfs)).stdout
    assert shown == b"".join(p.read_bytes() for p in sorted(files, key=lambda p: p.name != "nfd-hooks"))
    labels = labels_of(shown)
    assert len([k for k in labels if "/usb-" in k]) == 4 * 378
    with node(cluster, "crowded-usb"):
        log = publish(cluster, "crowded-usb", sysfs, features_dir)
        assert "file size limit exceeded" not in log and "overriding" not in log
        assert labelled(cluster, "crowded-usb") == labels
        assert cluster.node_feature("crowded-usb")["spec"]["labels"] == labels
        assert exported(cluster, e2e_binaries, sysfs, features_dir)["local.label"]["elements"] == labels


def test_a_65500_byte_model_costs_only_the_model(cluster, e2e_binaries, tmp_path):
    blob = tmp_path / "pi.dtb"
    blob.write_bytes((DTB_DIR / "rpi-4-b.dtb").read_bytes())
    subprocess.run([require_tool("fdtput"), "-t", "s", str(blob), "/", "model", "M" * 65500], check=True)
    sysfs, features_dir = host(cluster, "huge-model", blob.read_bytes(), PI4_HUBS)
    shown = nfd_hooks("show", "--sysfs", str(sysfs)).stdout
    with node(cluster, "huge-model"):
        log = publish(cluster, "huge-model", sysfs, features_dir)
        assert "file size limit exceeded" not in log
        labels = labelled(cluster, "huge-model")
        assert labels == labels_of(shown) and f"{PREFIX}/raspberrypi-4-model-b" in labels
        local = exported(cluster, e2e_binaries, sysfs, features_dir)["local.feature"]["elements"]
        assert local == labels_of(shown, raw_features=True) and f"{PREFIX}/root/model" not in local
