"""The DRA driver under bad input (issue 29 item 9): nothing takes it down or loses a prepared claim.

- gRPC bytes: valid encodings of every kubelet message, truncated, with bytes changed, or
  random: decoding gives a message or DecodeError (INVALID_ARGUMENT), nothing else, and
  what decodes encodes and decodes to itself.
- Checkpoints: a real one truncated, with bytes changed, or a generated JSON document with
  a valid checksum over hostile content (deep nesting, Infinity, wrong types, empty device
  lists), or a FIFO, a directory, a symlink; CDI spec files of ours with the same, and FIFOs: loading never raises, says so in one line
  per file, and every claim whose spec is intact is held afterwards.
- Claims: generated ResourceClaim objects (any JSON shape under status.allocation) and
  kubelet claims (any namespace, name, uid): every claim gets an answer, devices or a
  one-line error; the driver never raises; no device is ever held by two claims.
- Sequences (a hypothesis state machine): prepare, unprepare, restart, damaged checkpoint
  then restart, unplug and re-plug, an unwritable /var/run/cdi, against a model of which
  claim holds the device: the driver agrees with the model after every step, its CDI specs
  are exactly its claims', and a restart or a damaged checkpoint loses nothing.
"""

import asyncio
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from nfd_hooks import api
from nfd_hooks.allocation import cdi, dra, prepared, wire
from nfd_hooks.allocation.inventory import Inventory
from tests.allocation.messages import instances, texts
from tests.allocation.nodes import FakeApi, Node
from tests.reliability.invariants import count, scaled, scratch_dir

SCRATCH = scratch_dir()
DRIVER = "accelerator.nfd-hooks.io"
DEVICE = "usb-2-1"
MESSAGES = [message for messages in wire.UPSTREAM.values() for message in messages.values()]


@st.composite
def damaged(draw, valid: bytes) -> bytes:
    """``valid`` truncated, with bytes changed, with bytes inserted, or random bytes."""
    how = draw(st.sampled_from(["truncate", "flip", "insert", "random"]))
    data = bytearray(valid)
    if how == "truncate" and data:
        return bytes(data[: draw(st.integers(0, len(data) - 1))])
    if how == "flip" and data:
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return bytes(data)
    if how == "insert":
        at = draw(st.integers(0, len(data)))
        return bytes(data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:])
    return draw(st.binary(max_size=64))


@scaled(2)
@given(data=st.data())
def test_any_bytes_decode_to_a_message_or_a_decode_error(data):
    count("allocation-wire")
    message_class = data.draw(st.sampled_from(MESSAGES))
    valid = data.draw(instances(message_class)).encode()
    raw = data.draw(damaged(valid))
    codec_error = None
    try:
        decoded = message_class.decode(raw)
    except wire.DecodeError as error:
        assert str(error) and "\n" not in str(error)
        codec_error = error
    if codec_error is None:
        assert type(decoded).decode(decoded.encode()) == decoded
    from grpclib.exceptions import GRPCError
    from nfd_hooks.allocation.rpc import Codec

    try:
        Codec().decode(raw, message_class)
    except GRPCError as error:
        assert codec_error is not None and error.status.name == "INVALID_ARGUMENT"
    else:
        assert codec_error is None


# -- checkpoints and CDI specs ---------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=12,
)
NODE = ["/dev/bus/usb/002/002", "/host-dev/bus/usb/002/002", 189, 129]


@st.composite
def claim_documents(draw):
    """A checkpoint's ``claims``: real-shaped with hostile values here and there."""
    def maybe(value):
        return draw(json_values) if draw(st.integers(0, 5)) == 0 else value

    claims = {}
    for index in range(draw(st.integers(0, 3))):
        devices = [maybe({"request": maybe("tpu"), "device": maybe(f"usb-{index}"),
                          "nodes": maybe([maybe([maybe(v) for v in NODE])])})
                   for _ in range(draw(st.integers(0, 2)))]
        claims[f"uid-{index}"] = maybe(
            {"namespace": maybe("default"), "name": maybe(f"claim-{index}"), "devices": maybe(devices)})
    return maybe(claims)


def summed(claims) -> bytes:
    """A checkpoint whose checksum matches its (hostile) claims, as the driver sums them."""
    try:
        text = json.dumps(claims, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        text = json.dumps(str(claims))
    document = {"version": 1, "checksum": hashlib.sha256(text.encode()).hexdigest(), "claims": claims}
    return json.dumps(document).encode()


def deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def held_entry(uid, device="usb-2-1"):
    return cdi.Entry(uid, "default", f"claim-{uid}", "tpu", device, (cdi.Node(*NODE),))


def checkpoint_bytes(draw) -> bytes:
    valid = prepared.encode({"uid-a": [held_entry("uid-a")]})
    return draw(st.one_of(
        damaged(valid),
        claim_documents().map(summed),
        st.integers(1000, 200000).map(deep),
        st.just(b'{"version": 1, "checksum": "", "claims": {"u": {"devices": [{"nodes": [[1, 2, Infinity, 0]]}]}}}'),
    ))


@scaled(2)
@given(data=st.data())
def test_a_checkpoint_of_any_content_is_set_aside_and_intact_specs_are_kept(data):
    count("allocation-checkpoint")
    directory = Path(tempfile.mkdtemp(dir=SCRATCH))
    try:
        cdi_dir = directory / "cdi"
        cdi_dir.mkdir()
        checkpoint = directory / "checkpoint.json"
        kind = data.draw(st.sampled_from(["file"] * 6 + ["fifo", "directory", "symlink"]))
        if kind == "file":
            checkpoint.write_bytes(checkpoint_bytes(data.draw))
        elif kind == "fifo":  # a plain read would block for good
            os.mkfifo(checkpoint)
        elif kind == "directory":
            checkpoint.mkdir()
        else:
            (directory / "elsewhere").write_bytes(prepared.encode({"uid-a": [held_entry("uid-a")]}))
            checkpoint.symlink_to(directory / "elsewhere")
        if data.draw(st.booleans()):
            os.mkfifo(cdi_dir / f"{cdi.PREFIX}fifo.json")
        intact = data.draw(st.lists(st.sampled_from(["uid-b", "uid-c"]), unique=True))
        for uid in intact:
            cdi.write(cdi_dir, held_entry(uid, device=f"usb-{uid}"))
        for index, spec in enumerate(data.draw(st.lists(st.one_of(
            st.just(cdi.render(held_entry("uid-x"))).flatmap(damaged),
            json_values.map(lambda v: json.dumps(v).encode()),
            st.integers(1000, 100000).map(deep),
        ), max_size=2))):
            (cdi_dir / f"{cdi.PREFIX}junk-{index}.json").write_bytes(spec)
        lines = []
        state = prepared.Prepared(checkpoint, cdi_dir, directory, Path("/dev"), lines.append)
        state.load()
        assert all("\n" not in line for line in lines)
        assert len([line for line in lines if line.startswith(f"checkpoint {checkpoint} unusable")]) <= 1
        for uid in intact:
            assert [e.device for e in state.claims[uid]] == [f"usb-{uid}"]
        for uid, entries in state.claims.items():
            assert entries, f"claim {uid} holds nothing"
            for entry in entries:
                assert isinstance(entry.claim_uid, str) and isinstance(entry.device, str)
                assert all(isinstance(n.major, int) and isinstance(n.minor, int) for n in entry.nodes)
            state.holder(entries[0].device)  # the queries the driver makes work on whatever was loaded
        state.held()
        # And what it saved reads back the same.
        again = prepared.Prepared(checkpoint, cdi_dir, directory, Path("/dev"), lines.append)
        again.load()
        assert again.claims == state.claims
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# -- claims --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plugged_node():
    directory = Path(tempfile.mkdtemp(prefix="alloc-fuzz-", dir="/tmp"))
    node = Node(directory / "node")
    node.become(node.state("coral-usb-after-firmware"))
    yield node
    shutil.rmtree(directory, ignore_errors=True)


def make_driver(node, root: Path, fake, log):
    config = dra.Config(driver=DRIVER, node=fake.node, registry_dir=root / "registry", plugins_dir=root / "plugins",
                        cdi_dir=root / "cdi", host_dev=node.host_dev, uevents=False)
    inventory = Inventory(api.Options(sysfs=node.sys, dev=node.dev, use_devicetree=False))
    driver = dra.Driver(config, fake, inventory, log)
    dra.make_directories(config, log)  # what dra.run does first
    driver.prepared.load()
    driver.rescan()
    return driver


allocation_results = st.lists(st.one_of(
    st.fixed_dictionaries({
        "request": st.sampled_from(["tpu", ""]) | texts,
        "driver": st.sampled_from([DRIVER, "gpu.example.com"]),
        "pool": st.sampled_from(["node-1", "node-2"]),
        "device": st.sampled_from([DEVICE, "usb-9-9", ""]) | texts,
    }),
    json_values,
), max_size=3)
claim_objects = st.one_of(
    st.builds(lambda uid, results: {"metadata": {"uid": uid}, "status": {"allocation": {"devices": {"results": results}}}},
              st.sampled_from(["uid-1", "uid-2", "uid-3"]), allocation_results),
    st.builds(lambda uid, status: {"metadata": {"uid": uid}, "status": status}, st.sampled_from(["uid-1", "uid-2"]), json_values),
    json_values,
)
kubelet_claims = st.builds(wire.Claim, namespace=st.sampled_from(["default", ""]) | texts,
                           name=st.sampled_from(["c1", "c2", "c3"]) | texts,
                           uid=st.sampled_from(["uid-1", "uid-2", "uid-3", ""]) | texts)


@settings(parent=scaled(4))
@given(objects=st.lists(st.tuples(st.sampled_from(["c1", "c2", "c3"]), claim_objects), max_size=3),
       requests=st.lists(st.lists(kubelet_claims, min_size=1, max_size=3), min_size=1, max_size=3))
def test_any_claim_gets_an_answer_and_no_device_is_held_twice(plugged_node, objects, requests):
    count("allocation-claims")
    root = Path(tempfile.mkdtemp(dir=SCRATCH))
    try:
        fake = FakeApi()
        for name, body in objects:
            fake.claims[("default", name)] = body
        lines = []
        driver = make_driver(plugged_node, root, fake, lines.append)
        for claims in requests:
            before = {uid: list(entries) for uid, entries in driver.prepared.claims.items()}
            answer = asyncio.run(driver.prepare(wire.NodePrepareResourcesRequest(claims=claims)))
            assert set(answer.claims) == {claim.uid for claim in claims}
            for uid, result in answer.claims.items():
                assert bool(result.error) != bool(result.devices) or uid in before
                assert "\n" not in result.error
            for uid, entries in before.items():  # never lost
                assert driver.prepared.claims.get(uid) == entries
            held = [e.device for entries in driver.prepared.claims.values() for e in entries]
            assert len(held) == len(set(held)), "a device held by two claims"
            on_disk = sorted(p.name for p in driver.config.cdi_dir.iterdir() if not p.name.startswith("."))
            assert on_disk == sorted(cdi.file_name(e.claim_uid, e.device) for entries in driver.prepared.claims.values()
                                     for e in entries)
        assert all("\n" not in line for line in lines)
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- sequences -----------------------------------------------------------------------------


class DriverMachine(RuleBasedStateMachine):
    """One node with one Coral; three claims for it (and one for a device never there)."""

    node = None

    @initialize()
    def start(self):
        count("allocation-sequence")
        self.root = Path(tempfile.mkdtemp(dir=SCRATCH))
        self.fake = FakeApi()
        for name, uid, device in (("c1", "uid-1", DEVICE), ("c2", "uid-2", DEVICE), ("c3", "uid-3", DEVICE),
                                  ("far", "uid-far", "usb-9-9")):
            self.fake.add_claim("default", name, uid, [device])
        self.node.become(self.node.state("coral-usb-after-firmware"))
        self.plugged = True
        self.lines = []
        self.driver = make_driver(self.node, self.root, self.fake, self.lines.append)
        self.holder = None  # the model: which claim uid holds the Coral
        self.cdi_broken = False

    def teardown(self):
        if hasattr(self, "root"):
            if self.root.joinpath("cdi").is_file():
                self.root.joinpath("cdi").unlink()
            shutil.rmtree(self.root, ignore_errors=True)

    @rule(claim=st.sampled_from([("c1", "uid-1"), ("c2", "uid-2"), ("c3", "uid-3"), ("far", "uid-far")]))
    def prepare(self, claim):
        name, uid = claim
        answer = asyncio.run(self.driver.prepare(wire.NodePrepareResourcesRequest(
            claims=[wire.Claim(namespace="default", name=name, uid=uid)])))
        result = answer.claims[uid]
        expected_ok = uid == self.holder or (
            uid != "uid-far" and self.holder is None and self.plugged and not self.cdi_broken)
        assert (result.error == "") == expected_ok, result.error
        if expected_ok:
            self.holder = uid
            assert [d.device_name for d in result.devices] == [DEVICE]

    @rule(uid=st.sampled_from(["uid-1", "uid-2", "uid-3", "uid-far", "uid-never"]))
    def unprepare(self, uid):
        answer = asyncio.run(self.driver.unprepare(wire.NodeUnprepareResourcesRequest(
            claims=[wire.Claim(namespace="default", name="x", uid=uid)])))
        assert answer.claims[uid].error == ""
        if uid == self.holder:
            self.holder = None

    @rule(damage=st.sampled_from([None, "truncate", "garbage", "remove", "directory"]))
    def restart(self, damage):
        checkpoint = self.driver.config.checkpoint
        if damage == "truncate" and checkpoint.is_file():
            checkpoint.write_bytes(checkpoint.read_bytes()[:7])
        elif damage == "garbage":
            checkpoint.write_bytes(b"\x00garbage")
        elif damage == "remove" and checkpoint.is_file():
            checkpoint.unlink()
        elif damage == "directory" and checkpoint.is_file():
            checkpoint.unlink()
            checkpoint.mkdir()
        self.driver = make_driver(self.node, self.root, self.fake, self.lines.append)

    @rule()
    def unplug(self):
        self.node.become(self.node.bare())
        self.driver.rescan()
        self.plugged = False

    @rule(devnum=st.integers(2, 9))
    def replug(self, devnum):
        self.node.become(self.node.reenumerated("coral-usb-after-firmware", devnum))
        self.driver.rescan()
        self.plugged = True

    @rule()
    def break_cdi(self):
        """An unwritable /var/run/cdi (a file in its place); only while nothing is held,
        so that the model's holder keeps its spec."""
        if not self.cdi_broken and not any(self.root.joinpath("cdi").iterdir()):
            self.root.joinpath("cdi").rmdir()
            self.root.joinpath("cdi").write_text("not a directory")
            self.cdi_broken = True

    @rule()
    def repair_cdi(self):
        if self.cdi_broken:
            self.root.joinpath("cdi").unlink()
            self.root.joinpath("cdi").mkdir()
            self.cdi_broken = False

    @invariant()
    def agrees_with_the_model(self):
        if not hasattr(self, "driver"):
            return
        assert set(self.driver.prepared.claims) == ({self.holder} if self.holder else set())
        assert all("\n" not in line for line in self.lines)
        if not self.cdi_broken:
            on_disk = sorted(p.name for p in self.driver.config.cdi_dir.iterdir() if not p.name.startswith("."))
            assert on_disk == ([cdi.file_name(self.holder, DEVICE)] if self.holder else [])


def test_sequences_of_prepare_unprepare_restart_damage_and_unplug(plugged_node):
    DriverMachine.node = plugged_node
    DriverMachine.TestCase.settings = settings(parent=scaled(5), stateful_step_count=12)
    DriverMachine.TestCase().runTest()
