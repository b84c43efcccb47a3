"""What the devicetree source found: the nodes it read and the labels they made.

Typed, so that the accelerator source (``compatible_nodes``), the JSON view
(``details``) and the table read the same fields. Plain classes with
``__slots__``, built once and never changed: they are created at every start,
and such a class costs a seventh of a NamedTuple's (about 0.1 against 0.7
million instructions, measured with valgrind; docs/performance.md).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Set, Tuple


class NodeSeen:
    """A selected node: its path, the first string of its ``status`` (None
    without one) and its compatible strings, decoded, in order."""

    __slots__ = ("path", "status", "compatible")

    def __init__(self, path: str, status: Optional[str], compatible: Tuple[str, ...]) -> None:
        self.path = path
        self.status = status
        self.compatible = compatible


class LabelMade:
    """One label, ``name`` = ``seen``, how often strings with that name were seen;
    and the exact strings (with how often each was seen) and nodes behind it, sorted."""

    __slots__ = ("name", "seen", "strings", "nodes")

    def __init__(self, name: str, seen: int, strings: Tuple[Tuple[str, int], ...], nodes: Tuple[str, ...]) -> None:
        self.name = name
        self.seen = seen
        self.strings = strings
        self.nodes = nodes


class DevicetreeFound:
    """The devicetree at ``path`` read by ``reader`` (``tree`` or ``blob``; None:
    there is none on this node); ``nodes`` the node names selected; ``counted``
    the root and the selected nodes that are enabled, ``skipped`` the others."""

    __slots__ = ("path", "reader", "model", "nodes", "labels", "counted", "skipped")

    def __init__(
        self,
        path: str,
        reader: Optional[str],
        model: Optional[str] = None,
        nodes: Tuple[str, ...] = (),
        labels: Tuple[LabelMade, ...] = (),
        counted: Tuple[NodeSeen, ...] = (),
        skipped: Tuple[NodeSeen, ...] = (),
    ) -> None:
        self.path = path
        self.reader = reader
        self.model = model
        self.nodes = nodes
        self.labels = labels
        self.counted = counted
        self.skipped = skipped

    def compatible_nodes(self) -> Dict[str, Tuple[str, ...]]:
        """Exact compatible string -> paths of the counted nodes that list it, sorted.

        What other sources (the accelerator catalog) match on, so they see the
        same nodes as the devicetree labels (selection and status filtering
        included) without walking the tree again.
        """
        paths: Dict[str, Set[str]] = {}
        for node in self.counted:
            for text in node.compatible:
                paths.setdefault(text, set()).add(node.path)
        return {text: tuple(sorted(found)) for text, found in sorted(paths.items())}

    def details(self) -> Dict[str, Any]:
        if self.reader is None:
            return {}
        return {
            "path": self.path,
            "reader": self.reader,
            "model": self.model,
            "nodes": list(self.nodes),
            "labels": [
                {"label": label.name, "value": str(label.seen), "strings": dict(label.strings), "nodes": list(label.nodes)}
                for label in self.labels
            ],
            "counted_nodes": _nodes(self.counted),
            "skipped_nodes": _nodes(self.skipped),
            "compatible_nodes": {text: list(paths) for text, paths in self.compatible_nodes().items()},
        }


def _nodes(nodes: Sequence[NodeSeen]) -> List[Dict[str, Any]]:
    return [{"node": node.path, "status": node.status, "compatible": list(node.compatible)} for node in nodes]
