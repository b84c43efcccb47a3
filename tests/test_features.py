"""The features model: label validity as nfd-master checks it, and rendering."""

from datetime import datetime, timezone

import pytest

from nfd_hooks.errors import OutputError
from nfd_hooks.features import Feature, layout, merge, render_files
from nfd_hooks.nfdfile import label_problem, prefix_problem


def render(features, expires=None) -> bytes:
    """Every file of one source's ``features``, concatenated, as show prints them."""
    ordered, _ = merge([("test", features)])
    return b"".join(content for _, content in render_files(layout(ordered)[0], expires))


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


def test_duplicates_merge_and_a_conflict_keeps_the_first_source():
    assert render([Feature("b.org/a", "1"), Feature("b.org/a", "1")]).count(b"b.org/a=1") == 1
    features, collisions = merge([("first", [Feature("b.org/a", "1")]), ("second", [Feature("b.org/a", "2"), Feature("b.org/b", "3")])])
    assert features == [Feature("b.org/a", "1"), Feature("b.org/b", "3")]
    assert [(c.kept_source, c.dropped_source, c.dropped) for c in collisions] == [("first", "second", Feature("b.org/a", "2"))]


def test_invalid_label_is_refused_not_written():
    with pytest.raises(OutputError, match="not a valid Kubernetes label name"):
        render([Feature("b.org/a,b", "1")])
