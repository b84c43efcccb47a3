"""The one interface every source implements, as NFD's ``source.FeatureSource`` is.

NFD's sources each have a ``Name``, ``Discover`` and ``GetFeatures``, and are
registered in one list; here a source is an object with a ``name``, a
``configure`` that checks and normalises its part of the flags once, and a
``discover`` that returns a ``SourceReport``: the features it makes, and what
it found as a typed value (``found``) that later sources, the JSON view and
the table read. Sources run in the order ``nfd_hooks.sources.SOURCES`` lists
them, each given the reports of those before it: the accelerator source reads
the devicetree's nodes and the USB devices from there (``found_in``), typed,
and never reads the node twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Generic, Iterable, List, Optional, Protocol, Sequence, Set, Tuple, Type, TypeVar

from nfd_hooks.features import Feature

if TYPE_CHECKING:
    from nfd_hooks.options import Options


class Found(Protocol):
    """A source's typed result: what it found on the node, for the sources after it and the views."""

    def details(self) -> Dict[str, Any]:
        """The JSON-ready account ``show --format json`` prints under the source's name."""
        ...


F = TypeVar("F", bound=Found)  # a source's result
Own = TypeVar("Own")  # a source's own options
T = TypeVar("T")


class SourceReport(Generic[F]):
    """What one source found.

    ``found`` is the typed result (None only in a report made by hand);
    ``notices`` are one-line messages for stderr about things skipped, never
    fatal. ``origins`` says, for a notice, what on the node gave a feature,
    when a collision with another source's name leaves it out (``assemble``
    in ``nfd_hooks.api``); ``expendable`` names the labels that give way before
    the output is split over several files (``features.layout``).

    A plain class, not a dataclass: making a dataclass costs about 2 million
    instructions at every start (docs/performance.md).
    """

    __slots__ = ("name", "features", "found", "notices", "origins", "expendable")

    def __init__(
        self,
        name: str,
        features: Optional[List[Feature]] = None,
        found: Optional[F] = None,
        notices: Optional[List[str]] = None,
        origins: Optional[Dict[str, str]] = None,
        expendable: Optional[Set[str]] = None,
    ) -> None:
        self.name = name
        self.features: List[Feature] = features if features is not None else []
        self.found = found
        self.notices: List[str] = notices if notices is not None else []
        self.origins: Dict[str, str] = origins if origins is not None else {}
        self.expendable: Set[str] = expendable if expendable is not None else set()

    @property
    def details(self) -> Dict[str, Any]:
        """The provenance ``show --format json`` prints; empty without a result."""
        return self.found.details() if self.found is not None else {}


class Source(Protocol[Own, F]):
    """A feature source.

    ``name`` names its report (the JSON key, the table's section); ``priority``
    decides a name two sources give, the higher keeping it (NFD's label
    source priority: local 20 over usb 0); ``static`` says its input does not
    change while the system runs (``watch`` reads it once).
    """

    @property
    def name(self) -> str: ...

    @property
    def priority(self) -> int: ...

    @property
    def static(self) -> bool: ...

    def configure(self, options: Options) -> Optional[Own]:
        """Its own options, checked and normalised (InputError naming the flag);
        None when the flags turn it off. Checks run even then: a flag is bad or good
        whatever else is given."""
        ...

    def discover(self, options: Own, earlier: Sequence[SourceReport[Any]]) -> SourceReport[F]:
        """Read the node; ``earlier`` are the reports of the sources listed before it."""
        ...

    def uevents(self, options: Own) -> Tuple[str, ...]:
        """The kernel subsystems whose uevents can change its features (``watch`` listens to them)."""
        ...


def found_in(reports: Iterable[SourceReport[Any]], kind: Type[T]) -> Optional[T]:
    """The result of type ``kind`` among ``reports``; None when that source did not run."""
    for report in reports:
        if isinstance(report.found, kind):
            return report.found
    return None
