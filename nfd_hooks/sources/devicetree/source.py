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
from nfd_hooks.safe_read import NotARegularFile, Tree, read_regular_file
from nfd_hooks.sources.base import SourceReport
from nfd_hooks.sources.devicetree.naming import decode, label_name
from nfd_hooks.sources.devicetree.result import DevicetreeFound, LabelMade, NodeSeen
from nfd_hooks.sources.devicetree.tree import LIVE_TREE, MAX_PROPERTY_SIZE, DtNode, devicetree_directory_problem, open_live_tree, walk

if TYPE_CHECKING:
    from nfd_hooks.options import Options

NAME = "devicetree"
DEFAULT_NODES = ("cpu", "gpu")
DEFAULT_PREFIX = "beta.devicetree.org"
ENABLED_STATUSES = (b"okay", b"ok")
MODEL = "root/model"  # the raw feature of the root's model, after the prefix (see above)


class DevicetreeOptions(NamedTuple):
    """``path`` is a DTB or a live-tree directory; ``required`` when the user named it;
    ``beneath``: the sysfs root ``path`` is the live tree of (``LIVE_TREE`` under
    it), which it is resolved beneath, or None for a path the user named.

    A NamedTuple for start-up time (see ``nfd_hooks.features.Feature``).
    """

    path: Path
    required: bool = False
    nodes: Tuple[str, ...] = DEFAULT_NODES
    prefix: str = DEFAULT_PREFIX
    include_disabled: bool = False
    raw_features: bool = True
    beneath: Optional[Path] = None


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


def read_devicetree(path: Path, notices: List[str]) -> Tuple[DtNode, str, Optional[Tree]]:
    """Open ``path`` (named by the user) as a live tree or a DTB: the root, the
    reader used, and the tree to close once read (None for a blob).

    InputError when it is neither (a directory without a tree's top: see
    ``tree.devicetree_directory_problem``, which looks beneath the opened tree)."""
    if path.is_dir():
        try:
            tree = Tree.open(str(path))
        except OSError as error:
            raise InputError(f"{path}: cannot read devicetree: {error.strerror}") from None
        problem = devicetree_directory_problem(tree)
        if problem:
            tree.close()
            raise InputError(f"{path}: {problem}")
        return open_live_tree(tree, notices), "tree", tree
    from nfd_hooks.sources.devicetree.blob import MAX_BLOB_SIZE, looks_like_blob, parse_blob  # live nodes have no blob

    try:
        data = read_regular_file(str(path), MAX_BLOB_SIZE + 1)
    except NotARegularFile:
        raise InputError(f"{path}: neither a devicetree blob file nor a devicetree directory") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read devicetree: {error.strerror}") from None
    if not looks_like_blob(data):
        raise InputError(f"{path}: neither a devicetree blob nor a devicetree directory")
    return parse_blob(data, str(path)), "blob", None  # refuses more than MAX_BLOB_SIZE bytes


def _open_live(options: DevicetreeOptions, notices: List[str]) -> Optional[Tuple[DtNode, str, Optional[Tree]]]:
    """The node's own live tree, ``firmware/devicetree/base`` resolved beneath the
    sysfs root for real: a symlink there (or at ``firmware``) leading out of it is
    not followed. None, with a notice, when there is none to read."""
    assert options.beneath is not None
    try:
        with Tree.open(str(options.beneath)) as sysfs:
            tree = sysfs.subtree(LIVE_TREE)
    except FileNotFoundError:
        notices.append(f"no devicetree at {options.path}: no devicetree labels on this node")
        return None
    except OSError as error:
        notices.append(f"skipped the devicetree at {options.path}: {error.strerror}: no devicetree labels on this node")
        return None
    if devicetree_directory_problem(tree):
        # The node's own live tree, torn or emptied: the file is written without it.
        tree.close()
        notices.append(f"no devicetree at {options.path} (no 'name' or 'compatible' at its top): no devicetree labels")
        return None
    return open_live_tree(tree, notices), "tree", tree


def _property(node: DtNode, name: str, path: str, notices: List[str]) -> Optional[bytes]:
    """A property the source uses, None when absent or over MAX_PROPERTY_SIZE bytes:
    one limit for the live tree and the blob, so a node and its capture agree."""
    raw = node.property(name)
    if raw is not None and len(raw) > MAX_PROPERTY_SIZE:
        notices.append(f"skipped devicetree property {path.rstrip('/')}/{name}: over {MAX_PROPERTY_SIZE} bytes")
        return None
    return raw


def discover(options: DevicetreeOptions) -> SourceReport[DevicetreeFound]:
    """Labels and raw features for the devicetree at ``options.path``."""
    report: SourceReport[DevicetreeFound] = SourceReport(NAME, found=DevicetreeFound(str(options.path), None))
    if options.beneath is not None:
        opened = _open_live(options, report.notices)
        if opened is None:
            return report
    elif not options.path.exists():
        if options.required:
            raise InputError(f"{options.path}: no such devicetree file or directory")
        report.notices.append(f"no devicetree at {options.path}: no devicetree labels on this node")
        return report
    else:
        opened = read_devicetree(options.path, report.notices)
    root, reader, tree = opened
    try:
        _discover(options, root, reader, report)
    finally:
        if tree is not None:
            tree.close()
    return report


def _discover(options: DevicetreeOptions, root: DtNode, reader: str, report: SourceReport[DevicetreeFound]) -> None:
    selected = node_name_pattern(options.nodes)
    tallies: Dict[str, _Tally] = {}
    exact: Counter[str] = Counter()
    counted: List[NodeSeen] = []
    skipped: List[NodeSeen] = []
    for path, node in walk(root):
        if path != "/" and not selected.fullmatch(node.name):
            continue
        status = _property(node, "status", path, report.notices)
        strings = compatible_strings(_property(node, "compatible", path, report.notices))
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
    model = _property(root, "model", "/", report.notices)
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
            path=options.devicetree if options.devicetree is not None else options.sysfs / LIVE_TREE,
            required=named and options.devicetree_required,
            nodes=tuple(dict.fromkeys(DEFAULT_NODES + options.nodes)),
            prefix=options.prefix,
            include_disabled=options.include_disabled,
            raw_features=options.raw_features,
            beneath=None if named else options.sysfs,
        )

    def discover(self, options: DevicetreeOptions, earlier: Sequence[SourceReport[Any]]) -> SourceReport[DevicetreeFound]:
        return discover(options)

    def uevents(self, options: DevicetreeOptions) -> Tuple[str, ...]:
        return ()


SOURCE = DevicetreeSource()
