"""The command line's flags: each declared once, and how the scanning ones become ``api.Options``.

``nfd_hooks.cli`` holds the commands and takes their parameters from here.
typer reads a command's flags from its signature, so the flags of ``show``,
``write`` and ``watch`` are the parameters of ``scan_options``, given to each
command by ``scan_command``. No ``from __future__ import annotations``: typer
reads these annotations as objects.
"""

import inspect
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Callable, List, Optional, Sequence

import click
import typer

from nfd_hooks import api
from nfd_hooks.durations import parse_duration
from nfd_hooks.errors import InputError
from nfd_hooks.sources import usb as usb_source

FORMATS = ("nfd", "json", "table")


SysfsOpt = Annotated[
    Path, typer.Option("--sysfs", help="The host's sysfs root; in a container often /host-sys.")
]
DevicetreeOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--devicetree",
        help="A DTB file, or a directory laid out like /proc/device-tree. "
        "Default: <sysfs>/firmware/devicetree/base.",
    ),
]
NodeOpt = Annotated[
    Optional[List[str]],
    typer.Option("--node", help="Also count nodes named NAME, NAME@..., NAMEn@... (repeatable; cpu and gpu always)."),
]
PrefixOpt = Annotated[str, typer.Option("--prefix", help="Prefix of the devicetree labels.")]
IncludeDisabledOpt = Annotated[
    bool, typer.Option("--include-disabled", help="Count nodes whose status is not okay, as the 2020 labeller did.")
]
NoRawOpt = Annotated[
    bool,
    typer.Option("--no-raw-features", help="Leave out the '# +no-label' raw features (NFD older than v0.15)."),
]
NoDevicetreeOpt = Annotated[bool, typer.Option("--no-devicetree", help="Do not read the devicetree.")]
UsbOpt = Annotated[
    bool,
    typer.Option(
        "--usb/--no-usb",
        help="Scan USB devices, or not (the shipped one-shot hook runs --no-usb: NFD's own usb source labels USB there).",
    ),
]
FeaturesDirOpt = Annotated[
    Path, typer.Option("--features-dir", help="Directory NFD's local source reads (must exist).")
]
NameOpt = Annotated[str, typer.Option("--name", help="File name inside --features-dir.")]
DiffOpt = Annotated[
    bool,
    typer.Option(
        "--diff",
        help="Print each feature a write adds (+), removes (-) or changes (~) among those NFD reads "
        "from --features-dir/--name, one line each; a summary goes to stderr.",
    ),
]
BestEffortOpt = Annotated[
    bool,
    typer.Option(
        "--best-effort",
        help="On an error, print it (also as the pod's termination message), keep the previous file "
        "and exit 0: an initContainer's failure would keep NFD's worker from starting.",
    ),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print errors only (no notices, no progress lines).")]
NoAcceleratorsOpt = Annotated[
    bool, typer.Option("--no-accelerators", help="No accelerator labels (the catalog is not read, nor PCI).")
]
AcceleratorPrefixOpt = Annotated[
    str, typer.Option("--accelerator-prefix", help="Prefix of the accelerator labels <id>.present, .count, .ready and .ready-count.")
]
DevOpt = Annotated[
    Path,
    typer.Option(
        "--dev",
        help="The host's /dev, where readiness rules look for device nodes (looked at, never opened); "
        "in a container often /host-dev.",
    ),
]
CompatLabelsOpt = Annotated[
    bool,
    typer.Option(
        "--compat-labels",
        help="Also write the labels vendor device plugins are scheduled by, as the catalog declares them "
        "(nvidia.com/gpu.present on a Jetson, hailo.ai/device with a Hailo-8; docs/accelerators.md).",
    ),
]
CatalogOpt = Annotated[
    Optional[List[Path]],
    typer.Option(
        "--catalog",
        metavar="FILE",
        help="A TOML accelerator catalog whose entries add to or replace the shipped ones (repeatable).",
    ),
]
ReplayOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--replay",
        metavar="DIR",
        help="Read a bundle written by 'capture' instead of this node (not with --sysfs or --devicetree).",
    ),
]
UsbClassOpt = Annotated[
    Optional[List[str]],
    typer.Option(
        "--usb-class",
        metavar="XX",
        help="Label USB devices and interfaces of this class, two hex digits (repeatable; "
        "replaces the default 0e ef fe ff).",
    ),
]
UsbLabelFieldsOpt = Annotated[
    Optional[List[str]],
    typer.Option(
        "--usb-label-fields",
        metavar="FIELDS",
        help="Fields of USB label names, from class, vendor, device, serial (comma-separated or "
        "repeated; default class,vendor,device), as NFD's deviceLabelFields.",
    ),
]
UsbBackendOpt = Annotated[
    str,
    typer.Option(
        "--usb-backend",
        click_type=click.Choice(usb_source.BACKENDS),
        help="How USB devices are read (see docs/usb.md).",
    ),
]
FormatOpt = Annotated[
    str,
    typer.Option(
        "--format",
        click_type=click.Choice(FORMATS),
        help="nfd: exactly what write writes; json: also where each label came from; "
        "table: the same account for reading (80 columns).",
    ),
]
IntervalOpt = Annotated[float, typer.Option("--interval", metavar="SECONDS", help="Rescan this often, uevents or not.")]
NoUeventsOpt = Annotated[
    bool,
    typer.Option(
        "--no-uevents", help="Do not listen for device uevents (USB, driver binds, device nodes); rescan on the interval only."
    ),
]
BundleDirArg = Annotated[
    Path,
    typer.Argument(
        metavar="DIR",
        show_default=False,
        help="Where to write the bundle: a new or empty directory. It gets devicetree.dtb, sys/ (the USB "
        "attributes) and manifest.json; 'show --replay DIR' and 'test DIR' read it.",
    ),
]
CaptureDevicetreeOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--devicetree",
        help="A DTB file, or a directory laid out like /proc/device-tree. "
        "Default: <sysfs>/firmware/fdt when readable, else <sysfs>/firmware/devicetree/base.",
    ),
]
WithSerialsOpt = Annotated[bool, typer.Option("--with-serials", help="Also capture USB serial numbers (they identify devices).")]
CheckFilesArg = Annotated[
    List[Path],
    typer.Argument(
        metavar="FILE...",
        show_default=False,
        help="Features files; a directory stands for the files NFD reads in it.",
    ),
]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Fail on warnings too.")]
BundlesArg = Annotated[
    List[Path],
    typer.Argument(
        metavar="BUNDLE...",
        show_default=False,
        help="Bundles from 'capture', each with its expected.features; a directory stands for the bundles in it.",
    ),
]
SubsetOpt = Annotated[
    bool,
    typer.Option(
        "--subset",
        help="Compare only the labels and raw features each expected.features lists (a hand-written file of "
        "what your rules select on); without it, every one must match and none be extra.",
    ),
]
SkipWithoutExpectedOpt = Annotated[
    bool,
    typer.Option("--skip-without-expected", help="Skip a bundle that has no expected.features instead of failing."),
]
ExpiresOpt = Annotated[
    Optional[timedelta],
    typer.Option(
        "--expires-in",
        metavar="DURATION",
        parser=parse_duration,
        help=(
            "Add '# +expiry-time=' this far ahead (e.g. 1h, 30m). The worker on the node "
            "enforces it when it reads the file: after it, every label of the file is dropped "
            "until the file is rewritten. For 'watch', which refreshes it; with a one-shot "
            "'write' all labels vanish after DURATION until the pod restarts."
        ),
    ),
]

HostDevOpt = Annotated[
    Path, typer.Option("--host-dev", help="The host's own path to what --dev shows: device nodes in CDI specs and Allocate answers.")
]
NodeNameOpt = Annotated[
    Optional[str], typer.Option("--node-name", envvar="NODE_NAME", help="This node's name (default: $NODE_NAME).")
]
DevicesFormatOpt = Annotated[
    str, typer.Option("--format", click_type=click.Choice(("table", "json")), help="table for reading, json for tools.")
]


def scan_options(
    ctx: typer.Context,
    sysfs: SysfsOpt = Path("/sys"),
    devicetree: DevicetreeOpt = None,
    node: NodeOpt = None,
    prefix: PrefixOpt = api.DEFAULT_PREFIX,
    include_disabled: IncludeDisabledOpt = False,
    no_raw_features: NoRawOpt = False,
    no_devicetree: NoDevicetreeOpt = False,
    usb: UsbOpt = True,
    usb_class: UsbClassOpt = None,
    usb_label_fields: UsbLabelFieldsOpt = None,
    usb_backend: UsbBackendOpt = "auto",
    no_accelerators: NoAcceleratorsOpt = False,
    accelerator_prefix: AcceleratorPrefixOpt = api.DEFAULT_ACCELERATOR_PREFIX,
    catalog: CatalogOpt = None,
    dev: DevOpt = Path("/dev"),
    compat_labels: CompatLabelsOpt = False,
    expires_in: ExpiresOpt = None,
    replay: ReplayOpt = None,
) -> api.Options:
    """The options of every command that scans the node, declared once.

    ``scan_command`` gives show, write and watch these parameters (typer reads
    them from this signature) and hands the command what this returns.
    """
    options = api.Options(
        sysfs=sysfs,
        devicetree=devicetree,
        nodes=tuple(node or ()),
        prefix=prefix,
        include_disabled=include_disabled,
        raw_features=not no_raw_features,
        use_devicetree=not no_devicetree,
        use_usb=usb,
        usb_classes=tuple(usb_class) if usb_class else usb_source.DEFAULT_ALLOWLIST,
        usb_label_fields=tuple(usb_label_fields) if usb_label_fields else usb_source.DEFAULT_LABEL_FIELDS,
        usb_backend=usb_backend,
        use_accelerators=not no_accelerators,
        accelerator_prefix=accelerator_prefix,
        catalogs=tuple(catalog or ()),
        dev=dev,
        compat_labels=compat_labels,
        expires_in=expires_in,
    )
    if replay is None:
        return options
    for name in ("sysfs", "devicetree", "dev"):
        source = ctx.get_parameter_source(name)
        if source is not None and source.name != "DEFAULT":
            raise InputError(f"--replay reads the bundle's sysfs and devicetree; drop --{name}")
    return api.replay_options(replay, options)


_SCAN_PARAMETERS = tuple(inspect.signature(scan_options).parameters.values())

# What a bundle gives in their place: commands that only replay do not take them.
REPLAYED = ("sysfs", "devicetree", "dev", "usb_backend", "replay")
# scan_options' defaults as the deployed hook scans (api.DEPLOYED_HOOK): those of `test`.
# Each field DEPLOYED_HOOK sets needs its flag here; tests/nodes/test_command.py says when one is missing.
HOOK_DEFAULTS = {"usb": api.DEPLOYED_HOOK.use_usb}


def scan_command(command: Callable[..., None]) -> Callable[..., None]:
    """``command(options, ...)`` as typer sees it: ``scan_options``' parameters, then
    its own; it is called with the ``api.Options`` they make.

    typer reads a command's parameters from its signature, so setting
    ``__signature__`` (and the annotations it reads types from) is all it takes;
    nothing is built per start that was not built before.
    """
    return _with_scan_options(command, _SCAN_PARAMETERS)


def replay_command(command: Callable[..., None]) -> Callable[..., None]:
    """As ``scan_command``, for a command that only replays bundles: without the
    flags a bundle replaces (``REPLAYED``), with the deployed hook's defaults (``HOOK_DEFAULTS``)."""
    shared = tuple(
        p.replace(default=HOOK_DEFAULTS.get(p.name, p.default)) for p in _SCAN_PARAMETERS if p.name not in REPLAYED
    )
    return _with_scan_options(command, shared)


def _with_scan_options(command: Callable[..., None], shared: Sequence[inspect.Parameter]) -> Callable[..., None]:
    own = [p for p in inspect.signature(command).parameters.values() if p.name != "options"]
    required = [p for p in own if p.default is p.empty]  # arguments: before every parameter with a default

    def scanning(**values: Any) -> None:
        given = {p.name: values.pop(p.name) for p in shared}
        command(scan_options(**given), **values)

    parameters = [*required, *shared, *(p for p in own if p not in required)]
    scanning.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    scanning.__annotations__ = {p.name: p.annotation for p in parameters}
    for attribute in ("__name__", "__qualname__", "__doc__", "__module__"):
        setattr(scanning, attribute, getattr(command, attribute))
    return scanning
