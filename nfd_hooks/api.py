"""The library API the CLI is a thin layer over: scan a node, render, write.

Tests and other tools call these directly; nothing here prints or exits.
A scan runs every source ``nfd_hooks.sources.SOURCES`` lists that the options
leave on (``configure``), then ``assemble`` merges their features by priority
and lays them out in the files NFD reads.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

from nfd_hooks import __version__
from nfd_hooks.errors import InputError
from nfd_hooks.features import Collision, Feature, Part, layout, merge, render_files
from nfd_hooks.options import DEFAULT_ACCELERATOR_PREFIX, DEFAULT_PREFIX, DEPLOYED_HOOK, Options
from nfd_hooks.sources import SOURCES, Source, SourceReport

if TYPE_CHECKING:
    from nfd_hooks.capture import Capture
    from nfd_hooks.diff import Change

__all__ = [
    "DEFAULT_ACCELERATOR_PREFIX", "DEFAULT_FEATURES_DIR", "DEFAULT_FILE_NAME", "DEFAULT_INTERVAL", "DEFAULT_PREFIX", "DEPLOYED_HOOK",
    "Files", "Options", "Scan", "assemble", "capture", "configure", "diff", "files", "render_json", "render_scan",
    "replay_options", "scan", "static_reports", "uevent_subsystems", "write",
]

DEFAULT_FEATURES_DIR = Path("/etc/kubernetes/node-feature-discovery/features.d")
DEFAULT_FILE_NAME = "nfd-hooks"
DEFAULT_INTERVAL = 10.0  # seconds between rescans of `watch`

# ``(suffix, content)`` of each features file of a scan, the main one (suffix "") first.
Files = List[Tuple[str, bytes]]
# Each source a scan runs, with its own options (``configure``).
Configured = List[Tuple[Source[Any, Any], Any]]


class Scan(NamedTuple):
    """The features of one node and where they came from: the sources' reports,
    and ``parts``, the features merged across sources and fitted into the files
    NFD reads (``assemble``); ``features`` is what is written, in every view."""

    reports: List[SourceReport[Any]]
    parts: List[Part]
    layout_notices: List[str]

    @property
    def features(self) -> List[Feature]:
        return [feature for part in self.parts for feature in part.features]

    @property
    def notices(self) -> List[str]:
        return [notice for report in self.reports for notice in report.notices] + self.layout_notices


def configure(options: Options) -> Configured:
    """Each source the options leave on, with its own options, checked and
    normalised once; InputError for a flag value that would only fail later."""
    if options.expires_in is not None and options.expires_in <= timedelta(0):
        raise InputError("--expires-in must be positive")
    if options.use_devicetree and options.devicetree is not None and options.devicetree.is_dir():
        _refuse_bundle(options.devicetree)
    configured: Configured = []
    for source in SOURCES:
        own = source.configure(options)
        if own is not None:
            configured.append((source, own))
    return configured


def scan(options: Options, reuse: Sequence[SourceReport[Any]] = ()) -> Scan:
    """Run every enabled source over the node, in order, each given the reports before it.

    ``reuse``: reports of an earlier scan, used instead of running their sources
    again (``watch`` reads the static sources, the devicetree, once).
    """
    reused = {report.name: report for report in reuse}
    reports: List[SourceReport[Any]] = []
    for source, own in configure(options):
        report = reused.get(source.name)
        reports.append(report if report is not None else source.discover(own, reports))
    return assemble(reports)


def _refuse_bundle(directory: Path) -> None:
    """A bundle named as --devicetree (an easy slip for --replay) is said to be one."""
    from nfd_hooks.bundle import MANIFEST  # lazy: only for a directory named as --devicetree

    if (directory / MANIFEST).is_file():
        raise InputError(f"{directory} is a capture bundle, not a devicetree: did you mean --replay {directory}?")


def static_reports(result: Scan) -> Tuple[SourceReport[Any], ...]:
    """The reports of sources whose input does not change at run time, for ``scan``'s ``reuse``."""
    static = {source.name for source in SOURCES if source.static}
    return tuple(report for report in result.reports if report.name in static)


def uevent_subsystems(options: Options) -> Tuple[str, ...]:
    """The kernel subsystems whose uevents can change the features, source by source."""
    return tuple(dict.fromkeys(subsystem for source, own in configure(options) for subsystem in source.uevents(own)))


def assemble(reports: Sequence[SourceReport[Any]]) -> Scan:
    """The reports, their features merged and laid out once.

    When two sources give one name different features (``features.merge``),
    the source of higher priority keeps it (``Source.priority``); the other's is
    left out with a notice saying what on the node gave it.
    """
    priority = {source.name: source.priority for source in SOURCES}
    ranked = sorted(reports, key=lambda report: priority.get(report.name, -1), reverse=True)
    merged, collisions = merge((report.name, report.features) for report in ranked)
    origins = {report.name: report.origins for report in reports}
    expendable = {name for report in reports for name in report.expendable}
    parts, notices = layout(merged, expendable)
    return Scan(list(reports), parts, [_collision_notice(c, origins[c.dropped_source]) for c in collisions] + notices)


def _collision_notice(collision: Collision, origins: Dict[str, str]) -> str:
    """Which entry was left out, from what on the node, and what kept its name."""
    dropped = collision.dropped
    kind = "label" if dropped.label else "raw feature"
    origin = origins.get(dropped.name, f"from the {collision.dropped_source} source")
    return (
        f"left out {kind} {dropped.name}={dropped.value} ({origin}): "
        f"the {collision.kept_source} source gives that name {collision.kept.value!r}"
    )


def files(result: Scan, options: Options, now: Optional[datetime] = None) -> Files:
    """Each features file for ``result``, rendered; ``now`` fixes the clock for the expiry time."""
    expires = None
    if options.expires_in is not None:
        expires = (now or datetime.now(timezone.utc)) + options.expires_in
    return render_files(result.parts, expires)


def render_scan(result: Scan, options: Options, now: Optional[datetime] = None) -> bytes:
    """What ``show`` prints: every features file for ``result``, one after the other."""
    return b"".join(content for _, content in files(result, options, now))


def render_json(result: Scan) -> str:
    """``show --format json``: the features plus each source's provenance."""
    import json  # lazy: only this output format needs it

    document: Dict[str, Any] = {
        "version": __version__,
        "features": [
            {"name": f.name, "value": f.value, "label": f.label} for f in result.features
        ],
        "sources": {report.name: report.details for report in result.reports},
        "notices": result.notices,
    }
    text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    # Paths and live-tree node names keep undecodable bytes as lone surrogates
    # (surrogateescape), which a UTF-8 stdout refuses with a traceback: they
    # become U+FFFD, as undecodable devicetree strings do (naming.decode).
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def write(
    options: Options, directory: Path = DEFAULT_FEATURES_DIR, name: str = DEFAULT_FILE_NAME, result: Optional[Scan] = None,
    rendered: Optional[Files] = None,
) -> Tuple[Path, Scan]:
    """Scan the node (unless ``result`` is an earlier scan of it) and replace its
    features files atomically; ``rendered``: ``result``'s files, already rendered."""
    from nfd_hooks.writer import write_files  # lazy: show never writes (tempfile is costly)

    if result is None:
        result = scan(options)
    target = write_files(directory, name, rendered if rendered is not None else files(result, options)).target
    return target, result


def diff(
    rendered: Files, directory: Path = DEFAULT_FEATURES_DIR, name: str = DEFAULT_FILE_NAME, now: Optional[datetime] = None
) -> Tuple[List[Change], List[Path]]:
    """What writing the ``rendered`` files would add, remove or change in the features
    NFD reads from our files in ``directory`` (see ``nfd_hooks.diff``), and those files."""
    from nfd_hooks import diff as differ  # lazy: only --diff compares

    now = now or datetime.now(timezone.utc)
    installed, found = differ.installed(directory, name, now)
    new = differ.features_of_files((content for _, content in rendered), now)
    return differ.changes(installed, new), found


def replay_options(bundle: Path, options: Options) -> Options:
    """``options`` pointed at a verified capture bundle instead of the live node.

    A bundle holds sysfs attribute files only, so the USB devices are read with
    the plain sysfs backend (udev and libusb read the live machine), and no
    device node is visible (this machine's /dev is not the node's).
    """
    from nfd_hooks.bundle import DEVICETREE, open_bundle  # lazy: only replay needs it

    if options.usb_backend not in ("auto", "sysfs"):
        raise InputError(f"--replay reads USB devices from the bundle's files; drop --usb-backend {options.usb_backend}")
    opened = open_bundle(bundle)
    return options._replace(
        sysfs=opened.sysfs,
        devicetree=opened.devicetree or bundle / DEVICETREE,  # absent: "no devicetree at B/devicetree.dtb"
        devicetree_required=opened.devicetree is not None,
        usb_backend="sysfs",
        dev=None,
    )


def capture(
    directory: Path, sysfs: Path = Path("/sys"), devicetree: Optional[Path] = None, with_serials: bool = False
) -> Capture:
    """Capture the node into a bundle at ``directory`` (see ``nfd_hooks.capture``)."""
    from nfd_hooks.capture import capture as capture_node

    return capture_node(directory, sysfs, devicetree, with_serials)
