"""The classic device plugin, driven by real gRPC (grpcio, compiled from the kubelet's own
deviceplugin v1beta1 .proto) over unix sockets: a fake kubelet's Registration service
receives Register, a client calls ListAndWatch and Allocate as the kubelet does, on
nodes made from the accelerator fixtures whose hardware the tests change."""

import asyncio
import threading
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from nfd_hooks import api
from nfd_hooks.allocation import deviceplugin
from nfd_hooks.allocation.deviceplugin import DevicePlugins
from nfd_hooks.allocation.inventory import Inventory
from tests.allocation.nodes import wait_until

DP = "deviceplugin/v1beta1/api.proto"
RESOURCE = "accelerator.nfd-hooks.io/edgetpu"
SOCKET = "nfd-hooks-edgetpu.sock"


class Kubelet:
    """The kubelet's side of device plugin registration: ``kubelet.sock`` serving Register."""

    def __init__(self, upstream, directory: Path) -> None:
        self.messages, stubs = upstream[DP]
        self.requests = []
        kubelet = self

        class Registration(stubs.RegistrationServicer):
            def Register(self, request, context):
                kubelet.requests.append(request)
                return kubelet.messages.Empty()

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        stubs.add_RegistrationServicer_to_server(Registration(), self.server)
        self.server.add_insecure_port(f"unix://{directory / 'kubelet.sock'}")
        self.server.start()

    def stop(self):
        self.server.stop(0).wait()


class Running:
    """The plugins serving in a thread of their own, as the process would."""

    def __init__(self, node, directory: Path) -> None:
        self.directory = directory
        self.log_lines = []
        inventory = Inventory(api.Options(sysfs=node.sys, dev=node.dev, use_devicetree=False))
        self.plugins = DevicePlugins(inventory, directory, "accelerator.nfd-hooks.io", node.host_dev,
                                     self.log_lines.append, resync=0.2, uevents=False)
        self.ready = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self.thread.start()
        assert self.ready.wait(10)

    async def _main(self):
        self.loop = asyncio.get_running_loop()
        self.stop = asyncio.Event()
        self.ready.set()
        await self.plugins.run(self.stop)

    def close(self):
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(15)
        assert not self.thread.is_alive()

    def log(self):
        return "\n".join(self.log_lines)


class Client:
    """What the kubelet does with a registered plugin: one ListAndWatch stream kept open,
    Allocate calls."""

    def __init__(self, upstream, socket: Path) -> None:
        self.messages, stubs = upstream[DP]
        self.channel = grpc.insecure_channel(f"unix://{socket}", options=[("grpc.use_local_subchannel_pool", 1)])
        self.stub = stubs.DevicePluginStub(self.channel)
        self.lists = []
        self.stream = self.stub.ListAndWatch(self.messages.Empty())
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        try:
            for answer in self.stream:
                self.lists.append(sorted((d.ID, d.health) for d in answer.devices))
        except grpc.RpcError:
            pass

    def latest(self):
        return self.lists[-1] if self.lists else None

    def allocate(self, *names):
        request = self.messages.AllocateRequest(container_requests=[self.messages.ContainerAllocateRequest(devices_ids=list(names))])
        answer = self.stub.Allocate(request, timeout=10)
        return [[(d.container_path, d.host_path, d.permissions) for d in c.devices] for c in answer.container_responses]

    def close(self):
        self.stream.cancel()
        self.channel.close()


@pytest.fixture
def kubelet(upstream, tmp_path):
    plugins = tmp_path / "device-plugins"
    plugins.mkdir()
    running = Kubelet(upstream, plugins)
    yield running
    running.stop()


@pytest.fixture
def serving(node, tmp_path, monkeypatch):
    monkeypatch.setattr(deviceplugin, "SOCKET_CHECK", 0.2)
    started = []

    def start():
        started.append(Running(node, tmp_path / "device-plugins"))
        return started[-1]

    yield start
    for running in started:
        if running.thread.is_alive():
            running.close()


def test_registers_an_extended_resource_per_catalog_id(node, kubelet, serving, upstream):
    node.become(node.state("coral-usb-after-firmware"))
    running = serving()
    request = wait_until("Register", lambda: kubelet.requests and kubelet.requests[0])
    assert (request.version, request.endpoint, request.resource_name) == ("v1beta1", SOCKET, RESOURCE)
    assert not request.options.pre_start_required and not request.options.get_preferred_allocation_available
    client = Client(upstream, running.directory / SOCKET)
    try:
        options = client.stub.GetDevicePluginOptions(client.messages.Empty(), timeout=10)
        assert not options.pre_start_required
        assert wait_until("a list", client.latest) == [("usb-2-1", "Healthy")]
    finally:
        client.close()
    running.close()
    assert not (running.directory / SOCKET).exists()  # its own socket removed at exit
    assert (running.directory / "kubelet.sock").exists()  # the kubelet's left alone


def test_allocate_answers_exactly_the_device_node(node, kubelet, serving, upstream):
    node.become(node.state("coral-usb-after-firmware"))
    running = serving()
    wait_until("Register", lambda: kubelet.requests)
    client = Client(upstream, running.directory / SOCKET)
    try:
        assert client.allocate("usb-2-1") == [[("/dev/bus/usb/002/002", str(node.host_dev / "bus/usb/002/002"), "rw")]]
        with pytest.raises(grpc.RpcError) as refused:
            client.allocate("usb-9-9")
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert refused.value.details() == "device usb-9-9 is not on this node or not ready now"
        assert "Allocate of usb-9-9 refused" in running.log()
    finally:
        client.close()


def test_unplug_makes_the_device_unhealthy_and_replug_on_the_port_makes_it_healthy_with_its_new_node(
        node, kubelet, serving, upstream):
    node.become(node.state("coral-usb-after-firmware"))
    running = serving()
    wait_until("Register", lambda: kubelet.requests)
    client = Client(upstream, running.directory / SOCKET)
    try:
        assert wait_until("Healthy", client.latest) == [("usb-2-1", "Healthy")]
        node.become(node.bare())
        wait_until("Unhealthy", lambda: client.latest() == [("usb-2-1", "Unhealthy")])
        with pytest.raises(grpc.RpcError) as refused:
            client.allocate("usb-2-1")  # the kubelet would not ask; if it does, no stale node
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        node.become(node.reenumerated("coral-usb-after-firmware", 9))
        wait_until("Healthy again", lambda: client.latest() == [("usb-2-1", "Healthy")])
        assert client.allocate("usb-2-1") == [[("/dev/bus/usb/002/009", str(node.host_dev / "bus/usb/002/009"), "rw")]]
        assert client.lists == [[("usb-2-1", "Healthy")], [("usb-2-1", "Unhealthy")], [("usb-2-1", "Healthy")]]
        assert len(kubelet.requests) == 1  # no new registration for a device change
    finally:
        client.close()


def test_a_present_but_not_ready_device_is_listed_unhealthy(node, kubelet, serving, upstream):
    node.become(node.state("coral-usb-before-firmware"))  # 1a6e:089a on 1-1.2, no firmware
    running = serving()
    wait_until("Register", lambda: kubelet.requests)
    client = Client(upstream, running.directory / SOCKET)
    try:
        assert wait_until("a list", client.latest) == [("usb-1-1-2", "Unhealthy")]
        node.become(node.state("coral-usb-after-firmware"))  # firmware loaded: back on 2-1
        wait_until("the ready name", lambda: client.latest() == [("usb-1-1-2", "Unhealthy"), ("usb-2-1", "Healthy")])
    finally:
        client.close()


def test_a_kubelet_restart_gets_a_new_registration(node, kubelet, serving, upstream, tmp_path):
    node.become(node.state("coral-usb-after-firmware"))
    running = serving()
    wait_until("Register", lambda: kubelet.requests)
    kubelet.stop()
    # What a starting kubelet does: remove every socket in its directory, serve kubelet.sock anew.
    for socket in running.directory.glob("*.sock"):
        socket.unlink()
    restarted = Kubelet(upstream, running.directory)
    try:
        request = wait_until("Register again", lambda: restarted.requests and restarted.requests[0])
        assert (request.resource_name, request.endpoint) == (RESOURCE, SOCKET)
        client = Client(upstream, running.directory / SOCKET)
        try:
            assert wait_until("a list", client.latest) == [("usb-2-1", "Healthy")]
        finally:
            client.close()
        assert "registering again" in running.log()
    finally:
        restarted.stop()


def test_no_kubelet_yet_is_retried_not_fatal(node, serving, upstream, tmp_path):
    directory = tmp_path / "device-plugins"
    directory.mkdir()
    node.become(node.state("coral-usb-after-firmware"))
    running = serving()
    wait_until("a failed registration", lambda: "cannot register" in running.log())
    kubelet = Kubelet(upstream, directory)
    try:
        assert wait_until("Register", lambda: kubelet.requests)[0].resource_name == RESOURCE
        assert running.thread.is_alive()
    finally:
        kubelet.stop()


def test_malformed_requests_are_refused_and_the_plugin_goes_on(node, kubelet, serving, upstream):
    node.become(node.state("coral-usb-after-firmware"))
    running = serving()
    wait_until("Register", lambda: kubelet.requests)
    client = Client(upstream, running.directory / SOCKET)
    try:
        raw = client.channel.unary_unary("/v1beta1.DevicePlugin/Allocate", request_serializer=lambda b: b,
                                         response_deserializer=lambda b: b)
        with pytest.raises(grpc.RpcError) as refused:
            raw(b"\x0a\x05\x0a\x03\xff\xfe\xfd", timeout=10)  # a device ID that is not UTF-8
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert client.allocate("usb-2-1")[0][0][0] == "/dev/bus/usb/002/002"
        assert running.thread.is_alive()
    finally:
        client.close()


def test_stopped_before_any_kubelet_it_leaves_no_socket(node, serving, tmp_path):
    """A plugin that never registered still removes the socket it bound: it marked a
    failed registration by forgetting its socket's inode, and so left the file behind."""
    directory = tmp_path / "device-plugins"
    directory.mkdir()
    node.become(node.state("coral-usb-after-firmware"))
    running = serving()
    wait_until("a failed registration", lambda: "cannot register" in running.log())
    assert (directory / SOCKET).is_socket()
    running.close()
    assert not running.thread.is_alive()
    assert sorted(directory.iterdir()) == []
