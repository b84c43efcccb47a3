"""``nfd-hooks dra-driver``: a Dynamic Resource Allocation driver for the node's accelerators.

One process per node (a DaemonSet pod) that

- publishes the node's allocatable devices as one ResourceSlice
  (resource.k8s.io/v1), kept current from the kernel's device uevents as the
  ``watch`` command gets them, through ``slices.Lifecycle`` (grace, taint, drop);
- registers with the kubelet (pluginregistration v1, a socket in
  ``plugins_registry``) and serves dra v1 NodePrepareResources and
  NodeUnprepareResources on its own socket: a claim's devices get a CDI spec
  each, holding exactly their device nodes, checkpointed (``prepared``).

Devices that are present but not ready are not published. A ready device is
one a container can use through the nodes it is given at start: a Coral USB
Accelerator before its firmware is loaded is ``1a6e:089a``, and loading the
firmware makes it leave the bus and come back as ``18d1:9302`` with a new
device node (on a Raspberry Pi 4 even on another bus, ``1-1.2`` then ``2-1``),
which a container given the first node can never open. Such a device would be
allocated, prepared, and useless; withheld, it is offered once its firmware is
loaded (docs/allocation.md, "Readiness: present-but-not-ready devices are withheld").

The kubelet wipes a node's ResourceSlices when it starts and when a driver is
gone for 30 s (pkg/kubelet/cm/dra/plugin/dra_plugin_manager.go), so the slice
is checked after every registration and every ``resync`` seconds, and
written again when it is missing or differs.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from nfd_hooks.allocation import cdi, events, kube, rpc, slices, wire
from nfd_hooks.allocation.inventory import Inventory
from nfd_hooks.allocation.prepared import ClaimError, Prepared
from nfd_hooks.errors import one_line
from nfd_hooks.sources.accelerators.devices import Device

Log = Callable[[str], None]

REGISTRY_DIR = Path("/var/lib/kubelet/plugins_registry")
PLUGINS_DIR = Path("/var/lib/kubelet/plugins")
CDI_DIR = Path("/var/run/cdi")
SERVICE = "v1.DRAPlugin"  # k8s.io/kubelet pkg/apis/dra/v1/types.go DRAPluginService
RETRY = 5.0  # seconds before an API call that failed is tried again
CHECK_AFTER_REGISTRATION = (1.0, 3.0, 10.0, 30.0)  # the kubelet's start-up wipe races our first write
CLAIM_CHECK = 300.0  # seconds between checks that held claims still exist


@dataclass
class Config:
    driver: str
    node: str
    registry_dir: Path = REGISTRY_DIR
    plugins_dir: Path = PLUGINS_DIR
    cdi_dir: Path = CDI_DIR
    host_dev: Path = Path("/dev")
    grace: float = 5.0
    taint_window: float = 30.0
    resync: float = 60.0  # seconds between slice checks and rescans without a uevent
    uevents: bool = True

    @property
    def plugin_dir(self) -> Path:
        return self.plugins_dir / self.driver

    @property
    def endpoint(self) -> Path:
        return self.plugin_dir / "dra.sock"

    @property
    def registration(self) -> Path:
        return self.registry_dir / f"{self.driver}-reg.sock"

    @property
    def checkpoint(self) -> Path:
        return self.plugin_dir / "checkpoint.json"


@dataclass
class Driver:
    config: Config
    client: kube.Client
    inventory: Inventory
    log: Log
    prepared: Prepared = field(init=False)
    devices: Dict[str, Device] = field(default_factory=dict)  # the last scan, by name
    lifecycle: slices.Lifecycle = field(init=False)
    taints_kept: Optional[bool] = None
    generation: int = 0
    published: Optional[Dict[str, Any]] = None  # the slice as the API server last answered
    node_uid: Optional[str] = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    checks: List[float] = field(default_factory=list)  # monotonic times to check the slice
    next_claim_check: float = 0.0
    registered: bool = False
    _failure: Optional[str] = None
    _notices: List[str] = field(default_factory=list)
    # Guards devices, lifecycle and prepared: gRPC handlers and the loop's step
    # run in executor threads; API calls are made without it.
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        log = self.log
        self.log = lambda message: log(one_line(message))  # claims' names and uids are anyone's text
        dev = self.inventory.options.dev or Path("/dev")
        self.prepared = Prepared(self.config.checkpoint, self.config.cdi_dir, dev, self.config.host_dev, self.log)
        self.lifecycle = slices.Lifecycle(self.config.grace, self.config.taint_window)

    # -- gRPC ------------------------------------------------------------------------------
    def services(self) -> List[rpc.Service]:
        registration = rpc.Service(self.log)
        registration.unary(wire.REGISTRATION + "GetInfo", wire.InfoRequest, wire.PluginInfo, self.get_info)
        registration.unary(wire.REGISTRATION + "NotifyRegistrationStatus", wire.RegistrationStatus,
                           wire.RegistrationStatusResponse, self.notify)
        dra = rpc.Service(self.log)
        dra.unary(wire.DRA + "NodePrepareResources", wire.NodePrepareResourcesRequest,
                  wire.NodePrepareResourcesResponse, self.prepare)
        dra.unary(wire.DRA + "NodeUnprepareResources", wire.NodeUnprepareResourcesRequest,
                  wire.NodeUnprepareResourcesResponse, self.unprepare)
        return [registration, dra]

    async def get_info(self, _: wire.InfoRequest) -> wire.PluginInfo:
        return wire.PluginInfo(type="DRAPlugin", name=self.config.driver, endpoint=str(self.config.endpoint),
                               supported_versions=[SERVICE])

    async def notify(self, status: wire.RegistrationStatus) -> wire.RegistrationStatusResponse:
        self.registered = status.plugin_registered
        if status.plugin_registered:
            self.log("registered with the kubelet")
            now = time.monotonic()
            self.checks += [now + delay for delay in CHECK_AFTER_REGISTRATION]
            self.wake.set()
        else:
            self.log(f"the kubelet refused the registration: {status.error}")
        return wire.RegistrationStatusResponse()

    async def prepare(self, request: wire.NodePrepareResourcesRequest) -> wire.NodePrepareResourcesResponse:
        answer = wire.NodePrepareResourcesResponse()
        for claim in request.claims:
            try:
                entries = await self._prepare_claim(claim)
                answer.claims[claim.uid] = wire.NodePrepareResourceResponse(devices=[
                    wire.Device(request_names=[e.request], pool_name=self.config.node, device_name=e.device,
                                cdi_device_ids=[cdi.qualified(e.claim_uid, e.device)])
                    for e in entries
                ])
                self.log(f"prepared claim {claim.namespace}/{claim.name} ({claim.uid}): {', '.join(e.device for e in entries)}")
            except ClaimError as error:
                self.log(f"claim {claim.namespace}/{claim.name} ({claim.uid}) not prepared: {error}")
                answer.claims[claim.uid] = wire.NodePrepareResourceResponse(error=one_line(str(error)))
        return answer

    async def _prepare_claim(self, claim: wire.Claim) -> List[cdi.Entry]:
        if not (claim.uid and claim.namespace and claim.name):
            raise ClaimError("malformed claim: namespace, name and uid are all required")
        loop = asyncio.get_running_loop()
        with self.lock:
            if claim.uid in self.prepared.claims:  # again, after a kubelet restart or reboot
                return self.prepared.prepare(claim.uid, claim.namespace, claim.name, [], self.devices)
        try:
            resource = await loop.run_in_executor(None, self.client.get_claim, claim.namespace, claim.name)
        except kube.ApiError as error:
            raise ClaimError(f"cannot read the ResourceClaim: {error}") from None
        results = allocated(resource, claim.uid, self.config.driver, self.config.node)
        entries = await loop.run_in_executor(None, self._prepare_locked, claim, results)
        self.wake.set()
        return entries

    def _prepare_locked(self, claim: wire.Claim, results: List[Tuple[str, str]]) -> List[cdi.Entry]:
        if any(name not in self.devices or not self.devices[name].allocatable for _, name in results):
            self.rescan()  # a uevent may not have been handled yet
        with self.lock:
            return self.prepared.prepare(claim.uid, claim.namespace, claim.name, results, self.devices)

    async def unprepare(self, request: wire.NodeUnprepareResourcesRequest) -> wire.NodeUnprepareResourcesResponse:
        answer = wire.NodeUnprepareResourcesResponse()
        for claim in request.claims:
            try:
                with self.lock:
                    self.prepared.unprepare(claim.uid)
                answer.claims[claim.uid] = wire.NodeUnprepareResourceResponse()
                self.log(f"unprepared claim {claim.namespace}/{claim.name} ({claim.uid})")
            except ClaimError as error:
                self.log(f"claim {claim.namespace}/{claim.name} ({claim.uid}) not unprepared: {error}")
                answer.claims[claim.uid] = wire.NodeUnprepareResourceResponse(error=one_line(str(error)))
        self.wake.set()  # a tainted device may now leave the slice
        return answer

    # -- devices and the slice ---------------------------------------------------------------
    def rescan(self) -> None:
        try:
            devices, notices = self.inventory.scan()
        except Exception as error:  # any failure: a torn sysfs read must not stop the driver
            self.log(f"scan failed, keeping the last one: {type(error).__name__}: {error}")
            return
        if notices != self._notices:
            for notice in notices:
                self.log(notice)
            self._notices = notices
        with self.lock:
            self.devices = devices
            self.lifecycle.seen(time.monotonic(), {n: d for n, d in devices.items() if d.allocatable})
            changed = self.prepared.refresh(devices)
        for name in changed:
            self.log(f"device {name} re-enumerated: its CDI spec now names {', '.join(devices[name].device_nodes)}")

    def desired(self, now: float) -> Dict[str, Any]:
        with self.lock:
            held = set(self.prepared.held())
            offered = self.lifecycle.offer(now, held, self.taints_kept)
            return slices.body(self.config.driver, self.config.node, self.node_uid, self.generation,
                               dict(self.lifecycle.known), offered)

    def publish(self, verify: bool = False) -> None:
        """Write the slice if its devices changed (or, ``verify``, if the API server's differs)."""
        now = time.monotonic()
        wanted = self.desired(now)
        if self.node_uid is None:
            self.node_uid = self.client.get_node(self.config.node)["metadata"]["uid"]
            wanted = self.desired(now)
        current = self.published
        if verify or current is None:
            current = self.client.get_slice(wanted["metadata"]["name"])
            if current is not None:
                stored = _field(current, "spec", "pool", "generation")
                self.generation = max(self.generation, stored if isinstance(stored, int) else 0)
        if current is not None and _same(current, wanted):
            self.published = current
            return
        tainted = {d["name"] for d in wanted["spec"]["devices"] if d.get("taints")}
        self.generation += 1
        wanted["spec"]["pool"]["generation"] = self.generation
        if current is None:
            answer = self.client.create_slice(wanted)
        else:
            wanted["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            try:
                answer = self.client.update_slice(wanted)
            except kube.ApiError as error:
                if error.status not in (404, 409):
                    raise
                self.published = None  # re-read and try again next time
                raise
        self.published = answer
        kept = slices.taints_kept(tainted, answer)
        if kept is False and self.taints_kept is not False:
            self.log("the API server dropped the device taints (DRADeviceTaints off): an unplugged device "
                     "leaves the slice at once and pods using it are not evicted")
        if kept is not None:
            self.taints_kept = kept
        if kept is False:
            self.publish()  # without the taint: drop the devices now
            return
        # The API server leaves out an empty list (omitempty): no "devices" at all.
        names = [d["name"] + (" (tainted NoExecute)" if d.get("taints") else "") for d in _field(answer, "spec", "devices") or []]
        self.log(f"published ResourceSlice {answer['metadata']['name']} generation {self.generation}: "
                 f"{', '.join(names) or 'no devices'}")

    def check_claims(self) -> None:
        """Forget claims the API server no longer has: their unprepare never reached us."""
        with self.lock:
            held = list(self.prepared.claims.items())
        for uid, entries in held:
            entry = entries[0]
            try:
                claim = self.client.get_claim(entry.namespace, entry.claim)
            except kube.ApiError as error:
                if error.status != 404:
                    continue
                claim = None
            if _field(claim, "metadata", "uid") != uid:
                self.log(f"claim {entry.namespace}/{entry.claim} ({uid}) no longer exists: releasing {', '.join(e.device for e in entries)}")
                with self.lock:
                    self.prepared.forget(uid)

    def step(self) -> float:
        """One pass of the loop after a wake: rescan, publish, due checks; seconds until the next."""
        self.rescan()
        now = time.monotonic()
        verify = any(at <= now for at in self.checks)
        self.checks = [at for at in self.checks if at > now]
        try:
            if now >= self.next_claim_check:
                self.check_claims()
                self.next_claim_check = now + CLAIM_CHECK
            self.publish(verify=verify)
            if self._failure is not None:
                self.log("API server reachable again")
            self._failure = None
        except kube.ApiError as error:
            if str(error) != self._failure:
                self.log(f"cannot publish the ResourceSlice, retrying every {RETRY:g} s: {error}")
            self._failure = str(error)
            return RETRY
        delays = [self.config.resync] + [at - now for at in self.checks]
        with self.lock:
            change = self.lifecycle.next_change(now, set(self.prepared.held()))
        if change is not None:
            delays.append(change + 0.05)
        return max(0.05, min(delays))


def allocated(claim: Any, uid: str, driver: str, pool: str) -> List[Tuple[str, str]]:
    """(request, device) of each of the claim's allocation results for ``driver``; ClaimError
    when the object is not the claim the kubelet named, or is not allocated here."""
    if _field(claim, "metadata", "uid") != uid:
        raise ClaimError(f"the ResourceClaim has another uid than {uid} (deleted and created again?)")
    results = _field(claim, "status", "allocation", "devices", "results")
    mine = []
    for result in results if isinstance(results, list) else []:
        if _field(result, "driver") != driver:
            continue
        request, device = _field(result, "request"), _field(result, "device")
        if _field(result, "pool") != pool:
            raise ClaimError(f"device {device} was allocated from pool {_field(result, 'pool')}, not this node's")
        if not (isinstance(request, str) and isinstance(device, str) and device):
            raise ClaimError(f"an allocation result of driver {driver} names no device")
        mine.append((request, device))
    if not mine:
        raise ClaimError(f"the ResourceClaim has no device of driver {driver}")
    return mine


def _field(value: Any, *path: str) -> Any:
    """``value[path[0]][path[1]]...``, or None where a step is missing or not an object."""
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _same(current: Dict[str, Any], wanted: Dict[str, Any]) -> bool:
    """The slice on the server offers what we want (timeAdded and defaults aside)."""
    def devices(body: Dict[str, Any]) -> List[Any]:
        return [
            (d["name"], d.get("attributes"), [(t["key"], t.get("value"), t["effect"]) for t in d.get("taints") or []])
            for d in body["spec"].get("devices") or []
        ]
    spec, other = current["spec"], wanted["spec"]
    return (devices(current) == devices(wanted) and spec.get("nodeName") == other["nodeName"]
            and spec.get("driver") == other["driver"] and spec["pool"]["name"] == other["pool"]["name"])


def make_directories(config: Config, log: Log) -> None:
    """The kubelet's directories for our sockets and checkpoint (OSError: nothing can be
    served), and the CDI directory, whose failure fails claims, not the driver."""
    for directory in (config.plugin_dir, config.registry_dir):
        directory.mkdir(parents=True, exist_ok=True)
    try:
        config.cdi_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        log(f"cannot create {config.cdi_dir}: {error.strerror or error}; claims fail until it can be written")


async def run(driver: Driver, stop: asyncio.Event) -> None:
    """Serve, publish and follow the devices until ``stop`` is set."""
    config = driver.config
    make_directories(config, driver.log)
    driver.prepared.load()
    driver.wake = asyncio.Event()
    monitor = events.monitor(driver.inventory.options, driver.wake, driver.log, config.resync) if config.uevents else None
    servers: Dict[Path, Any] = {}
    inodes: Dict[Path, Optional[int]] = {}
    registration, dra = driver.services()
    loop = asyncio.get_running_loop()
    due = 0.0  # when the next step is due without a wake (loop time)
    try:
        while not stop.is_set():
            for path, service in ((config.endpoint, dra), (config.registration, registration)):
                if path not in servers or not rpc.socket_present(path, inodes[path]):
                    if path in servers:
                        driver.log(f"socket {path} vanished: serving it again")
                        await rpc.close(servers[path])
                    servers[path] = await rpc.serve([service], path)
                    inodes[path] = rpc.inode(path)
            if driver.wake.is_set() or loop.time() >= due:
                driver.wake.clear()  # before the step: a wake during it means another
                try:
                    delay = await loop.run_in_executor(None, driver.step)
                except Exception as error:  # any failure: a bug, one line; the driver goes on serving its claims
                    driver.log(f"internal error in the driver's loop, retrying in {RETRY:g} s: {type(error).__name__}: {error}")
                    delay = RETRY
                due = loop.time() + delay
            # Idle, the loop wakes for a uevent, a claim, a due step, or to look at its sockets.
            waiters = [asyncio.ensure_future(driver.wake.wait()), asyncio.ensure_future(stop.wait())]
            timeout = max(0.0, min(due - loop.time(), SOCKET_CHECK))
            _, pending = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            for waiter in pending:
                waiter.cancel()
            if driver.wake.is_set() and not stop.is_set():
                await asyncio.sleep(SETTLE)  # a device's interfaces arrive in several uevents
    finally:
        events.stop(monitor)
        for path, server in servers.items():
            await rpc.close(server)
            if rpc.socket_present(path, inodes[path]):
                path.unlink()


SETTLE = 0.3
SOCKET_CHECK = 10.0  # seconds between checks that our sockets are still there
