"""The ``nfd-hooks`` command line: a thin typer layer over ``nfd_hooks.api``.

The commands, each a few lines over the library; their flags are declared in
``nfd_hooks.flags``. Every error is one line on stderr and a documented exit
code (see ``errors``): typer/click usage errors are caught here rather than
printed as boxed usage.
"""

import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, List, Optional, Union

import typer
from click import ClickException as UsageProblem  # typer up to 0.24 (pyproject's bound) runs on click

from nfd_hooks import __version__, api
from nfd_hooks.errors import InputError, NfdHooksError, OutputError, Terminated, one_line, say
from nfd_hooks.flags import (
    BestEffortOpt,
    BundleDirArg,
    BundlesArg,
    CaptureDevicetreeOpt,
    CatalogOpt,
    CheckFilesArg,
    DevicesFormatOpt,
    DevicetreeOpt,
    DevOpt,
    DiffOpt,
    FeaturesDirOpt,
    FormatOpt,
    HostDevOpt,
    IncludeDisabledOpt,
    IntervalOpt,
    NameOpt,
    NodeNameOpt,
    NodeOpt,
    NoDevicetreeOpt,
    NoUeventsOpt,
    QuietOpt,
    ReplayOpt,
    SkipWithoutExpectedOpt,
    StrictOpt,
    SubsetOpt,
    SysfsOpt,
    UsbBackendOpt,
    UsbOpt,
    WithSerialsOpt,
    replay_command,
    scan_command,
    scan_options,
)
from nfd_hooks.usage import Command, narrowed, usage_message


def _examples(*lines: str) -> str:
    """An epilog click prints as given (``\\b``: no rewrapping), one command a line."""
    return "Examples:\n\n\b\n" + "\n".join(f"  {line}" for line in lines)


OVERVIEW = _examples(
    "nfd-hooks show --format table       # what this node gets, and why",
    "nfd-hooks show --diff               # what a write would change",
    "nfd-hooks write --sysfs /host-sys --features-dir /features.d",
    "nfd-hooks COMMAND --help            # each command's own examples",
)

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


def _version(value: bool) -> None:
    if value:
        _out(f"nfd-hooks {__version__}\n")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Devicetree and USB features for Node Feature Discovery's local source."""


@app.command(
    cls=Command,
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
@scan_command
def show(
    options: api.Options,
    output_format: FormatOpt = "nfd",
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
        now = datetime.now(timezone.utc)
        _print_diff(api.diff(api.files(result, options, now), features_dir, name, now), features_dir, name)
    elif output_format == "json":
        _out(api.render_json(result))
    elif output_format == "table":
        import os

        from nfd_hooks.table import render_table, wants_bold  # lazy: for people, not for the hook

        bold = wants_bold(sys.stdout.isatty(), os.environ)
        _out(render_table(result.reports, result.features, bold=bold))
    else:
        _out(api.render_scan(result, options))


@app.command(
    cls=Command,
    epilog=_examples(
        "nfd-hooks write --sysfs /host-sys --features-dir /features.d --no-usb",
        "nfd-hooks write --diff --quiet",
        "nfd-hooks write --name devicetree --no-usb --prefix dt.example.com",
    )
)
@scan_command
def write(
    options: api.Options,
    features_dir: FeaturesDirOpt = api.DEFAULT_FEATURES_DIR,
    name: NameOpt = api.DEFAULT_FILE_NAME,
    diff: DiffOpt = False,
    quiet: QuietOpt = False,
    best_effort: BestEffortOpt = False,
) -> None:
    """Write the features file atomically into --features-dir."""
    try:
        result = api.scan(options)
        now = datetime.now(timezone.utc)
        rendered = api.files(result, options, now)
        difference = api.diff(rendered, features_dir, name, now) if diff else None  # before the file is replaced
        target, _ = api.write(options, features_dir, name, result, rendered)
    except NfdHooksError as error:
        if not best_effort or error.exit_code == Terminated.exit_code:
            raise
        message = f"{str(error)} (--best-effort: the previous file, if any, is kept; exit 0)"
        _fail(message, 0)
        _termination_message(f"nfd-hooks: error: {one_line(message)}\n")
        return
    if difference is not None:  # printed once written: a stdout that fails costs the lines, not the file
        _print_diff(difference, features_dir, name, quiet)
    if quiet:
        return
    _print_notices(result)
    labels = sum(1 for f in result.features if f.label)
    more = len(result.parts) - 1
    also = f" and {more} more file{'s' if more > 1 else ''} beside it" if more else ""
    say(f"wrote {target}{also} ({labels} labels)")


@app.command(
    cls=Command,
    epilog=_examples(
        "nfd-hooks watch --sysfs /host-sys --features-dir /features.d --quiet",
        "nfd-hooks watch --expires-in 10m --interval 30",
        "nfd-hooks watch --no-uevents --interval 5",
    )
)
@scan_command
def watch(
    options: api.Options,
    features_dir: FeaturesDirOpt = api.DEFAULT_FEATURES_DIR,
    name: NameOpt = api.DEFAULT_FILE_NAME,
    interval: IntervalOpt = api.DEFAULT_INTERVAL,
    no_uevents: NoUeventsOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Write the features file, then keep it current as devices come and go (until SIGTERM).

    Each rewrite is logged with the features it added (+), removed (-) or changed (~).
    """
    from nfd_hooks import watch as watcher

    watcher.watch(options, features_dir, name, interval, udev=not no_uevents, quiet=quiet)


@app.command(
    cls=Command,
    epilog=_examples(
        "nfd-hooks capture node-bundle",
        "nfd-hooks capture node-bundle --with-serials",
        "nfd-hooks show --replay node-bundle   # then, on any machine",
    )
)
def capture(
    directory: BundleDirArg,
    sysfs: SysfsOpt = Path("/sys"),
    devicetree: CaptureDevicetreeOpt = None,
    with_serials: WithSerialsOpt = False,
) -> None:
    """Capture this node's devicetree and USB attributes into a bundle for 'show --replay'."""
    done = api.capture(directory, sysfs, devicetree, with_serials)
    for notice in done.notices:
        say(notice)
    source = done.devicetree_from or "none"
    say(f"captured {done.directory} (devicetree from {source}, {done.usb_devices} USB devices, {done.size} bytes)")


@app.command(
    cls=Command,
    epilog=_examples(
        "nfd-hooks check /etc/kubernetes/node-feature-discovery/features.d",
        "nfd-hooks check --strict my-features",
    )
)
def check(files: CheckFilesArg, strict: StrictOpt = False) -> None:
    """Report what NFD's local source would drop, skip or misread in features files.

    A directory stands for the files NFD reads in it. One line per problem on stdout, FILE:LINE: message (FILE: message for the
    whole file). Exit codes: 0 nothing wrong (warnings allowed unless --strict),
    1 problems found, 2 a file could not be read or is not a features file at all
    (binary, or prose: one line on stderr).
    """
    from nfd_hooks.check import check_paths  # lazy: only this command needs it

    result = check_paths(files)
    _out("".join(one_line(problem.format(path)) + "\n" for path, problem in result.problems))  # names and contents come from the node
    for message in result.unreadable:
        say(f"error: {message}")
    raise typer.Exit(result.exit_code(strict))


@app.command(
    cls=Command,
    epilog=_examples(
        "nfd-hooks test node-bundles/               # every bundle in it",
        "nfd-hooks test --subset rpi4-gw jetson-gw",
        "nfd-hooks test --usb node-bundles/         # the hotplug overlay's hook",
    ),
)
@replay_command
def test(
    options: api.Options, bundles: BundlesArg, subset: SubsetOpt = False, skip_without_expected: SkipWithoutExpectedOpt = False
) -> None:
    """Replay bundles as the deployed hook scans, and compare each with its expected.features.

    Options as the shipped one-shot hook's (--no-usb; --usb for the hotplug overlay's); add the
    flags your hook runs with. Both files are compared as NFD reads them. One line per bundle
    on stdout, then each difference once: - expected but not given, + given but not expected,
    ~ expected -> given, (raw) for a raw feature. Exit codes: 0 every bundle matches, 1 one
    differs or has no expected.features, 2 no bundle found, one that cannot be replayed, or a bad flag.
    """
    from nfd_hooks import nodes  # lazy: only this command needs it

    found, notices = nodes.find_bundles(bundles)
    for notice in notices:
        say(notice)
    tally = nodes.Tally()
    for line in nodes.test_bundles(found, options, subset, skip_without_expected, tally):
        _line(one_line(line))
    say(tally.summary(options))
    raise typer.Exit(tally.exit_code())


def _line(text: str) -> None:
    """One line on stdout at once: a CI log interleaves it with stderr in order."""
    _out(text + "\n")


class ReaderGone(Exception):
    """stdout's reader stopped reading (EPIPE: ``show | head``). Not an OSError,
    which click would turn into exit 1: ``run`` ends quietly, exit 0."""


def _out(text: Union[str, bytes]) -> None:
    """``text`` on stdout, flushed: a stdout that cannot take it (a full disk, EIO,
    a closed descriptor) is an OutputError, one line and exit 1, never a traceback; EPIPE is ReaderGone."""
    if not text:
        return
    if sys.stdout is None:  # started with no descriptor 1 at all (>&-)
        raise OutputError("cannot write to standard output: it is closed")
    try:
        if isinstance(text, bytes):
            sys.stdout.buffer.write(text)
        else:
            sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        raise ReaderGone() from None
    except (OSError, ValueError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise OutputError(f"cannot write to standard output: {reason}") from None


@app.command(
    cls=Command,
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
    usb: UsbOpt = True,
    usb_backend: UsbBackendOpt = "auto",
    catalog: CatalogOpt = None,
    dev: DevOpt = Path("/dev"),
    output_format: DevicesFormatOpt = "table",
) -> None:
    """List the accelerators as allocation sees them: one device per physical accelerator,
    named by where it is attached, with its ids, driver, readiness and device nodes."""
    from nfd_hooks.allocation.commands import print_devices  # lazy: allocation is its own commands' only

    options = scan_options(ctx, sysfs=sysfs, devicetree=devicetree, node=node, include_disabled=include_disabled,
                           no_devicetree=no_devicetree, usb=usb, usb_backend=usb_backend, catalog=catalog, dev=dev,
                           replay=replay)
    print_devices(options, output_format)


@app.command(
    "dra-driver",
    cls=Command,
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
    cls=Command,
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


def _print_notices(result: api.Scan) -> None:
    for notice in result.notices:
        say(notice)


def _print_diff(difference: api.Diff, features_dir: Path, name: str, quiet: bool = False) -> None:
    """What a write changes (``api.diff``): one line each on stdout; the summary on
    stderr (unless ``quiet``)."""
    from nfd_hooks.diff import summary

    changes, found, notices = difference
    _out("".join(one_line(change.format()) + "\n" for change in changes))
    if not quiet:
        for notice in notices:
            say(notice)
        say(summary(features_dir, name, found, changes))


def run(argv: Optional[List[str]] = None) -> int:
    """Run the CLI and return its exit code; errors become one line on stderr."""
    if argv is None:
        argv = sys.argv[1:]
    try:
        code = narrowed(app, argv)(args=argv or ["--help"], prog_name="nfd-hooks", standalone_mode=False)
    except NfdHooksError as error:
        return _fail(str(error), error.exit_code)
    except typer.Exit as done:
        return done.exit_code
    except typer.Abort:
        return _fail("aborted", 1)
    except UsageProblem as error:
        return _fail(usage_message(error), InputError.exit_code)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except (ReaderGone, BrokenPipeError):  # the reader of our stdout stopped reading (show | head, --help | head): done
        return 0
    except OSError as error:  # click's own output (--help) to a stdout that cannot take it
        return _fail(f"cannot write: {error.strerror or error}", OutputError.exit_code)
    return code if isinstance(code, int) else 0


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
    say(f"error: {message}")
    return code
