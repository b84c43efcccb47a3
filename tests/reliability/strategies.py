"""Hypothesis strategies for devicetrees: hostile strings, statuses, names, whole trees."""

import os

from hypothesis import strategies as st

from tests.reliability.fdt_build import Node

HOSTILE_STRINGS = [
    b"", b"a" * 300, b",,,", b"/", b"solidrun,cubox-i/q", b"arm,vexpress,v2p-ca15,tc1",
    b"xlnx,zynq-7000", b"acme, spaced board", b"\xff\xfe,bad-utf8", b"vendor,\xc3\xa9t\xc3\xa9",
    b"-.-", b"arm,cortex-a72", b"brcm,bcm2711",
]
STATUSES = [b"okay\0", b"ok\0", b"disabled\0", b"fail\0", b"okay", b"", b"okay\0disabled\0"]
NODE_NAMES = ["cpu@0", "cpu@1", "cpu0@100", "cpus", "cpu-map", "cpu", "gpu", "gpu@7ec00000", "npu@1", "soc"]

compatible_strings = st.one_of(
    st.sampled_from(HOSTILE_STRINGS),
    st.binary(max_size=40),
    st.text(max_size=80).map(lambda s: s.encode("utf-8", "surrogatepass")),
).map(lambda raw: raw.replace(b"\0", b""))
compatible_values = st.one_of(
    st.lists(compatible_strings, max_size=5).map(lambda strings: b"".join(s + b"\0" for s in strings)),
    st.binary(max_size=64),  # torn: no trailing NUL, NULs anywhere
)
node_names = st.one_of(
    st.sampled_from(NODE_NAMES),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E, blacklist_characters="/"), min_size=1, max_size=40),
).filter(lambda name: name not in (".", "..", "name", "compatible", "status", "model"))


@st.composite
def properties(draw):
    props = {}
    if draw(st.booleans()):
        props["compatible"] = draw(compatible_values)
    if draw(st.booleans()):
        props["status"] = draw(st.one_of(st.sampled_from(STATUSES), st.binary(max_size=12)))
    if draw(st.integers(0, 3)) == 0:
        props["model"] = draw(st.one_of(compatible_values, st.text(max_size=100).map(str.encode)))
    return props


def trees(max_leaves: int = 24) -> st.SearchStrategy:
    leaf = st.builds(Node, node_names, properties())
    return st.recursive(
        leaf,
        lambda kids: st.builds(
            Node, node_names, properties(), st.lists(kids, max_size=6, unique_by=lambda n: n.name)
        ),
        max_leaves=max_leaves,
    )


def _fs_name(raw: bytes) -> str:
    return os.fsdecode(raw)


# Live trees: any file name Linux allows (not UTF-8, spaces, commas, 255 bytes).
fs_node_names = st.one_of(
    st.sampled_from(NODE_NAMES).map(str.encode),
    st.sampled_from([b"cpu@\xff", b"gpu@ 1", b"cpu@0,1", b"cpu@" + b"9" * 251, b"\xc3\x28", b"cpu@-"]),
    st.binary(min_size=1, max_size=60),
).filter(lambda raw: b"/" not in raw and b"\0" not in raw and raw not in (b".", b"..")).map(_fs_name)


def fs_trees(max_leaves: int = 16) -> st.SearchStrategy:
    """Nodes whose names are file names (str, surrogate-escaped), for live trees."""
    named = fs_node_names.filter(lambda name: name not in ("name", "compatible", "status", "model"))
    leaf = st.builds(Node, named, properties())
    return st.recursive(
        leaf,
        lambda kids: st.builds(Node, named, properties(), st.lists(kids, max_size=5, unique_by=lambda n: n.name)),
        max_leaves=max_leaves,
    )
