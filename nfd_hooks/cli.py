"""The ``nfd-hooks`` command line: a thin typer layer over ``nfd_hooks.api``.

Every error is one line on stderr and a documented exit code (see ``errors``):
typer/click usage errors are caught here rather than printed as boxed usage.
"""

import copy
import inspect
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Callable, List, Optional

import click
import typer
from typer.main import get_command_name


try:  # typer >= 0.22 vendors click and exports its exception base
    from typer import TyperException as UsageProblem
except ImportError:  # older typer (the one Python 3.9 and 3.10 get) runs on click
    from click import ClickException as UsageProblem

from nfd_hooks import __version__, api
from nfd_hooks.durations import parse_duration
from nfd_hooks.errors import InputError, NfdHooksError, Terminated, one_line
from nfd_hooks.sources import usb as usb_source

def _examples(*lines: str) -> str:
    """An epilog click prints as given (``\\b``: no rewrapping), one command a line."""
    return "Examples:\n\n\b\n" + "\n".join(f"  {line}" for line in lines)


OVERVIEW = _examples(
    "nfd-hooks show --format table       # what this node gets, and why",
    "nfd-hooks show --diff               # what a write would change",
    "nfd-hooks write --sysfs /host-sys --features-dir /features.d",
    "nfd-hooks COMMAND --help            # each command's own examples",
)

FORMATS = ("nfd", "json", "table")

app = typer.Typer(
    name="nfd-hooks",
    help="Devicetree and USB features for Node Feature Discovery's local source.\n\n"
    "Exit codes: 0 success (also on a node without a devicetree), 1 the features file "
    "could not be written, 2 bad input (flag value, unreadable --devicetree, broken --catalog).",
    epilog=OVERVIEW,
    add_completion=True,  # ~0.2 ms a start: bench/completion_cost.py, docs/performance.md
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

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
NoUsbOpt = Annotated[bool, typer.Option("--no-usb", help="Do not scan USB devices.")]
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


def _options(
    ctx: typer.Context,
    sysfs: SysfsOpt = Path("/sys"),
    devicetree: DevicetreeOpt = None,
    node: NodeOpt = None,
    prefix: PrefixOpt = api.DEFAULT_PREFIX,
    include_disabled: IncludeDisabledOpt = False,
    no_raw_features: NoRawOpt = False,
    no_devicetree: NoDevicetreeOpt = False,
    no_usb: NoUsbOpt = False,
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

    ``_scan_command`` gives show, write and watch these parameters (typer reads
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
        use_usb=not no_usb,
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
        source = ctx.get_parameter_source(name)  # click's ParameterSource, vendored or not
        if source is not None and source.name != "DEFAULT":
            raise InputError(f"--replay reads the bundle's sysfs and devicetree; drop --{name}")
    return api.replay_options(replay, options)


_SCAN_PARAMETERS = tuple(inspect.signature(_options).parameters.values())


def _scan_command(command: Callable[..., None]) -> Callable[..., None]:
    """``command(options, ...)`` as typer sees it: ``_options``' parameters, then
    its own; it is called with the ``api.Options`` they make.

    typer reads a command's parameters from its signature, so setting
    ``__signature__`` (and the annotations it reads types from) is all it takes;
    nothing is built per start that was not built before.
    """
    own = [p for p in inspect.signature(command).parameters.values() if p.name != "options"]

    def scan_command(**values: Any) -> None:
        shared = {p.name: values.pop(p.name) for p in _SCAN_PARAMETERS}
        command(_options(**shared), **values)

    parameters = [*_SCAN_PARAMETERS, *own]
    scan_command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    scan_command.__annotations__ = {p.name: p.annotation for p in parameters}
    for attribute in ("__name__", "__qualname__", "__doc__", "__module__"):
        setattr(scan_command, attribute, getattr(command, attribute))
    return scan_command


def _print_notices(result: api.Scan) -> None:
    for notice in result.notices:
        print(f"nfd-hooks: {one_line(notice)}", file=sys.stderr)


def _version(value: bool) -> None:
    if value:
        print(f"nfd-hooks {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Devicetree and USB features for Node Feature Discovery's local source."""


@app.command(
    epilog=_examples(
        "nfd-hooks show --format table",
        "nfd-hooks show --diff --sysfs /host-sys --features-dir /features.d",
        "nfd-hooks show --format json --node npu",
        "nfd-hooks show --devicetree board.dtb --no-usb",
        "nfd-hooks show --usb-class 08 --usb-class ff --usb-label-fields class,vendor",
        "nfd-hooks show --catalog my-accelerators.toml",
        "nfd-hooks show --replay node-bundle --format table   # a bundle from 'capture'",
    )
)
@_scan_command
def show(
    options: api.Options,
    output_format: Annotated[
        str,
        typer.Option(
            "--format",
            click_type=click.Choice(FORMATS),
            help="nfd: exactly what write writes; json: also where each label came from; "
            "table: the same account for reading (80 columns).",
        ),
    ] = "nfd",
    diff: DiffOpt = False,
    features_dir: FeaturesDirOpt = api.DEFAULT_FEATURES_DIR,
    name: NameOpt = api.DEFAULT_FILE_NAME,
) -> None:
    """Print the features file that 'write' would write, or explain it, or what it would change."""
    if diff and output_format != "nfd":
        raise InputError(f"--diff prints changes, not --format {output_format}; drop one of them")
    if output_format != "nfd":
        options = options._replace(usb_details=True)
    result = api.scan(options)
    _print_notices(result)
    if diff:
        _print_diff(result, options, features_dir, name)
    elif output_format == "json":
        sys.stdout.write(api.render_json(result))
    elif output_format == "table":
        import os

        from nfd_hooks.table import render_table, wants_bold  # lazy: for people, not for the hook

        bold = wants_bold(sys.stdout.isatty(), os.environ)
        sys.stdout.write(render_table(result.reports, result.features, bold=bold))
    else:
        sys.stdout.buffer.write(api.render_scan(result, options))


def _print_diff(result: api.Scan, options: api.Options, features_dir: Path, name: str, quiet: bool = False) -> None:
    """The changes on stdout, one line each; the summary on stderr (unless ``quiet``)."""
    from nfd_hooks.diff import summary

    changes, found = api.diff(result, options, features_dir, name)
    for change in changes:
        print(one_line(change.format()))
    if not quiet:
        print(f"nfd-hooks: {one_line(summary(features_dir, name, found, changes))}", file=sys.stderr)


@app.command(
    epilog=_examples(
        "nfd-hooks write --sysfs /host-sys --features-dir /features.d --no-usb",
        "nfd-hooks write --diff --quiet",
        "nfd-hooks write --name devicetree --no-usb --prefix dt.example.com",
    )
)
@_scan_command
def write(
    options: api.Options,
    features_dir: FeaturesDirOpt = api.DEFAULT_FEATURES_DIR,
    name: NameOpt = api.DEFAULT_FILE_NAME,
    diff: DiffOpt = False,
    quiet: QuietOpt = False,
    best_effort: Annotated[
        bool,
        typer.Option(
            "--best-effort",
            help="On an error, print it (also as the pod's termination message), keep the previous file "
            "and exit 0: an initContainer's failure would keep NFD's worker from starting.",
        ),
    ] = False,
) -> None:
    """Write the features file atomically into --features-dir."""
    try:
        result = None
        if diff:  # compared before the file is replaced
            result = api.scan(options)
            _print_diff(result, options, features_dir, name, quiet)
        target, result = api.write(options, features_dir, name, result)
    except NfdHooksError as error:
        if not best_effort or error.exit_code == Terminated.exit_code:
            raise
        message = f"{one_line(str(error))} (--best-effort: the previous file, if any, is kept; exit 0)"
        _fail(message, 0)
        _termination_message(f"nfd-hooks: error: {message}\n")
        return
    if quiet:
        return
    _print_notices(result)
    labels = sum(1 for f in result.features if f.label)
    more = len(result.parts) - 1
    also = f" and {more} more file{'s' if more > 1 else ''} beside it" if more else ""
    print(f"nfd-hooks: wrote {one_line(str(target))}{also} ({labels} labels)", file=sys.stderr)


@app.command(
    epilog=_examples(
        "nfd-hooks watch --sysfs /host-sys --features-dir /features.d --quiet",
        "nfd-hooks watch --expires-in 10m --interval 30",
        "nfd-hooks watch --no-uevents --interval 5",
    )
)
@_scan_command
def watch(
    options: api.Options,
    features_dir: FeaturesDirOpt = api.DEFAULT_FEATURES_DIR,
    name: NameOpt = api.DEFAULT_FILE_NAME,
    interval: Annotated[
        float, typer.Option("--interval", metavar="SECONDS", help="Rescan this often, uevents or not.")
    ] = api.DEFAULT_INTERVAL,
    no_uevents: Annotated[
        bool, typer.Option("--no-uevents", help="Do not listen for device uevents (USB, driver binds, device nodes); rescan on the interval only.")
    ] = False,
    quiet: QuietOpt = False,
) -> None:
    """Write the features file, then keep it current as devices come and go (until SIGTERM).

    Each rewrite is logged with the features it added (+), removed (-) or changed (~).
    """
    from nfd_hooks import watch as watcher

    watcher.watch(options, features_dir, name, interval, udev=not no_uevents, quiet=quiet)


@app.command(
    epilog=_examples(
        "nfd-hooks capture node-bundle",
        "nfd-hooks capture node-bundle --with-serials",
        "nfd-hooks show --replay node-bundle   # then, on any machine",
    )
)
def capture(
    directory: Annotated[Path, typer.Argument(metavar="DIR", show_default=False, help="New or empty directory for the bundle.")],
    sysfs: SysfsOpt = Path("/sys"),
    devicetree: Annotated[
        Optional[Path],
        typer.Option(
            "--devicetree",
            help="A DTB file, or a directory laid out like /proc/device-tree. "
            "Default: <sysfs>/firmware/fdt when readable, else <sysfs>/firmware/devicetree/base.",
        ),
    ] = None,
    with_serials: Annotated[
        bool, typer.Option("--with-serials", help="Also capture USB serial numbers (they identify devices).")
    ] = False,
) -> None:
    """Capture this node's devicetree and USB attributes into a bundle for 'show --replay'."""
    done = api.capture(directory, sysfs, devicetree, with_serials)
    for notice in done.notices:
        print(f"nfd-hooks: {one_line(notice)}", file=sys.stderr)
    source = done.devicetree_from or "none"
    print(
        f"nfd-hooks: captured {one_line(str(done.directory))} (devicetree from {one_line(source)}, "
        f"{done.usb_devices} USB devices, {done.size} bytes)",
        file=sys.stderr,
    )


@app.command(
    epilog=_examples(
        "nfd-hooks check /etc/kubernetes/node-feature-discovery/features.d",
        "nfd-hooks check --strict my-features",
    )
)
def check(
    files: Annotated[
        List[Path],
        typer.Argument(
            metavar="FILE...",
            show_default=False,
            help="Features files; a directory stands for the files NFD reads in it.",
        ),
    ],
    strict: Annotated[bool, typer.Option("--strict", help="Fail on warnings too.")] = False,
) -> None:
    """Report what NFD's local source would drop, skip or misread in features files.

    A directory stands for the files NFD reads in it. One line per problem on stdout, FILE:LINE: message (FILE: message for the
    whole file). Exit codes: 0 nothing wrong (warnings allowed unless --strict),
    1 problems found, 2 a file could not be read.
    """
    from nfd_hooks.check import check_paths  # lazy: only this command needs it

    result = check_paths(files)
    for path, problem in result.problems:
        print(one_line(problem.format(path)))  # file names and contents come from the node
    for message in result.unreadable:
        print(f"nfd-hooks: error: {one_line(message)}", file=sys.stderr)
    raise typer.Exit(result.exit_code(strict))


@app.command(
    epilog=_examples(
        "nfd-hooks devices                        # this node's accelerators, one per device",
        "nfd-hooks devices --format json",
        "nfd-hooks devices --replay node-bundle",
    )
)
def devices(
    ctx: typer.Context,
    sysfs: SysfsOpt = Path("/sys"),
    devicetree: DevicetreeOpt = None,
    replay: ReplayOpt = None,
    node: NodeOpt = None,
    include_disabled: IncludeDisabledOpt = False,
    no_devicetree: NoDevicetreeOpt = False,
    no_usb: NoUsbOpt = False,
    usb_backend: UsbBackendOpt = "auto",
    catalog: CatalogOpt = None,
    dev: DevOpt = Path("/dev"),
    output_format: Annotated[
        str, typer.Option("--format", click_type=click.Choice(("table", "json")), help="table for reading, json for tools.")
    ] = "table",
) -> None:
    """List the accelerators as allocation sees them: one device per physical accelerator,
    named by where it is attached, with its ids, driver, readiness and device nodes."""
    from nfd_hooks.allocation.commands import print_devices  # lazy: allocation is its own commands' only

    options = _options(ctx, sysfs=sysfs, devicetree=devicetree, node=node, include_disabled=include_disabled,
                       no_devicetree=no_devicetree, no_usb=no_usb, usb_backend=usb_backend, catalog=catalog, dev=dev,
                       replay=replay)
    print_devices(options, output_format)


HostDevOpt = Annotated[
    Path, typer.Option("--host-dev", help="The host's own path to what --dev shows: device nodes in CDI specs and Allocate answers.")
]
NodeNameOpt = Annotated[
    Optional[str], typer.Option("--node-name", envvar="NODE_NAME", help="This node's name (default: $NODE_NAME).")
]


@app.command(
    "dra-driver",
    epilog=_examples(
        "nfd-hooks dra-driver --sysfs /host-sys --dev /host-dev   # in the DaemonSet (manifests/allocation)",
    ),
)
def dra_driver(
    sysfs: SysfsOpt = Path("/sys"),
    dev: DevOpt = Path("/dev"),
    host_dev: HostDevOpt = Path("/dev"),
    catalog: CatalogOpt = None,
    node_name: NodeNameOpt = None,
    driver_name: Annotated[str, typer.Option("--driver-name", help="The DRA driver name, a DNS subdomain.")] = "accelerator.nfd-hooks.io",
    cdi_dir: Annotated[Path, typer.Option("--cdi-dir", help="Where CDI specs are written.")] = Path("/var/run/cdi"),
    plugins_dir: Annotated[
        Path, typer.Option("--plugins-dir", help="The kubelet's plugin directory (our socket and checkpoint go in <dir>/<driver>).")
    ] = Path("/var/lib/kubelet/plugins"),
    registry_dir: Annotated[
        Path, typer.Option("--registry-dir", help="The kubelet's plugin registration directory.")
    ] = Path("/var/lib/kubelet/plugins_registry"),
    grace: Annotated[
        float, typer.Option("--grace", metavar="SECONDS", help="How long a device may be gone (re-enumerating) before it is withdrawn.")
    ] = 5.0,
    taint_window: Annotated[
        float,
        typer.Option("--taint-window", metavar="SECONDS", help="How long an unplugged device stays tainted NoExecute at least (with DRADeviceTaints)."),
    ] = 30.0,
    resync: Annotated[float, typer.Option("--resync", metavar="SECONDS", help="Rescan and check the ResourceSlice this often without uevents.")] = 60.0,
    no_uevents: Annotated[bool, typer.Option("--no-uevents", help="Do not listen for device uevents; rescan every --resync only.")] = False,
    server: Annotated[Optional[str], typer.Option("--server", help="API server URL (default: in-cluster).")] = None,
    token_file: Annotated[Optional[Path], typer.Option("--token-file", help="Bearer token file (default: the service account's).")] = None,
    ca_file: Annotated[Optional[Path], typer.Option("--ca-file", help="CA bundle of the API server (default: the service account's).")] = None,
) -> None:
    """Run the DRA driver: publish this node's accelerators as a ResourceSlice and prepare
    them for pods through the kubelet (until SIGTERM). See docs/allocation.md."""
    values = dict(locals())  # the options, before anything else is named here
    from nfd_hooks.allocation.commands import run_dra_driver

    run_dra_driver(values)


@app.command(
    "device-plugin",
    epilog=_examples(
        "nfd-hooks device-plugin --sysfs /host-sys --dev /host-dev   # clusters without DRA (manifests/allocation/device-plugin)",
    ),
)
def device_plugin(
    sysfs: SysfsOpt = Path("/sys"),
    dev: DevOpt = Path("/dev"),
    host_dev: HostDevOpt = Path("/dev"),
    catalog: CatalogOpt = None,
    resource_prefix: Annotated[str, typer.Option("--resource-prefix", help="Extended resources are <prefix>/<catalog id>.")] = "accelerator.nfd-hooks.io",
    plugin_dir: Annotated[
        Path, typer.Option("--plugin-dir", help="The kubelet's device plugin directory (kubelet.sock).")
    ] = Path("/var/lib/kubelet/device-plugins"),
    resync: Annotated[float, typer.Option("--resync", metavar="SECONDS", help="Rescan this often without uevents.")] = 60.0,
    no_uevents: Annotated[bool, typer.Option("--no-uevents", help="Do not listen for device uevents; rescan every --resync only.")] = False,
) -> None:
    """Run a classic device plugin: an extended resource per catalog id, one device per
    accelerator, Unhealthy when unplugged (until SIGTERM). See docs/allocation.md."""
    values = dict(locals())  # the options, before anything else is named here
    from nfd_hooks.allocation.commands import run_device_plugin

    run_device_plugin(values)


def run(argv: Optional[List[str]] = None) -> int:
    """Run the CLI and return its exit code; errors become one line on stderr."""
    if argv is None:
        argv = sys.argv[1:]
    try:
        code = _narrowed(app, argv)(args=argv or ["--help"], prog_name="nfd-hooks", standalone_mode=False)
    except NfdHooksError as error:
        return _fail(str(error), error.exit_code)
    except typer.Exit as done:
        return done.exit_code
    except typer.Abort:
        return _fail("aborted", 1)
    except UsageProblem as error:
        return _fail(_usage_message(error), InputError.exit_code)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except BrokenPipeError:
        return 0
    return code if isinstance(code, int) else 0


def _narrowed(full: typer.Typer, argv: List[str]) -> typer.Typer:
    """``full`` holding only the command ``argv`` names, if it names one.

    typer turns every registered command into a click command on each start,
    about 1 ms per command here; the hook runs one. The group, its callback
    (``--version``) and the chosen command are unchanged, so parsing, errors
    and ``COMMAND --help`` are the same. Anything else (``--help``, a
    mistyped command) gets the full application.
    """
    chosen = [
        info
        for info in full.registered_commands
        if argv and (info.name or get_command_name(info.callback.__name__)) == argv[0]
    ]
    if len(chosen) != 1:
        return full
    narrowed = copy.copy(full)
    narrowed.registered_commands = chosen
    return narrowed


def _usage_message(error: UsageProblem) -> str:
    """click's message for a bad flag, on one line."""
    return " ".join(error.format_message().split())


# Where Kubernetes reads a container's termination message (the default
# terminationMessagePath); kubectl describe shows it even after an exit 0.
TERMINATION_LOG = Path("/dev/termination-log")


def _termination_message(text: str) -> None:
    """Leave ``text`` as the pod's termination message, when run in a pod."""
    import os

    try:  # never O_CREAT: outside a pod there is no such file, and none is made in /dev
        descriptor = os.open(TERMINATION_LOG, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return  # not in a pod: stderr already has it
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        stream.write(text)


def _fail(message: str, code: int) -> int:
    print(f"nfd-hooks: error: {one_line(message)}", file=sys.stderr)
    return code
