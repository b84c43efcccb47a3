"""Name collisions and oversize outputs (issue 14, items 2 and 3): whatever names
the strings of a node clean to, whatever prefixes are asked for, however much a
node presents, the scan writes files NFD reads, each within its limit, and
the node keeps its devicetree labels (``invariants.check_scan``).

Three strategies: live trees whose compatible strings clean to names other
features have (``model``, the USB and accelerator names, raw-feature paths)
under prefixes that meet the other sources'; crowded nodes (hundreds of USB
devices, huge models, many long compatible strings); and the features model
alone with generated sources, where sizes near the limit are cheap to reach,
written through a writer whose every step is watched: no label the old and
the new files share is ever missing.
"""

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List

from hypothesis import event, given
from hypothesis import strategies as st

from nfd_hooks import api, writer
from nfd_hooks.features import MAX_FILE_SIZE, Feature
from nfd_hooks.sources import SourceReport
from tests.conftest import FIXTURES, labels_of
from tests.fakehost import crowded_usb, make_host
from tests.reliability.invariants import check_files, check_scan, count, scaled, scratch_dir

SCRATCH = scratch_dir()
NOW = datetime(2026, 12, 4, tzinfo=timezone.utc)
EDGE_NODE = FIXTURES / "usb" / "edge-node"  # an NCS2, two Corals, a webcam, ...
PREFIXES = ["beta.devicetree.org", "feature.node.kubernetes.io", api.DEFAULT_ACCELERATOR_PREFIX, "example.com"]
# Strings that clean to a name some other feature has, under one prefix or another.
COLLIDING = [
    "model", "model,", "/model", "Model", "root/model", "root,model", "compatible/model", "compatible",
    "usb-ff_03e7_2485.present", "usb-fe_1a6e_089a.present", "usb-0e_046d_082d.present",
    "movidius-vpu.present", "movidius-vpu.count", "edgetpu.present", "edgetpu.count", "nvidia-igpu.present",
]
compatible = st.one_of(
    st.sampled_from(COLLIDING),
    st.text(st.sampled_from("abcz019-_.,/ "), min_size=1, max_size=30),
)


def live_tree(root: Path, model: bytes, nodes: List[List[str]]) -> Path:
    """A /sys/firmware/devicetree/base of a board with ``nodes`` cpus' compatibles."""
    base = root / "firmware" / "devicetree" / "base"
    base.mkdir(parents=True)
    (base / "compatible").write_bytes(b"acme,board\0")
    (base / "name").write_bytes(b"\0")
    if model:
        (base / "model").write_bytes(model + b"\0")
    for number, strings in enumerate(nodes):
        node = base / "cpus" / f"cpu@{number}"
        node.mkdir(parents=True)
        (node / "compatible").write_bytes(b"".join(s.encode() + b"\0" for s in strings))
    return root


def case_dir(name: str) -> Path:
    count(name)
    directory = SCRATCH / f"{name}-{sum(1 for _ in SCRATCH.iterdir())}"
    directory.mkdir()
    return directory


@scaled(2)
@given(
    nodes=st.lists(st.lists(compatible, min_size=1, max_size=4), max_size=6),
    prefix=st.sampled_from(PREFIXES),
    accelerator_prefix=st.sampled_from(PREFIXES[1:] + [PREFIXES[0]]),
    raw=st.booleans(),
)
def test_colliding_names_cost_one_entry_each(nodes, prefix, accelerator_prefix, raw):
    root = live_tree(case_dir("collision"), b"Acme Board", nodes)
    options = api.Options(
        sysfs=EDGE_NODE, devicetree=root / "firmware" / "devicetree" / "base", prefix=prefix,
        accelerator_prefix=accelerator_prefix, raw_features=raw,
    )
    content = check_scan(options)
    assert content is not None  # never an error
    result = api.scan(options)
    dropped = [n for n in result.notices if n.startswith("left out label ")]
    event(f"collisions: {min(len(dropped), 3)}")
    # Only a devicetree label ever gives way to another source, and the raw
    # features (two '/') never meet a label.
    for notice in dropped:
        assert notice.startswith(f"left out label {prefix}/") and " at /cpus/cpu@" in notice, notice
    for feature in result.features:
        assert feature.name.count("/") == 1 if feature.label else feature.name.count("/") >= 2


_HOSTS: Dict[int, Path] = {}


def crowded_host(devices: int) -> Path:
    """Sysfs trees are costly to build: one per device count, kept for the run."""
    if devices not in _HOSTS:
        _HOSTS[devices] = make_host(SCRATCH / f"usb-{devices}", None, crowded_usb(devices, serials=True))
    return _HOSTS[devices]


@scaled(25)  # seconds per case: large trees, read twice
@given(
    devices=st.sampled_from([0, 5, 378, 700]),
    model_size=st.sampled_from([0, 10, 65400, 65500, 65530, 70000]),
    long_strings=st.integers(0, 700),
    serials=st.booleans(),
    expires=st.booleans(),
)
def test_oversized_nodes_keep_their_devicetree_labels(devices, model_size, long_strings, serials, expires):
    nodes = [[f"acme,core-with-a-rather-long-name-{n:05d}"] for n in range(long_strings)]
    root = live_tree(case_dir("oversize"), b"M" * model_size, nodes)
    fields = ("class", "vendor", "device", "serial") if serials else ("class", "vendor", "device")
    options = api.Options(
        sysfs=crowded_host(devices), devicetree=root / "firmware" / "devicetree" / "base", usb_label_fields=fields,
    )
    content = check_scan(options)
    assert content is not None
    result = api.scan(options)
    event(f"files: {len(result.parts)}")
    if expires:  # at a fixed time: check_scan compares two renders
        expiring = api.files(result, options._replace(expires_in=api.timedelta(days=3650)), NOW)
        assert [s for s, _ in expiring] == [s for s, _ in api.files(result, options)]
        assert all(len(c) <= MAX_FILE_SIZE for _, c in expiring)
    labels = {f.name for f in result.features if f.label}
    assert "beta.devicetree.org/acme-board" in labels
    assert sum(1 for name in labels if name.startswith("beta.devicetree.org/acme-core")) == long_strings


def make_sources(dt: int, raw: int, raw_size: int, usb: int, serial: int, shift: int) -> List[SourceReport]:
    """A devicetree and a USB source of the given sizes; ``shift`` moves the names
    so that two draws share most labels, as successive scans of one node do."""
    names = range(shift, shift + max(dt, usb, serial, raw))
    usb_labels = [Feature(f"feature.node.kubernetes.io/usb-ff_1209_{n:04x}.present", "true") for n in names[:usb]]
    serial_labels = [Feature(f"feature.node.kubernetes.io/usb-ff_1209_{n:04x}_S{n:06d}.present", "true") for n in names[:serial]]
    return [
        SourceReport(
            "devicetree",
            [Feature(f"beta.devicetree.org/acme-core-{n:05d}", str(1 + n % 4)) for n in names[:dt]]
            + [Feature(f"beta.devicetree.org/compatible/acme,core/{n}", "x" * raw_size, label=False) for n in names[:raw]],
        ),
        SourceReport("usb", usb_labels + serial_labels, expendable={f.name for f in serial_labels}),
    ]


# Sizes around the thresholds: one file, one file once raw features or serial
# labels give way, two to five files.
sources = st.builds(
    make_sources,
    dt=st.integers(0, 1500), raw=st.integers(0, 40), raw_size=st.sampled_from([1, 100, 3000, 65450, 65500]),
    usb=st.integers(0, 4000), serial=st.integers(0, 1500), shift=st.integers(0, 40),
)


def _on_disk(directory: Path) -> Dict[str, str]:
    seen: Dict[str, str] = {}
    for name in sorted(os.listdir(directory)):
        if not name.startswith("."):
            seen.update(labels_of((directory / name).read_bytes(), raw_features=True))
    return seen


@scaled(2)
@given(before=sources, after=sources)
def test_the_model_fits_any_sources_and_rewrites_keep_shared_labels(before, after):
    directory = case_dir("layout-write")
    states: List[Dict[str, str]] = []
    replace = writer._replace

    def watched(*args):
        replace(*args)
        states.append(_on_disk(directory))

    options = api.Options()
    old, new = api.assemble(before), api.assemble(after)
    for result in (old, new):
        check_files(result, options)  # the devicetree labels kept among them
    writer.write_files(directory, "nfd-hooks", api.files(old, options))
    first = _on_disk(directory)
    writer._replace = watched
    try:
        writer.write_files(directory, "nfd-hooks", api.files(new, options))
    finally:
        writer._replace = replace
    final = {f.name: f.value for f in new.features}
    assert _on_disk(directory) == final
    shared = first.keys() & final.keys()
    for state in states:
        assert shared <= state.keys()
    event(f"files: {len(old.parts)} -> {len(new.parts)}")
    assert all(len(c) <= MAX_FILE_SIZE for _, c in api.files(new, options))
