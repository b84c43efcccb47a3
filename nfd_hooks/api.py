"""The library API the CLI is a thin layer over: scan a node, render, write.

Tests and other tools call these directly; nothing here prints or exits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, NamedTuple, Optional, Tuple

from nfd_hooks import __version__
from nfd_hooks.errors import InputError
from nfd_hooks.features import Collision, Feature, Part, layout, merge, prefix_problem, render_files
from nfd_hooks.sources import SourceReport
from nfd_hooks.sources import accelerators as accelerator_source
from nfd_hooks.sources import devicetree as devicetree_source
from nfd_hooks.sources import usb as usb_source

if TYPE_CHECKING:
    from nfd_hooks.capture import Capture
    from nfd_hooks.diff import Change

DEFAULT_FEATURES_DIR = Path("/etc/kubernetes/node-feature-discovery/features.d")
DEFAULT_FILE_NAME = "nfd-hooks"
DEFAULT_PREFIX = devicetree_source.DEFAULT_PREFIX
DEFAULT_INTERVAL = 10.0  # seconds between rescans of `watch`
DEFAULT_ACCELERATOR_PREFIX = accelerator_source.DEFAULT_PREFIX


class Options(NamedTuple):
    """Everything that decides what a node's features are.

    A NamedTuple for start-up time (see ``nfd_hooks.features.Feature``).
    """

    sysfs: Path = Path("/sys")
    devicetree: Optional[Path] = None  # None: the live tree under <sysfs>
    devicetree_required: bool = True  # a named devicetree must exist (a replayed bundle may have none)
    nodes: Tuple[str, ...] = ()  # added to devicetree_source.DEFAULT_NODES
    prefix: str = DEFAULT_PREFIX
    include_disabled: bool = False
    raw_features: bool = True
    use_devicetree: bool = True
    use_usb: bool = True
    usb_classes: Tuple[str, ...] = usb_source.DEFAULT_ALLOWLIST
    usb_label_fields: Tuple[str, ...] = usb_source.DEFAULT_LABEL_FIELDS
    usb_backend: str = "auto"
    usb_details: bool = False  # the JSON output: usb.ids names, and serials even if no label uses them
    use_accelerators: bool = True
    accelerator_prefix: str = DEFAULT_ACCELERATOR_PREFIX
    catalogs: Tuple[Path, ...] = ()  # user catalog files, over the shipped one
    dev: Optional[Path] = Path("/dev")  # the host's /dev, for readiness; None: no device node visible
    compat_labels: bool = False  # also the labels vendor device plugins are scheduled by
    expires_in: Optional[timedelta] = None

    def devicetree_options(self) -> devicetree_source.DevicetreeOptions:
        """The devicetree source's view: the named path is required, the default is not."""
        named = self.devicetree is not None
        path = self.devicetree if self.devicetree is not None else self.sysfs / "firmware" / "devicetree" / "base"
        return devicetree_source.DevicetreeOptions(
            path=path,
            required=named and self.devicetree_required,
            nodes=tuple(dict.fromkeys(devicetree_source.DEFAULT_NODES + self.nodes)),
            prefix=self.prefix,
            include_disabled=self.include_disabled,
            raw_features=self.raw_features,
        )

    def usb_options(self) -> usb_source.UsbOptions:
        """The USB source's view: it reads under the same sysfs root."""
        return usb_source.UsbOptions(
            sysfs=self.sysfs,
            allowlist=self.usb_classes,
            label_fields=self.usb_label_fields,
            backend=self.usb_backend,
            details=self.usb_details,
        )

    def accelerator_options(self) -> accelerator_source.AcceleratorOptions:
        return accelerator_source.AcceleratorOptions(
            sysfs=self.sysfs, prefix=self.accelerator_prefix, catalogs=self.catalogs, dev=self.dev,
            compat_labels=self.compat_labels, reserved=(self.prefix,),
        )


# When two sources give one name different features (features.merge), the
# earlier keeps it: the accelerator and USB names have a fixed form, devicetree
# label names are made from strings the hardware presents, whose exact text
# stays in the raw feature <prefix>/compatible/<string> all the same.
PRECEDENCE = ("accelerators", "usb", "devicetree")


@dataclass
class Scan:
    """The features of one node and where they came from.

    The features are laid out once, when the scan is complete: merged across
    sources (collisions dropped, one entry each) and fitted into files NFD reads
    (``features.layout``); ``features`` is what is written, in every view.
    """

    reports: List[SourceReport] = field(default_factory=list)
    parts: List[Part] = field(init=False)
    layout_notices: List[str] = field(init=False)

    def __post_init__(self) -> None:
        ranked = sorted(self.reports, key=lambda r: PRECEDENCE.index(r.name) if r.name in PRECEDENCE else len(PRECEDENCE))
        merged, collisions = merge((report.name, report.features) for report in ranked)
        origins = {report.name: report.origins for report in self.reports}
        expendable = {name for report in self.reports for name in report.expendable}
        self.parts, notices = layout(merged, expendable)
        self.layout_notices = [_collision_notice(c, origins[c.dropped_source]) for c in collisions] + notices

    @property
    def features(self) -> List[Feature]:
        return [feature for part in self.parts for feature in part.features]

    @property
    def notices(self) -> List[str]:
        return [notice for report in self.reports for notice in report.notices] + self.layout_notices


def _collision_notice(collision: Collision, origins: Dict[str, str]) -> str:
    """Which entry was left out, from what on the node, and what kept its name."""
    dropped = collision.dropped
    kind = "label" if dropped.label else "raw feature"
    origin = origins.get(dropped.name, f"from the {collision.dropped_source} source")
    return (
        f"left out {kind} {dropped.name}={dropped.value} ({origin}): "
        f"the {collision.kept_source} source gives that name {collision.kept.value!r}"
    )


def check_options(options: Options) -> None:
    """Refuse flag values that would only fail later, or produce invalid labels."""
    problem = prefix_problem(options.prefix)
    if problem:
        raise InputError(f"--prefix {options.prefix!r} {problem}")
    problem = prefix_problem(options.accelerator_prefix)
    if problem:
        raise InputError(f"--accelerator-prefix {options.accelerator_prefix!r} {problem}")
    for node in options.nodes:
        if not node or "/" in node:
            raise InputError(f"--node {node!r} must be a node name without '/'")
    if options.expires_in is not None and options.expires_in <= timedelta(0):
        raise InputError("--expires-in must be positive")
    usb_source.check_options(options.usb_options())


def scan(options: Options, devicetree: Optional[SourceReport] = None) -> Scan:
    """Run every enabled source over the node.

    ``devicetree``: the devicetree report of an earlier scan, used instead of
    reading the tree again (``watch`` reads it once: it does not change at run time).
    """
    check_options(options)
    reports = []
    devicetree_nodes = None
    if options.use_devicetree:
        report = devicetree or devicetree_source.discover(options.devicetree_options())
        reports.append(report)
        devicetree_nodes = devicetree_source.compatible_nodes(report)
    usb_devices = None
    if options.use_usb:
        # Read once: the USB labels and the accelerator catalog share the devices.
        usb_devices, notices, backend = usb_source.read_with_backend(options.usb_options())
        report = usb_source.discover(options.usb_options(), usb_devices, backend)
        report.notices[:0] = notices
        reports.append(report)
    if options.use_accelerators:
        reports.append(
            accelerator_source.discover(options.accelerator_options(), usb_devices, devicetree_nodes)
        )
    return Scan(reports)


def files(result: Scan, options: Options, now: Optional[datetime] = None) -> List[Tuple[str, bytes]]:
    """``(suffix, content)`` of each features file for ``result``, the main one
    (suffix "") first; ``now`` fixes the clock for the expiry time."""
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
    options: Options, directory: Path = DEFAULT_FEATURES_DIR, name: str = DEFAULT_FILE_NAME, result: Optional[Scan] = None
) -> Tuple[Path, Scan]:
    """Scan the node (unless ``result`` is an earlier scan of it) and replace its features file atomically."""
    from nfd_hooks.writer import write_files  # lazy: show never writes (tempfile is costly)

    if result is None:
        result = scan(options)
    target = write_files(directory, name, files(result, options)).target
    return target, result


def diff(
    result: Scan, options: Options, directory: Path = DEFAULT_FEATURES_DIR, name: str = DEFAULT_FILE_NAME,
    now: Optional[datetime] = None,
) -> Tuple[List["Change"], List[Path]]:
    """What writing ``result`` would add, remove or change in the features NFD reads
    from our files in ``directory`` (see ``nfd_hooks.diff``), and those files."""
    from nfd_hooks import diff as differ  # lazy: only --diff compares

    now = now or datetime.now(timezone.utc)
    installed, found = differ.installed(directory, name, now)
    new = {}
    for _, content in files(result, options, now):
        new.update(differ.features_of(content, now))
    return differ.changes(installed, new), found


def replay_options(bundle: Path, options: Options) -> Options:
    """``options`` pointed at a verified capture bundle instead of the live node.

    A bundle holds sysfs attribute files only, so the USB devices are read with
    the plain sysfs backend (udev and libusb read the live machine), and no
    device node is visible (this machine's /dev is not the node's).
    """
    from nfd_hooks.capture import DEVICETREE, open_bundle  # lazy: only replay needs it

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
) -> "Capture":
    """Capture the node into a bundle at ``directory`` (see ``nfd_hooks.capture``)."""
    from nfd_hooks.capture import capture as capture_node

    return capture_node(directory, sysfs, devicetree, with_serials)
