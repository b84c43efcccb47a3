"""The features model: label validity as nfd-master checks it, and rendering."""

from datetime import datetime, timezone

import pytest

from nfd_hooks.errors import OutputError
from nfd_hooks.features import MAX_FILE_SIZE, Feature, label_problem, prefix_problem, render


@pytest.mark.parametrize(
    "name,value",
    [
        ("beta.devicetree.org/brcm-bcm2711", "1"),
        ("feature.node.kubernetes.io/usb-ff_03e7_2485.present", "true"),
        ("beta.devicetree.org/" + "a" * 63, "x" * 63),
        ("beta.devicetree.org/a", ""),
    ],
)
def test_valid_labels(name, value):
    assert label_problem(name, value) is None


@pytest.mark.parametrize(
    "name,value",
    [
        ("no-prefix", "1"),
        ("beta.devicetree.org/solidrun,cubox-i", "1"),
        ("beta.devicetree.org/" + "a" * 64, "1"),
        ("beta.devicetree.org/-a", "1"),
        ("beta.devicetree.org/a", "-1"),
        ("beta.devicetree.org/a", "x" * 64),
        ("beta.devicetree.org/a", "a b"),
        ("Beta.devicetree.org/a", "1"),
        ("kubernetes.io/a", "1"),
        ("node.kubernetes.io/a", "1"),
    ],
)
def test_invalid_labels(name, value):
    assert label_problem(name, value)


def test_nfd_namespaces_under_kubernetes_io_are_allowed():
    assert prefix_problem("feature.node.kubernetes.io") is None
    assert prefix_problem("accelerator.feature.node.kubernetes.io") is None
    assert prefix_problem("profile.node.kubernetes.io") is None


def test_render_sorts_labels_then_raw_features_and_is_deterministic():
    features = [
        Feature("b.org/z", "1"),
        Feature("b.org/compatible/x,y", "2", label=False),
        Feature("b.org/a", "3"),
    ]
    content = render(features)
    assert content == render(list(reversed(features)))
    lines = content.decode().splitlines()
    assert lines[0].startswith("# Written by nfd-hooks ")
    assert lines[1:] == ["b.org/a=3", "b.org/z=1", "# +no-label", "b.org/compatible/x,y=2"]


def test_expiry_directive_comes_before_every_feature():
    when = datetime(2026, 11, 22, 18, 0, 5, tzinfo=timezone.utc)
    lines = render([Feature("b.org/a", "1")], expires=when).decode().splitlines()
    assert lines[1] == "# +expiry-time=2026-11-22T18:00:05Z"
    assert lines[2] == "b.org/a=1"


def test_duplicates_merge_and_conflicts_are_refused():
    assert render([Feature("b.org/a", "1"), Feature("b.org/a", "1")]).count(b"b.org/a=1") == 1
    with pytest.raises(OutputError):
        render([Feature("b.org/a", "1"), Feature("b.org/a", "2")])


def test_invalid_label_is_refused_not_written():
    with pytest.raises(OutputError, match="not a valid Kubernetes label name"):
        render([Feature("b.org/a,b", "1")])


def test_file_over_nfd_limit_is_refused():
    features = [Feature(f"b.org/label-{i:05d}", "x" * 60) for i in range(MAX_FILE_SIZE // 70 + 10)]
    with pytest.raises(OutputError, match="NFD skips files over 65536"):
        render(features)
