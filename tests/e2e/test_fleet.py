"""Each fleet node through the real NFD: the labels nfd-master put on the Node
are exactly those ``nfd-hooks show`` printed, NFD logged nothing against our
file, and NFD's own reading of the node (``nfd export``) agrees."""

import json
import re

import pytest

from tests.conftest import labels_of
from tests.e2e.fleet import FLEET

NODES = [node.name for node in FLEET]
# klog's warning and error lines: W1203 22:21:31.443627 ... / E1203 ...
KLOG_PROBLEM = re.compile(r"^[WEF]\d{4} ", re.MULTILINE)


@pytest.mark.parametrize("name", NODES)
def test_node_labels_are_exactly_what_nfd_hooks_showed(fleet, name):
    published = fleet[name]
    assert published.shown_labels, "every fleet node has something to label"
    assert published.labels == published.shown_labels


@pytest.mark.parametrize("name", NODES)
def test_nfd_logged_no_warning_or_error(fleet, name):
    """Not the worker, nor the master while it labelled the fleet (its errors
    name the label, not the node, so none at all)."""
    worker_log = fleet[name].worker.log_text()
    assert KLOG_PROBLEM.findall(worker_log) == [], worker_log
    assert [line for line in fleet[name].master_log.splitlines() if KLOG_PROBLEM.match(line)] == []


@pytest.mark.parametrize("name", NODES)
def test_nodefeature_carries_our_labels_and_raw_features(fleet, cluster, name):
    spec = cluster.node_feature(name)["spec"]
    assert spec["labels"] == fleet[name].shown_labels
    local = spec["features"]["attributes"]["local.feature"]["elements"]
    assert local == labels_of(fleet[name].shown, raw_features=True)


@pytest.mark.parametrize("name", NODES)
def test_nfd_export_features_reads_the_same_file(fleet, cluster, e2e_binaries, name):
    published = fleet[name]
    done = cluster.run_in_node(published.features_dir, published.sysfs, [e2e_binaries["nfd"], "export", "features"])
    assert done.returncode == 0, done.stderr
    attributes = json.loads(done.stdout)["attributes"]
    assert attributes["local.label"]["elements"] == published.shown_labels
    assert attributes["local.feature"]["elements"] == labels_of(published.shown, raw_features=True)


@pytest.mark.parametrize("name", NODES)
def test_nfd_own_usb_labels_are_among_ours(fleet, cluster, e2e_binaries, tmp_path, name):
    """With no features file, every usb- label is NFD's USB source's own: ours
    must include each (and add interface classes NFD does not expand)."""
    published = fleet[name]
    empty = tmp_path / "features.d"
    empty.mkdir()
    done = cluster.run_in_node(empty, published.sysfs, [e2e_binaries["nfd"], "export", "labels"])
    assert done.returncode == 0, done.stderr
    nfd_usb = {key: value for key, value in json.loads(done.stdout).items() if "/usb-" in key}
    ours = {key: value for key, value in published.shown_labels.items() if "/usb-" in key}
    assert nfd_usb.items() <= ours.items()
    # Our extra labels are other classes of devices NFD saw too, never other devices.
    assert {device_of(key) for key in ours} == {device_of(key) for key in nfd_usb}


def device_of(label: str) -> str:
    """``_03e7_2485`` of ``feature.node.kubernetes.io/usb-ff_03e7_2485.present``."""
    return label.split("/usb-", 1)[1][2:]
