"""The allocation commands behind the CLI: ``devices``, ``dra-driver``, ``device-plugin``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Dict, NoReturn, Tuple

from nfd_hooks import api
from nfd_hooks.allocation.inventory import Inventory
from nfd_hooks.errors import InputError, NfdHooksError, one_line

if TYPE_CHECKING:
    import asyncio

    from nfd_hooks.allocation import dra, kube


def log(message: str) -> None:
    print(f"nfd-hooks: {one_line(message)}", file=sys.stderr, flush=True)


def print_devices(options: api.Options, output_format: str) -> None:
    devices, notices = Inventory(options).scan()
    for notice in notices:
        log(notice)
    rows = [devices[name] for name in sorted(devices)]
    if output_format == "json":
        document = [dict(device._asdict(), allocatable=device.allocatable) for device in rows]
        sys.stdout.write(json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        return
    header = ("NAME", "ACCELERATOR", "ATTACHMENT", "IDS", "DRIVER", "READY", "NODES")
    table = [header] + [
        (d.name, d.accelerator, f"{d.bus} {d.attachment}", d.ids or "-", d.driver or "-",
         "yes" if d.ready else "no", " ".join(f"/dev/{n}" for n in d.device_nodes) or "-")
        for d in rows
    ]
    widths = [max(len(one_line(row[column])) for row in table) for column in range(len(header))]
    for row in table:
        print("  ".join(one_line(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
    if not rows:
        log("no accelerator of the catalog on this node")


def _node_options(values: Dict[str, Any]) -> api.Options:
    return api.Options(sysfs=values["sysfs"], dev=values["dev"], catalogs=tuple(values["catalog"] or ()))


def _check_seconds(values: Dict[str, Any], *names: str) -> None:
    for name in names:
        if not values[name] >= 0 or values[name] != values[name] or values[name] == float("inf"):
            raise InputError(f"--{name.replace('_', '-')} must be a finite number of seconds, not {values[name]}")


def _serve(main: Callable[["asyncio.Event"], Awaitable[None]]) -> None:
    """Run ``main(stop)`` until SIGTERM or SIGINT set ``stop``; return normally (exit 0)."""
    import asyncio
    import signal

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(number, stop.set)
        await main(stop)

    asyncio.run(runner())


def run_dra_driver(values: Dict[str, Any]) -> None:
    """``nfd-hooks dra-driver``: check the options, then become the daemon (``_become_daemon``)."""
    _dra_config(values)
    _become_daemon("dra-driver", values)


def run_device_plugin(values: Dict[str, Any]) -> None:
    """``nfd-hooks device-plugin``: check the options, then become the daemon."""
    _check_device_plugin(values)
    _become_daemon("device-plugin", values)


def _dra_config(values: Dict[str, Any]) -> Tuple["dra.Config", "kube.Client"]:
    from nfd_hooks.allocation import dra, kube
    from nfd_hooks.allocation.slices import slice_name

    _check_seconds(values, "grace", "taint_window", "resync")
    if values["resync"] < 1:
        raise InputError("--resync must be at least 1 second")
    node = values["node_name"]
    if not node:
        raise InputError("no node name: pass --node-name or set NODE_NAME (the DaemonSet sets it from spec.nodeName)")
    if not slice_name(node, values["driver_name"]):
        raise InputError(f"--node-name {node!r} makes no ResourceSlice name")
    try:
        client = kube.Client(values["server"], values["token_file"], values["ca_file"])
    except (kube.ApiError, OSError) as error:
        raise InputError(f"cannot reach the API server: {error}") from None
    Inventory(_node_options(values)).check()
    config = dra.Config(
        driver=values["driver_name"], node=node, registry_dir=values["registry_dir"], plugins_dir=values["plugins_dir"],
        cdi_dir=values["cdi_dir"], host_dev=values["host_dev"], grace=values["grace"], taint_window=values["taint_window"],
        resync=values["resync"], uevents=not values["no_uevents"],
    )
    return config, client


def _check_device_plugin(values: Dict[str, Any]) -> None:
    _check_seconds(values, "resync")
    if values["resync"] < 1:
        raise InputError("--resync must be at least 1 second")
    plugin_dir: Path = values["plugin_dir"]
    if not plugin_dir.is_dir():
        raise InputError(f"--plugin-dir {plugin_dir}: no such directory (is this a kubelet's node?)")
    Inventory(_node_options(values)).check()


# The option values that are paths (JSON carries them as strings), and the catalog's list of them.
_PATHS = ("sysfs", "dev", "host_dev", "cdi_dir", "plugins_dir", "registry_dir", "token_file", "ca_file", "plugin_dir")
_BOOT = ("import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
         "from nfd_hooks.allocation.commands import daemon; daemon(sys.argv[2], sys.argv[3])")


def _become_daemon(command: str, values: Dict[str, Any]) -> None:
    """Replace this process by a fresh interpreter that serves ``command`` with the checked
    ``values``: the same pid, stdout and stderr, and module path, without the CLI layer.

    typer and click stay resident in a process that has imported them, against the
    driver's 30 MiB budget (bench/allocation_idle.py); a daemon needs them only to
    parse its options, which typer has done when this runs.
    """
    plain = {key: (str(value) if isinstance(value, Path) else value) for key, value in values.items()}
    plain["catalog"] = [str(path) for path in values.get("catalog") or ()]
    if not sys.executable:  # an embedded interpreter: serve here, CLI layer and all
        daemon(command, json.dumps(plain))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-c", _BOOT, json.dumps(sys.path), command, json.dumps(plain)])


def daemon(command: str, encoded: str) -> NoReturn:
    """Serve ``command`` with the options ``encoded`` by ``_become_daemon``; exit with its code."""
    values: Dict[str, Any] = json.loads(encoded)
    for key in _PATHS:
        if values.get(key) is not None:
            values[key] = Path(values[key])
    values["catalog"] = [Path(path) for path in values.get("catalog") or ()]
    try:
        if command == "dra-driver":
            _serve_dra_driver(values)
        else:
            _serve_device_plugin(values)
    except NfdHooksError as error:
        print(f"nfd-hooks: error: {one_line(str(error))}", file=sys.stderr, flush=True)
        sys.exit(error.exit_code)
    sys.exit(0)


def _serve_dra_driver(values: Dict[str, Any]) -> None:
    from nfd_hooks.allocation import dra

    config, client = _dra_config(values)
    driver = dra.Driver(config, client, Inventory(_node_options(values)), log)
    log(f"DRA driver {config.driver} on node {config.node}: registration {config.registration}, plugin {config.endpoint}")
    try:
        _serve(lambda stop: dra.run(driver, stop))
    except OSError as error:
        raise NfdHooksError(f"cannot serve: {error.strerror or error}") from None


def _serve_device_plugin(values: Dict[str, Any]) -> None:
    from nfd_hooks.allocation.deviceplugin import DevicePlugins

    _check_device_plugin(values)
    plugins = DevicePlugins(Inventory(_node_options(values)), values["plugin_dir"], values["resource_prefix"], values["host_dev"], log,
                            resync=values["resync"], uevents=not values["no_uevents"])
    log(f"device plugin: resources {values['resource_prefix']}/<id>, kubelet {plugins.kubelet_socket}")
    try:
        _serve(plugins.run)
    except OSError as error:
        raise NfdHooksError(f"cannot serve: {error.strerror or error}") from None
