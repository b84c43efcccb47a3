"""The DRA driver's kubelet side, driven by a real gRPC client (grpcio, compiled from the
kubelet's own .proto files) over real unix sockets, on nodes made from the accelerator
fixtures, with an in-memory API server (tests/e2e runs it against the real one)."""

import asyncio
import json
import threading
import time
from pathlib import Path

import grpc
import pytest

from nfd_hooks import api
from nfd_hooks.allocation import dra
from nfd_hooks.allocation.inventory import Inventory
from tests.allocation.nodes import FakeApi, Node, wait_until

DRIVER = "accelerator.nfd-hooks.io"
REG = "pluginregistration/v1/api.proto"
DRA = "dra/v1/api.proto"


class Running:
    """A driver serving in a thread of its own, as the process would."""

    def __init__(self, node: Node, fake: FakeApi, root: Path, **config) -> None:
        self.log_lines = []
        self.config = dra.Config(
            driver=DRIVER, node=fake.node, registry_dir=root / "plugins_registry", plugins_dir=root / "plugins",
            cdi_dir=root / "cdi", host_dev=node.host_dev, grace=0.3, taint_window=0.6, resync=0.2, uevents=False,
            **config,
        )
        inventory = Inventory(api.Options(sysfs=node.sys, dev=node.dev, use_devicetree=False))
        self.driver = dra.Driver(self.config, fake, inventory, self.log_lines.append)
        self.ready = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self.thread.start()
        assert self.ready.wait(10)
        wait_until("sockets", lambda: self.config.endpoint.exists() and self.config.registration.exists())

    async def _main(self):
        self.loop = asyncio.get_running_loop()
        self.stop = asyncio.Event()
        self.ready.set()
        await dra.run(self.driver, self.stop)

    def close(self):
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(15)
        assert not self.thread.is_alive()

    def log(self):
        return "\n".join(self.log_lines)


@pytest.fixture
def stubs(upstream):
    def make(running):
        # Own subchannels: grpcio shares connections per target across channels, and a
        # restarted driver serves the same socket path.
        options = [("grpc.use_local_subchannel_pool", 1)]
        reg = grpc.insecure_channel(f"unix://{running.config.registration}", options=options)
        plugin = grpc.insecure_channel(f"unix://{running.config.endpoint}", options=options)
        return (upstream[REG][1].RegistrationStub(reg), upstream[DRA][1].DRAPluginStub(plugin), plugin)
    return make


def prepare(upstream, stub, *claims):
    messages = upstream[DRA][0]
    request = messages.NodePrepareResourcesRequest(claims=[messages.Claim(namespace=n, name=c, uid=u) for n, c, u in claims])
    return stub.NodePrepareResources(request, timeout=15).claims


def unprepare(upstream, stub, *claims):
    messages = upstream[DRA][0]
    request = messages.NodeUnprepareResourcesRequest(claims=[messages.Claim(namespace=n, name=c, uid=u) for n, c, u in claims])
    return stub.NodeUnprepareResources(request, timeout=15).claims


def spec_of(running, uid, device):
    path = running.config.cdi_dir / f"nfd-hooks.io-accelerator_{uid}_{device}.json"
    return json.loads(path.read_text())


def test_registers_as_a_v1_dra_plugin(node, fake, tmp_path, stubs, upstream):
    node.become(node.state("coral-usb-after-firmware"))
    running = Running(node, fake, tmp_path)
    try:
        registration, _, _ = stubs(running)
        info = registration.GetInfo(upstream[REG][0].InfoRequest(), timeout=10)
        assert (info.type, info.name, info.endpoint, list(info.supported_versions)) == (
            "DRAPlugin", DRIVER, str(running.config.endpoint), ["v1.DRAPlugin"])
        registration.NotifyRegistrationStatus(upstream[REG][0].RegistrationStatus(plugin_registered=True), timeout=10)
        wait_until("the log", lambda: "registered with the kubelet" in running.log())
    finally:
        running.close()
    assert not running.config.endpoint.exists() and not running.config.registration.exists()


def test_only_ready_devices_are_published(node, fake, tmp_path):
    node.become(node.state("coral-usb-before-firmware"))
    running = Running(node, fake, tmp_path)
    try:
        wait_until("a slice", lambda: fake.slices)
        assert fake.offered() == {}  # 1a6e:089a, firmware not loaded: withheld
        node.become(node.state("coral-usb-after-firmware"))
        wait_until("the Coral offered", lambda: fake.offered() == {"usb-2-1": False})
        body = next(iter(fake.slices.values()))
        assert body["spec"]["nodeName"] == "node-1" and body["spec"]["pool"]["name"] == "node-1"
        assert body["metadata"]["ownerReferences"][0]["uid"] == "node-uid-1"
        assert body["spec"]["devices"][0]["attributes"] == {
            "id": {"string": "edgetpu"}, "bus": {"string": "usb"}, "attachment": {"string": "2-1"},
            "vendorProduct": {"string": "18d1:9302"}, "kernelDriver": {"string": "usb"}, "ready": {"bool": True},
        }
    finally:
        running.close()


def test_prepare_hands_over_exactly_the_device_node(node, fake, tmp_path, stubs, upstream):
    node.become(node.state("coral-usb-after-firmware"))
    fake.add_claim("default", "tpu-a", "uid-a", ["usb-2-1"])
    running = Running(node, fake, tmp_path)
    try:
        _, plugin, _ = stubs(running)
        answer = prepare(upstream, plugin, ("default", "tpu-a", "uid-a"))["uid-a"]
        assert answer.error == ""
        assert [(list(d.request_names), d.pool_name, d.device_name, list(d.cdi_device_ids)) for d in answer.devices] == [
            (["tpu"], "node-1", "usb-2-1", ["nfd-hooks.io/accelerator=uid-a-usb-2-1"])]
        spec = spec_of(running, "uid-a", "usb-2-1")
        assert spec["kind"] == "nfd-hooks.io/accelerator"
        assert spec["devices"] == [{"name": "uid-a-usb-2-1", "containerEdits": {"deviceNodes": [{
            "path": "/dev/bus/usb/002/002", "hostPath": str(node.host_dev / "bus/usb/002/002"),
            "type": "c", "major": 189, "minor": 129, "permissions": "rw"}]}}]
        # The kubelet calls again after its own restart: the same answer, nothing new.
        again = prepare(upstream, plugin, ("default", "tpu-a", "uid-a"))["uid-a"]
        assert again == answer
    finally:
        running.close()


def test_a_prepared_device_is_refused_to_another_claim_until_unprepared(node, fake, tmp_path, stubs, upstream):
    node.become(node.state("coral-usb-after-firmware"))
    fake.add_claim("default", "tpu-a", "uid-a", ["usb-2-1"])
    fake.add_claim("default", "tpu-b", "uid-b", ["usb-2-1"])
    running = Running(node, fake, tmp_path)
    try:
        _, plugin, _ = stubs(running)
        assert prepare(upstream, plugin, ("default", "tpu-a", "uid-a"))["uid-a"].error == ""
        refused = prepare(upstream, plugin, ("default", "tpu-b", "uid-b"))["uid-b"]
        assert refused.error == "device usb-2-1 is prepared for another claim (default/tpu-a); refused"
        assert not refused.devices
        assert unprepare(upstream, plugin, ("default", "tpu-a", "uid-a"))["uid-a"].error == ""
        assert not (running.config.cdi_dir / "nfd-hooks.io-accelerator_uid-a_usb-2-1.json").exists()
        assert prepare(upstream, plugin, ("default", "tpu-b", "uid-b"))["uid-b"].error == ""
    finally:
        running.close()


def test_a_restart_keeps_prepared_claims(node, fake, tmp_path, stubs, upstream):
    node.become(node.state("coral-usb-after-firmware"))
    fake.add_claim("default", "tpu-a", "uid-a", ["usb-2-1"])
    fake.add_claim("default", "tpu-b", "uid-b", ["usb-2-1"])
    running = Running(node, fake, tmp_path)
    _, plugin, _ = stubs(running)
    assert prepare(upstream, plugin, ("default", "tpu-a", "uid-a"))["uid-a"].error == ""
    running.close()
    running = Running(node, fake, tmp_path)  # the kubelet does not prepare again
    try:
        _, plugin, _ = stubs(running)
        assert "prepared for another claim" in prepare(upstream, plugin, ("default", "tpu-b", "uid-b"))["uid-b"].error
        assert unprepare(upstream, plugin, ("default", "tpu-a", "uid-a"))["uid-a"].error == ""
        assert not list(running.config.cdi_dir.glob("*uid-a*"))
    finally:
        running.close()


@pytest.mark.parametrize("damage", ["truncated", "garbage", "wrong checksum", "directory"])
def test_a_damaged_checkpoint_is_rebuilt_from_the_cdi_specs(node, fake, tmp_path, stubs, upstream, damage):
    node.become(node.state("coral-usb-after-firmware"))
    fake.add_claim("default", "tpu-a", "uid-a", ["usb-2-1"])
    fake.add_claim("default", "tpu-b", "uid-b", ["usb-2-1"])
    running = Running(node, fake, tmp_path)
    _, plugin, _ = stubs(running)
    assert prepare(upstream, plugin, ("default", "tpu-a", "uid-a"))["uid-a"].error == ""
    running.close()
    checkpoint = running.config.checkpoint
    data = checkpoint.read_bytes()
    if damage == "truncated":
        checkpoint.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        checkpoint.write_bytes(b"\x00\xff" * 50)
    elif damage == "wrong checksum":
        checkpoint.write_bytes(data.replace(b"tpu-a", b"tpu-x"))
    else:
        checkpoint.unlink()
        checkpoint.mkdir()
    running = Running(node, fake, tmp_path)
    try:
        _, plugin, _ = stubs(running)
        assert "unusable" in running.log() and "rebuilding it from the CDI specs" in running.log()
        assert len([line for line in running.log_lines if "unusable" in line]) == 1
        assert "prepared for another claim (default/tpu-a)" in prepare(upstream, plugin, ("default", "tpu-b", "uid-b"))["uid-b"].error
        assert list(checkpoint.parent.glob("checkpoint.json.corrupt-*"))
    finally:
        running.close()


def test_bad_requests_get_a_status_and_the_driver_goes_on(node, fake, tmp_path, stubs, upstream):
    node.become(node.state("coral-usb-after-firmware"))
    fake.add_claim("default", "gone", "uid-g", ["usb-9-9"])
    fake.add_claim("default", "other-driver", "uid-o", ["usb-2-1"], driver="gpu.example.com")
    running = Running(node, fake, tmp_path)
    try:
        _, plugin, channel = stubs(running)
        raw = channel.unary_unary("/k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin/NodePrepareResources",
                                  request_serializer=lambda b: b, response_deserializer=lambda b: b)
        with pytest.raises(grpc.RpcError) as refused:
            raw(b"\x0a\xff\xff\xff\xff\x0f", timeout=10)  # a length running past the end
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        answers = prepare(upstream, plugin, ("default", "gone", "uid-g"), ("default", "nobody", "uid-n"),
                          ("default", "other-driver", "uid-o"), ("", "", ""))
        assert answers["uid-g"].error == "device usb-9-9 is not on this node now (unplugged?)"
        assert answers["uid-n"].error.startswith("cannot read the ResourceClaim: ")
        assert answers["uid-o"].error == f"the ResourceClaim has no device of driver {DRIVER}"
        assert answers[""].error == "malformed claim: namespace, name and uid are all required"
        fake.add_claim("default", "stale", "uid-new", ["usb-2-1"])
        assert "another uid" in prepare(upstream, plugin, ("default", "stale", "uid-old"))["uid-old"].error
        assert unprepare(upstream, plugin, ("default", "never", "uid-never"))["uid-never"].error == ""
        assert running.thread.is_alive()
        lines = [line for line in running.log_lines if "not prepared" in line or "refused" in line]
        assert len(lines) == 6 and all("\n" not in line for line in lines)
    finally:
        running.close()


def test_an_unwritable_cdi_directory_fails_the_claim_not_the_driver(node, fake, tmp_path, stubs, upstream):
    node.become(node.state("coral-usb-after-firmware"))
    fake.add_claim("default", "tpu-a", "uid-a", ["usb-2-1"])
    running = Running(node, fake, tmp_path)
    try:
        _, plugin, _ = stubs(running)
        running.config.cdi_dir.rmdir()
        running.config.cdi_dir.write_text("not a directory")
        answer = prepare(upstream, plugin, ("default", "tpu-a", "uid-a"))["uid-a"]
        assert answer.error.startswith(f"cannot write CDI spec in {running.config.cdi_dir}: ")
        assert not running.driver.prepared.claims  # nothing half-prepared
        running.config.cdi_dir.unlink()
        running.config.cdi_dir.mkdir()
        assert prepare(upstream, plugin, ("default", "tpu-a", "uid-a"))["uid-a"].error == ""
    finally:
        running.close()


def test_vanished_sockets_are_served_again(node, fake, tmp_path, stubs, upstream, monkeypatch):
    monkeypatch.setattr(dra, "SOCKET_CHECK", 0.2)
    node.become(node.state("coral-usb-after-firmware"))
    running = Running(node, fake, tmp_path)
    try:
        running.config.endpoint.unlink()
        running.config.registration.unlink()
        wait_until("both sockets back", lambda: running.config.endpoint.exists() and running.config.registration.exists())
        registration, _, _ = stubs(running)
        assert registration.GetInfo(upstream[REG][0].InfoRequest(), timeout=10).name == DRIVER
        assert "vanished" in running.log()
    finally:
        running.close()


def test_re_enumeration_keeps_the_device_and_moves_its_spec_to_the_new_node(node, fake, tmp_path, stubs, upstream):
    node.become(node.state("ncs2-booted"))
    fake.add_claim("default", "vpu", "uid-v", ["usb-2-1"])
    running = Running(node, fake, tmp_path, )
    try:
        _, plugin, _ = stubs(running)
        wait_until("the NCS2 offered", lambda: fake.offered() == {"usb-2-1": False})
        assert prepare(upstream, plugin, ("default", "vpu", "uid-v"))["uid-v"].error == ""
        before = spec_of(running, "uid-v", "usb-2-1")["devices"][0]["containerEdits"]["deviceNodes"][0]["path"]
        writes = len(fake.writes)
        node.become(node.bare())  # the stick resets: gone for a moment...
        time.sleep(0.1)
        node.become(node.reenumerated("ncs2-booted", 7))  # ... and back on port 2-1 as device 7
        wait_until("the spec to follow", lambda: spec_of(running, "uid-v", "usb-2-1")["devices"][0]
                   ["containerEdits"]["deviceNodes"][0]["path"] == "/dev/bus/usb/002/007")
        time.sleep(0.8)  # past the grace period
        assert before == "/dev/bus/usb/002/003"
        assert fake.offered() == {"usb-2-1": False} and len(fake.writes) == writes  # never withdrawn
        assert running.driver.prepared.holder("usb-2-1") == "uid-v"
    finally:
        running.close()


@pytest.mark.parametrize("gate", [True, False])
def test_unplug_taints_then_withdraws(node, tmp_path, stubs, upstream, gate):
    fake = FakeApi(keep_taints=gate)
    node.become(node.state("coral-usb-after-firmware"))
    fake.add_claim("default", "tpu-a", "uid-a", ["usb-2-1"])
    running = Running(node, fake, tmp_path)
    try:
        _, plugin, _ = stubs(running)
        wait_until("the Coral offered", lambda: fake.offered() == {"usb-2-1": False})
        assert prepare(upstream, plugin, ("default", "tpu-a", "uid-a"))["uid-a"].error == ""
        node.become(node.bare())
        if gate:
            wait_until("the taint", lambda: fake.offered() == {"usb-2-1": True})
            taint = next(iter(fake.slices.values()))["spec"]["devices"][0]["taints"]
            assert [(t["key"], t["value"], t["effect"]) for t in taint] == [(f"{DRIVER}/unplugged", "true", "NoExecute")]
            time.sleep(1.0)  # past the taint window: still held, so still tainted
            assert fake.offered() == {"usb-2-1": True}
            assert unprepare(upstream, plugin, ("default", "tpu-a", "uid-a"))["uid-a"].error == ""
        wait_until("the Coral withdrawn", lambda: fake.slices and fake.offered() == {})
        if not gate:
            assert "DRADeviceTaints off" in running.log()
    finally:
        running.close()
