"""The label-name rules of issue 2, case by case, from the rules' own words."""

import hashlib

import pytest

from nfd_hooks.nfdfile import label_problem
from nfd_hooks.sources.devicetree.naming import label_name
from nfd_hooks.sources.devicetree.source import is_enabled, node_name_pattern


@pytest.mark.parametrize(
    "compatible,name",
    [
        (b"brcm,bcm2711", "brcm-bcm2711"),
        (b"arm,vexpress,v2p-ca15,tc1", "arm-vexpress-v2p-ca15-tc1"),  # all fields, not two
        (b"solidrun,cubox-i/q", "solidrun-cubox-i-q"),
        (b"qcom,msm8916-mtp/1", "qcom-msm8916-mtp-1"),
        (b"xlnx,zynq-7000", "xilinx-zynq-7000"),
        (b"acme,xlnx", "acme-xlnx"),  # only the vendor field is renamed
        (b"XLNX,zynq", "XLNX-zynq"),
        (b"acme,has space", "acme-has-space"),
        (b"-_.acme,v1.2_rev-._", "acme-v1.2_rev"),
        (b"acme,caf\xc3\xa9", "acme-caf"),
        (b"acme,b\xffd", "acme-b-d"),
        (b"vivante,gc", "vivante-gc"),
    ],
)
def test_label_names(compatible, name):
    assert label_name(compatible) == name


@pytest.mark.parametrize("compatible", [b",,,", b"///", b"\xff\xfe", b"-"])
def test_nothing_label_safe_gives_no_name(compatible):
    assert label_name(compatible) is None


def test_long_names_get_a_stable_hashed_short_form():
    raw = b"acme," + b"x" * 100
    name = label_name(raw)
    assert len(name) == 63
    assert name == "acme-" + "x" * 49 + "-" + hashlib.sha256(raw).hexdigest()[:8]
    assert label_problem(f"beta.devicetree.org/{name}", "1") is None


def test_long_names_that_share_a_prefix_stay_distinct():
    a, b = b"acme," + b"y" * 80 + b"a", b"acme," + b"y" * 80 + b"b"
    assert label_name(a) != label_name(b)


def test_sixty_three_characters_are_kept_as_they_are():
    raw = b"acme," + b"z" * 58
    assert label_name(raw) == "acme-" + "z" * 58


@pytest.mark.parametrize(
    "name,selected",
    [
        ("cpu", True),
        ("cpu@0", True),
        ("cpu0@100", True),
        ("cpu12@1", True),
        ("gpu@7ec00000", True),
        ("cpus", False),
        ("cpu-map", False),
        ("cpux@0", False),
        ("gpu-subsystem", False),
        ("acpu@0", False),
        ("cpu0", False),
    ],
)
def test_node_selection(name, selected):
    assert bool(node_name_pattern(["cpu", "gpu"]).fullmatch(name)) is selected


def test_node_names_are_literal_not_regexes():
    pattern = node_name_pattern(["a.b"])
    assert pattern.fullmatch("a.b@0")
    assert not pattern.fullmatch("axb@0")


@pytest.mark.parametrize(
    "status,enabled",
    [(None, True), (b"okay\0", True), (b"ok\0", True), (b"okay\0extra\0", True),
     (b"disabled\0", False), (b"fail\0", False), (b"\0", False), (b"", False), (b"OKAY\0", False)],
)
def test_status(status, enabled):
    assert is_enabled(status) is enabled
