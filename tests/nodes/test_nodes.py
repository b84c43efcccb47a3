"""Each bundle in fixtures/nodes/<name>/ is one test (the pattern docs/capture.md gives users
for their own captured gateways, from Python; ``nfd-hooks test`` is the command)."""

import pytest

from nfd_hooks import api
from nfd_hooks.errors import InputError
from nfd_hooks.nodes import differences, node_bundles, node_differences
from tests.conftest import FIXTURES

NODES = node_bundles(FIXTURES / "nodes")
# The sample's expected.features lists its USB labels too: replayed as a hook that scans USB
# (the hotplug overlay's), not the shipped one-shot hook (api.DEPLOYED_HOOK, --no-usb).
WITH_USB = api.DEPLOYED_HOOK._replace(use_usb=True)


@pytest.mark.parametrize("bundle", NODES, ids=lambda path: path.name)
def test_node(bundle):
    assert node_differences(bundle, WITH_USB) == []


def test_the_quick_start_sample_node_is_shipped():
    assert [bundle.name for bundle in NODES] == ["rpi4b-ncs2-webcam"]


def test_by_default_a_bundle_is_replayed_as_the_shipped_hook():
    assert node_differences(NODES[0]) == [
        "- accelerator.feature.node.kubernetes.io/movidius-vpu.count=1",
        "- accelerator.feature.node.kubernetes.io/movidius-vpu.present=true",
        "- feature.node.kubernetes.io/usb-0e_046d_0825.present=true",
        "- feature.node.kubernetes.io/usb-ef_046d_0825.present=true",
        "- feature.node.kubernetes.io/usb-ff_03e7_2485.present=true",
    ]


def test_no_bundle_is_an_error_not_an_empty_list(tmp_path):
    """An empty parameter list makes pytest skip the test: '1 skipped' and green, testing nothing."""
    with pytest.raises(InputError, match="no such directory"):
        node_bundles(tmp_path / "fixtures" / "nodes")
    with pytest.raises(InputError, match="no bundle in it"):
        node_bundles(tmp_path)


def test_differences_ignore_comments_and_order_but_not_directives():
    expected = b"# hand-written\nexample.com/b=2\nexample.com/a=1\n# +no-label\nexample.com/raw=x y\n"
    actual = b"# Written by a tool\nexample.com/a=1\nexample.com/b=2\n# +no-label\nexample.com/raw=x y\n"
    assert differences(expected, actual) == []
    assert differences(expected, actual.replace(b"# +no-label\n", b"")) == [
        "replayed output:4: label value 'x y' of 'example.com/raw' is not a valid Kubernetes label value",
        "~ example.com/raw=x y (raw) -> x y",
    ]
    assert differences(expected, actual.replace(b"b=2", b"b=3")) == ["~ example.com/b=2 -> 3"]
    assert differences(expected + b"example.com/c=1\n", actual) == ["- example.com/c=1"]
