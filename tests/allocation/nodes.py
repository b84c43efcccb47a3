"""A node whose hardware a test changes, from the accelerator fixtures, and a fake API server.

``Node.become(state)`` points the node's ``sys`` and ``dev`` at one state's
trees (fixtures/accelerators/<state>/sys and a /dev made by mknod as devtmpfs
would make it), so a test unplugs, re-plugs and re-enumerates devices by
switching two symlinks. Device nodes need root (mknod).
"""

import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from tests.fakehost import populate_dev
from tests.conftest import ROOT
from tests.fakehost import PI4_HUBS, add_usb_device

FIXTURES = ROOT / "fixtures" / "accelerators"


def wait_until(what, probe, timeout=15.0):
    """``probe()``'s first true value, polled every 50 ms; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("device nodes need root (mknod)")


class Node:
    def __init__(self, directory: Path) -> None:
        need_root()
        self.directory = directory
        self.states = directory / "states"
        self.states.mkdir(parents=True)
        self.sys = directory / "sys"
        self.dev = directory / "dev"
        self.host_dev = directory / "host-dev"  # what the CDI specs call the host's /dev

    def state(self, name: str, source: Optional[Path] = None) -> Path:
        """Lay out state ``name`` (a fixture, or ``source``'s tree) with its /dev, once."""
        where = self.states / name
        if not where.exists():
            shutil.copytree(source or FIXTURES / name / "sys", where / "sys", symlinks=True)
            (where / "dev").mkdir()
            populate_dev(where / "sys", where / "dev")
        return where

    def bare(self) -> Path:
        """The Raspberry Pi 4's hubs and nothing plugged in."""
        where = self.states / "bare"
        if not where.exists():
            for spec in PI4_HUBS:
                add_usb_device(where / "sys", spec)
            (where / "dev").mkdir()
        return where

    def reenumerated(self, name: str, devnum: int) -> Path:
        """State ``name`` with its USB accelerator at the same port under a new device number."""
        copy = f"{name}-devnum-{devnum}"
        where = self.states / copy
        if where.exists():
            return where
        shutil.copytree(FIXTURES / name / "sys", where / "sys", symlinks=True)
        for uevent in (where / "sys" / "devices").rglob("uevent"):
            text = uevent.read_text()
            if "DEVNAME=bus/usb/" not in text:
                continue
            device = uevent.parent
            bus = int((device / "busnum").read_text())
            minor = (bus - 1) * 128 + devnum - 1
            fields = dict(line.split("=", 1) for line in text.splitlines())
            fields.update(MINOR=str(minor), DEVNAME=f"bus/usb/{bus:03d}/{devnum:03d}", DEVNUM=f"{devnum:03d}")
            uevent.write_text("\n".join(f"{k}={v}" for k, v in fields.items()) + "\n")
            (device / "devnum").write_text(f"{devnum}\n")
            (device / "dev").write_text(f"189:{minor}\n")
        (where / "dev").mkdir()
        populate_dev(where / "sys", where / "dev")
        return where

    def become(self, where: Path) -> None:
        for link, target in ((self.sys, where / "sys"), (self.dev, where / "dev")):
            temporary = link.with_name(link.name + ".new")
            temporary.symlink_to(target)
            os.replace(temporary, link)


class FakeApi:
    """The driver's five API calls, in memory; ``keep_taints`` False drops them as an
    API server without the DRADeviceTaints gate does."""

    def __init__(self, node: str = "node-1", keep_taints: bool = True) -> None:
        self.node, self.keep_taints = node, keep_taints
        self.slices: Dict[str, Dict[str, Any]] = {}
        self.claims: Dict[tuple, Dict[str, Any]] = {}
        self.writes: List[Dict[str, Any]] = []
        self.lock = threading.Lock()
        self.version = 0

    def get_node(self, name: str) -> Dict[str, Any]:
        return {"metadata": {"name": name, "uid": "node-uid-1"}}

    def get_claim(self, namespace: str, name: str) -> Dict[str, Any]:
        from nfd_hooks.allocation.kube import ApiError

        with self.lock:
            if (namespace, name) not in self.claims:
                raise ApiError(404, f"resourceclaims {name} not found")
            return self.claims[(namespace, name)]

    def add_claim(self, namespace: str, name: str, uid: str, devices: List[str], driver: str = "accelerator.nfd-hooks.io") -> None:
        results = [{"request": "tpu", "driver": driver, "pool": self.node, "device": device} for device in devices]
        with self.lock:
            self.claims[(namespace, name)] = {
                "metadata": {"namespace": namespace, "name": name, "uid": uid},
                "status": {"allocation": {"devices": {"results": results}}},
            }

    def get_slice(self, name: str) -> Optional[Dict[str, Any]]:
        with self.lock:
            return self.slices.get(name)

    def _store(self, body: Dict[str, Any]) -> Dict[str, Any]:
        import copy

        stored = copy.deepcopy(body)
        self.version += 1
        stored["metadata"]["resourceVersion"] = str(self.version)
        for device in stored["spec"]["devices"]:
            if not self.keep_taints:
                device.pop("taints", None)
            for taint in device.get("taints", []):
                taint.setdefault("timeAdded", "2026-01-01T00:00:00Z")
        if not stored["spec"]["devices"]:
            del stored["spec"]["devices"]  # omitempty, as the API server answers
        self.slices[stored["metadata"]["name"]] = stored
        self.writes.append(stored)
        return copy.deepcopy(stored)

    def create_slice(self, body: Dict[str, Any]) -> Dict[str, Any]:
        with self.lock:
            return self._store(body)

    def update_slice(self, body: Dict[str, Any]) -> Dict[str, Any]:
        from nfd_hooks.allocation.kube import ApiError

        with self.lock:
            current = self.slices.get(body["metadata"]["name"])
            if current is None:
                raise ApiError(404, "not found")
            if current["metadata"]["resourceVersion"] != body["metadata"].get("resourceVersion"):
                raise ApiError(409, "conflict")
            return self._store(body)

    def offered(self) -> Dict[str, bool]:
        """Device name -> tainted, in the current slice."""
        with self.lock:
            only = next(iter(self.slices.values()), None)
            return {d["name"]: bool(d.get("taints")) for d in (only or {"spec": {}})["spec"].get("devices", [])}
