"""Feature sources, one per package, as NFD has ``source/usb`` and ``source/local``.

Each source turns one kind of hardware description into features and a
JSON-ready account of where each came from; the features model validates and
renders them, so a source only has to be right about its own hardware.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Set

from nfd_hooks.features import Feature


@dataclass
class SourceReport:
    """What one source found.

    ``details`` is the provenance ``show --format json`` prints; ``notices`` are
    one-line messages for stderr about things skipped, never fatal.
    ``origins`` says, for a notice, what on the node gave a feature, when a
    collision with another source's name leaves it out (``api.PRECEDENCE``);
    ``expendable`` names the labels that give way before the output is split
    over several files (``features.layout``).
    """

    name: str
    features: List[Feature] = field(default_factory=list)
    details: Dict[str, Any] = field(default_factory=dict)
    notices: List[str] = field(default_factory=list)
    origins: Dict[str, str] = field(default_factory=dict)
    expendable: Set[str] = field(default_factory=set)
