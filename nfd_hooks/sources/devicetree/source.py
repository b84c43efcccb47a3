"""The devicetree source: compatible strings of the root and chosen nodes, counted.

Labels: ``<prefix>/<name>=<count>`` (names from ``naming.label_name``).
Raw features, under ``# +no-label``, keep what a label name cannot:
``<prefix>/compatible/<exact compatible string>=<count>`` and
``<prefix>/root/model=<root model>``, so NodeFeatureRules can match them exactly.
NFD keeps labels and raw features in one map (``local.feature``), and every
label name is ``<prefix>/<name>`` with one ``/``: a second ``/`` puts the raw
features where no label, of any source or prefix, can reach them.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, NamedTuple, Optional, Pattern, Sequence, Set, Tuple

from nfd_hooks.errors import InputError
from nfd_hooks.features import Feature
from nfd_hooks.nfdfile import prefix_problem, raw_feature_problem
from nfd_hooks.safe_read import NotARegularFile, read_regular_file
from nfd_hooks.sources.base import SourceReport
from nfd_hooks.sources.devicetree.naming import decode, label_name
from nfd_hooks.sources.devicetree.result import DevicetreeFound, LabelMade, NodeSeen
from nfd_hooks.sources.devicetree.tree import DtNode, devicetree_directory_problem, open_live_tree, walk

if TYPE_CHECKING:
    from nfd_hooks.options import Options

NAME = "devicetree"
DEFAULT_NODES = ("cpu", "gpu")
DEFAULT_PREFIX = "beta.devicetree.org"
ENABLED_STATUSES = (b"okay", b"ok")
MODEL = "root/model"  # the raw feature of the root's model, after the prefix (see above)


class DevicetreeOptions(NamedTuple):
    """``path`` is a DTB or a live-tree directory; ``required`` when the user named it.

    A NamedTuple for start-up time (see ``nfd_hooks.features.Feature``).
    """

    path: Path
    required: bool = False
    nodes: Tuple[str, ...] = DEFAULT_NODES
    prefix: str = DEFAULT_PREFIX
    include_disabled: bool = False
    raw_features: bool = True


class _Tally:
    """Where the strings behind one label name were seen (a plain class: see ``SourceReport``)."""

    __slots__ = ("count", "strings", "nodes")

    def __init__(self) -> None:
        self.count = 0
        self.strings: Counter[str] = Counter()
        self.nodes: Set[str] = set()


def node_name_pattern(names: Sequence[str]) -> Pattern[str]:
    """Full node names that select a node: NAME, or NAME, digits, ``@`` and anything.

    NAME is literal (escaped), unlike the labeller's regex, so ``--node a.b``
    does not also match ``axb@0``.
    """
    alternatives = "|".join(re.escape(name) for name in sorted(set(names)))
    return re.compile(f"(?:{alternatives})(?:[0-9]*@.*)?", re.DOTALL)


def is_enabled(status: Optional[bytes]) -> bool:
    """A node without status is enabled; otherwise its first string must be okay/ok."""
    return status is None or status.split(b"\0", 1)[0] in ENABLED_STATUSES


def compatible_strings(raw: Optional[bytes]) -> List[bytes]:
    """The non-empty NUL-separated strings of a compatible property."""
    return [s for s in (raw or b"").split(b"\0") if s]


def read_devicetree(path: Path, notices: List[str]) -> Tuple[DtNode, str]:
    """Open ``path`` as a live tree or a DTB; return the root and the reader used.

    InputError when it is neither (a directory without a tree's top: see
    ``tree.devicetree_directory_problem``)."""
    if path.is_dir():
        problem = devicetree_directory_problem(str(path))
        if problem:
            raise InputError(f"{path}: {problem}")
        return open_live_tree(str(path), notices), "tree"
    from nfd_hooks.sources.devicetree.blob import MAX_BLOB_SIZE, looks_like_blob, parse_blob  # live nodes have no blob

    try:
        data = read_regular_file(str(path), MAX_BLOB_SIZE + 1)
    except NotARegularFile:
        raise InputError(f"{path}: neither a devicetree blob file nor a devicetree directory") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read devicetree: {error.strerror}") from None
    if not looks_like_blob(data):
        raise InputError(f"{path}: neither a devicetree blob nor a devicetree directory")
    return parse_blob(data, str(path)), "blob"  # refuses more than MAX_BLOB_SIZE bytes


def discover(options: DevicetreeOptions) -> SourceReport[DevicetreeFound]:
    """Labels and raw features for the devicetree at ``options.path``."""
    report: SourceReport[DevicetreeFound] = SourceReport(NAME, found=DevicetreeFound(str(options.path), None))
    if not options.path.exists():
        if options.required:
            raise InputError(f"{options.path}: no such devicetree file or directory")
        report.notices.append(f"no devicetree at {options.path}: no devicetree labels on this node")
        return report
    if not options.required and options.path.is_dir() and devicetree_directory_problem(str(options.path)):
        # The node's own <sysfs>/firmware/devicetree/base, torn or emptied: the file is written without it.
        report.notices.append(f"no devicetree at {options.path} (no 'name' or 'compatible' at its top): no devicetree labels")
        return report
    root, reader = read_devicetree(options.path, report.notices)
    selected = node_name_pattern(options.nodes)
    tallies: Dict[str, _Tally] = {}
    exact: Counter[str] = Counter()
    counted: List[NodeSeen] = []
    skipped: List[NodeSeen] = []
    for path, node in walk(root):
        if path != "/" and not selected.fullmatch(node.name):
            continue
        status = node.property("status")
        strings = compatible_strings(node.property("compatible"))
        seen = NodeSeen(path, None if status is None else decode(status.split(b"\0", 1)[0]), tuple(decode(raw) for raw in strings))
        if path != "/" and not options.include_disabled and not is_enabled(status):
            skipped.append(seen)
            continue
        counted.append(seen)
        for raw in strings:
            exact[decode(raw)] += 1
            name = label_name(raw)
            if name is None:
                report.notices.append(f"compatible {decode(raw)!r} at {path} has no label-safe characters")
                continue
            tally = tallies.setdefault(name, _Tally())
            tally.count += 1
            tally.strings[decode(raw)] += 1
            tally.nodes.add(path)
    report.features = [Feature(f"{options.prefix}/{name}", str(t.count)) for name, t in tallies.items()]
    report.origins = {
        f"{options.prefix}/{name}": f"compatible {', '.join(map(repr, sorted(t.strings)))} at {', '.join(sorted(t.nodes))}"
        for name, t in tallies.items()
    }
    model = root.property("model")
    model_text = decode(model.split(b"\0", 1)[0]) if model else None
    if options.raw_features:
        report.features += _raw_features(options.prefix, exact, model_text, report.notices)
    report.found = DevicetreeFound(
        path=str(options.path),
        reader=reader,
        model=model_text,
        nodes=tuple(sorted(options.nodes)),
        labels=tuple(
            LabelMade(f"{options.prefix}/{name}", tally.count, tuple(sorted(tally.strings.items())), tuple(sorted(tally.nodes)))
            for name, tally in sorted(tallies.items())
        ),
        counted=tuple(counted),
        skipped=tuple(skipped),
    )
    return report


def _raw_features(prefix: str, exact: Counter[str], model: Optional[str], notices: List[str]) -> List[Feature]:
    """Exact strings as raw features; those NFD's line format cannot carry are skipped."""
    candidates = [Feature(f"{prefix}/compatible/{text}", str(n), label=False) for text, n in exact.items()]
    if model:
        candidates.append(Feature(f"{prefix}/{MODEL}", model, label=False))
    kept = []
    for feature in candidates:
        problem = raw_feature_problem(feature.name, feature.value)
        if problem:
            notices.append(f"skipped {problem}")
        else:
            kept.append(feature)
    return kept


class DevicetreeSource:
    """The devicetree as a ``Source``: static, as the tree does not change at run
    time (``watch`` reads it once), and lowest in priority, as its label names come
    from strings the board presents, whose exact text stays in the raw features."""

    name = NAME
    priority = 0
    static = True

    def configure(self, options: Options) -> Optional[DevicetreeOptions]:
        """The named path is required, the default (the live tree under sysfs) is not."""
        problem = prefix_problem(options.prefix)
        if problem:
            raise InputError(f"--prefix {options.prefix!r} {problem}")
        for node in options.nodes:
            if not node or "/" in node:
                raise InputError(f"--node {node!r} must be a node name without '/'")
        if not options.use_devicetree:
            return None
        named = options.devicetree is not None
        return DevicetreeOptions(
            path=options.devicetree if options.devicetree is not None else options.sysfs / "firmware" / "devicetree" / "base",
            required=named and options.devicetree_required,
            nodes=tuple(dict.fromkeys(DEFAULT_NODES + options.nodes)),
            prefix=options.prefix,
            include_disabled=options.include_disabled,
            raw_features=options.raw_features,
        )

    def discover(self, options: DevicetreeOptions, earlier: Sequence[SourceReport[Any]]) -> SourceReport[DevicetreeFound]:
        return discover(options)

    def uevents(self, options: DevicetreeOptions) -> Tuple[str, ...]:
        return ()


SOURCE = DevicetreeSource()
