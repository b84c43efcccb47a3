"""``nfd-hooks device-plugin``: the same devices through the kubelet's device plugin API.

For clusters without DRA, or whose runtime has no CDI (containerd 1.6, still
common on edge distributions): deviceplugin v1beta1, one plugin per catalog id,
the extended resource ``<prefix>/<id>`` (``accelerator.nfd-hooks.io/edgetpu: 1``
in a container's limits).

- Register: on the kubelet's ``kubelet.sock``, once per id the node has had;
  again whenever our socket disappears (the kubelet deletes every socket in
  its device-plugins directory when it starts) or ``kubelet.sock`` is a new file.
- ListAndWatch: every device of the id seen since start, named as in the
  device model (``usb-2-1``), ``Healthy`` while allocatable, ``Unhealthy`` when
  unplugged or not ready; a new list on every change.
- Allocate: the device's nodes as DeviceSpecs (host path, container path, rw):
  the runtime creates exactly those in the container. No CDI needed.

What this API cannot do (docs/allocation.md): a device going Unhealthy only
lowers the node's allocatable count; running pods keep running (nothing evicts
them), and the kubelet keeps a container's Allocate answer, so a container
restarted after its device re-enumerated gets the old node number.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from grpclib.client import Channel, UnaryUnaryMethod
from grpclib.const import Status
from grpclib.exceptions import GRPCError
from grpclib.server import Stream

from nfd_hooks.allocation import events, rpc, wire
from nfd_hooks.allocation.inventory import Inventory
from nfd_hooks.sources.accelerators.devices import Device

Log = Callable[[str], None]

HEALTHY, UNHEALTHY = "Healthy", "Unhealthy"  # deviceplugin/v1beta1/constants.go
VERSION = "v1beta1"
SOCKET_CHECK = 5.0
SETTLE = 0.3


@dataclass
class Plugin:
    """One extended resource: its devices and the ListAndWatch streams watching them."""

    ident: str
    resource: str
    socket: Path
    log: Log
    host_dev: Path
    devices: Dict[str, Device] = field(default_factory=dict)  # every device seen, as last seen
    healthy: Dict[str, bool] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    server: Any = None
    inode: Optional[int] = None  # of the socket we bound, so that we remove only our own
    registered: bool = False

    def service(self) -> rpc.Service:
        service = rpc.Service(self.log)
        service.unary(wire.DEVICE_PLUGIN + "GetDevicePluginOptions", wire.Empty, wire.DevicePluginOptions, self.options)
        service.unary_stream(wire.DEVICE_PLUGIN + "ListAndWatch", wire.Empty, wire.ListAndWatchResponse, self.list_and_watch)
        service.unary(wire.DEVICE_PLUGIN + "Allocate", wire.AllocateRequest, wire.AllocateResponse, self.allocate)
        return service

    async def options(self, _: wire.Empty) -> wire.DevicePluginOptions:
        return wire.DevicePluginOptions()

    def listing(self) -> wire.ListAndWatchResponse:
        return wire.ListAndWatchResponse(devices=[
            wire.PluginDevice(ID=name, health=HEALTHY if self.healthy.get(name) else UNHEALTHY)
            for name in sorted(self.devices)
        ])

    async def list_and_watch(self, _: wire.Empty, stream: Stream[Any, Any]) -> None:
        sent = None
        while True:
            listing = self.listing()
            if listing != sent:
                await stream.send_message(listing)
                sent = listing
            self.changed.clear()
            await self.changed.wait()

    async def allocate(self, request: wire.AllocateRequest) -> wire.AllocateResponse:
        answer = wire.AllocateResponse()
        for container in request.container_requests:
            specs = []
            for name in container.devices_ids:
                device = self.devices.get(name)
                if device is None or not self.healthy.get(name):
                    self.log(f"{self.resource}: Allocate of {name} refused: not on this node or not ready now")
                    raise GRPCError(Status.FAILED_PRECONDITION, f"device {name} is not on this node or not ready now")
                specs += [
                    wire.DeviceSpec(container_path=f"/dev/{node}", host_path=str(self.host_dev / node), permissions="rw")
                    for node in device.device_nodes
                ]
            answer.container_responses.append(wire.ContainerAllocateResponse(devices=specs))
            self.log(f"{self.resource}: allocated {', '.join(container.devices_ids)}")
        return answer

    def update(self, devices: Dict[str, Device]) -> None:
        mine = {name: d for name, d in devices.items() if d.accelerator == self.ident}
        healthy = {name: d.allocatable for name, d in mine.items()}
        health = {**{name: False for name in self.devices}, **healthy}
        self.devices.update(mine)
        if health != self.healthy:
            for name, ok in sorted(health.items()):
                if self.healthy.get(name) != ok:
                    self.log(f"{self.resource}: {name} {HEALTHY if ok else UNHEALTHY}")
            self.healthy = health
            self.changed.set()


@dataclass
class DevicePlugins:
    inventory: Inventory
    plugin_dir: Path
    prefix: str
    host_dev: Path
    log: Log
    resync: float = 60.0
    uevents: bool = True
    plugins: Dict[str, Plugin] = field(default_factory=dict)
    kubelet_inode: Optional[int] = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def kubelet_socket(self) -> Path:
        return self.plugin_dir / "kubelet.sock"

    def scan(self) -> Dict[str, Device]:
        try:
            devices, _ = self.inventory.scan()
        except Exception as error:  # any failure: a torn sysfs read must not stop the plugin
            self.log(f"scan failed: {type(error).__name__}: {error}")
            return {}
        return devices

    async def rescan(self) -> None:
        """Scan, make a plugin for each new catalog id, and update every plugin's devices."""
        devices = await asyncio.get_running_loop().run_in_executor(None, self.scan)
        for ident in sorted({d.accelerator for d in devices.values()} - set(self.plugins)):
            name = f"nfd-hooks-{ident}.sock"
            self.plugins[ident] = Plugin(ident, f"{self.prefix}/{ident}", self.plugin_dir / name, self.log, self.host_dev)
        for plugin in self.plugins.values():
            plugin.update(devices)

    async def check_sockets(self) -> None:
        """Serve and register each plugin whose socket is new or gone, or all after a kubelet restart."""
        kubelet = rpc.inode(self.kubelet_socket)
        restarted = kubelet is not None and kubelet != self.kubelet_inode
        for plugin in self.plugins.values():
            if (plugin.server is None or not plugin.registered or restarted
                    or not rpc.socket_present(plugin.socket, plugin.inode)):
                if plugin.server is not None:
                    if plugin.registered:  # a failed registration has already said why
                        self.log(f"{plugin.resource}: {'the kubelet restarted' if restarted else 'our socket vanished'}: registering again")
                    await rpc.close(plugin.server)
                plugin.server = await rpc.serve([plugin.service()], plugin.socket)
                plugin.inode = rpc.inode(plugin.socket)
                plugin.registered = await self.register(plugin)  # if not, again at the next check
        if kubelet is not None:
            self.kubelet_inode = kubelet

    async def register(self, plugin: Plugin) -> bool:
        channel = Channel(path=str(self.kubelet_socket), codec=rpc.Codec())
        try:
            method = UnaryUnaryMethod(channel, wire.DEVICE_PLUGIN_REGISTRATION + "Register", wire.RegisterRequest, wire.Empty)
            await method(wire.RegisterRequest(version=VERSION, endpoint=plugin.socket.name, resource_name=plugin.resource,
                                              options=wire.DevicePluginOptions()), timeout=10)
        except (GRPCError, OSError, asyncio.TimeoutError) as error:
            self.log(f"{plugin.resource}: cannot register with the kubelet at {self.kubelet_socket}: {error}")
            return False
        finally:
            channel.close()
        self.log(f"{plugin.resource}: registered with the kubelet ({len(plugin.devices)} device(s))")
        return True

    async def run(self, stop: asyncio.Event) -> None:
        self.wake = asyncio.Event()  # of this loop (Python 3.9 binds an Event to the loop current when it is made)
        monitor = events.monitor(self.inventory.options, self.wake, self.log, self.resync) if self.uevents else None
        loop = asyncio.get_running_loop()
        due = 0.0  # when the next rescan is due without a uevent (loop time)
        try:
            while not stop.is_set():
                if self.wake.is_set() or loop.time() >= due:
                    self.wake.clear()
                    await self.rescan()
                    due = loop.time() + self.resync
                await self.check_sockets()
                waiters = [asyncio.ensure_future(self.wake.wait()), asyncio.ensure_future(stop.wait())]
                timeout = max(0.0, min(due - loop.time(), SOCKET_CHECK))
                _, pending = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                for waiter in pending:
                    waiter.cancel()
                if self.wake.is_set() and not stop.is_set():
                    await asyncio.sleep(SETTLE)
        finally:
            events.stop(monitor)
            for plugin in self.plugins.values():
                await rpc.close(plugin.server)
                if plugin.inode is not None and rpc.socket_present(plugin.socket, plugin.inode):
                    os.unlink(plugin.socket)
