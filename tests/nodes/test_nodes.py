"""Each bundle in fixtures/nodes/<name>/ with an expected.features is one test
(the pattern docs/capture.md gives users for their own captured gateways)."""

import pytest

from nfd_hooks.nodes import differences, node_bundles, node_differences
from tests.conftest import FIXTURES

NODES = node_bundles(FIXTURES / "nodes")


@pytest.mark.parametrize("bundle", NODES, ids=lambda path: path.name)
def test_node(bundle):
    assert node_differences(bundle) == []


def test_the_quick_start_sample_node_is_shipped():
    assert [bundle.name for bundle in NODES] == ["rpi4b-ncs2-webcam"]


def test_differences_ignore_comments_and_order_but_not_directives():
    expected = b"# hand-written\nexample.com/b=2\nexample.com/a=1\n# +no-label\nexample.com/raw=x y\n"
    actual = b"# Written by a tool\nexample.com/a=1\nexample.com/b=2\n# +no-label\nexample.com/raw=x y\n"
    assert differences(expected, actual) == []
    assert differences(expected, actual.replace(b"# +no-label\n", b"")) == [
        "replayed output:4: label value 'x y' of 'example.com/raw' is not a valid Kubernetes label value",
        "unexpected label example.com/raw=x y",
    ]
    assert differences(expected, actual.replace(b"b=2", b"b=3")) == [
        "label example.com/b: expected '2', replay gives '3'",
        "raw feature example.com/b: expected '2', replay gives '3'",
    ]
    assert differences(expected + b"example.com/c=1\n", actual) == [
        "missing label example.com/c=1",
        "missing raw feature example.com/c=1",
    ]
