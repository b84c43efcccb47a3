"""The driver's own ends of the kernel's uevents and of HTTP/1.1 (nfd_hooks/allocation/events.py,
kube.py; why they are not pyudev and http.client is said there): uevents from the real kernel,
HTTP answers as Go's net/http writes them (tests/e2e/test_dra_driver.py has the real API server)."""

import asyncio
import io
import os
import socket
from pathlib import Path

import pytest

from nfd_hooks import api
from nfd_hooks.allocation import events, kube

NULL_UEVENT = Path("/sys/devices/virtual/mem/null/uevent")


def wakes(subsystems_of_options, trigger, timeout=3.0):
    """Whether ``trigger()`` wakes a monitor opened for ``subsystems_of_options``."""
    async def main():
        wake = asyncio.Event()
        lines = []
        found = events.monitor(subsystems_of_options, wake, lines.append, 60)
        assert found is not None, lines
        try:
            await asyncio.sleep(0.1)
            trigger()
            try:
                await asyncio.wait_for(wake.wait(), timeout)
                return True
            except asyncio.TimeoutError:
                return False
        finally:
            events.stop(found)
    return asyncio.run(main())


def kernel_change_of_dev_null():
    """A real uevent from the kernel: "change" written to /dev/null's uevent (SUBSYSTEM=mem)."""
    NULL_UEVENT.write_text("change")


@pytest.fixture
def can_trigger():
    if not os.access(NULL_UEVENT, os.W_OK):
        pytest.skip("writing a device's uevent file needs root and a writable /sys")


def test_a_kernel_uevent_of_a_wanted_subsystem_wakes(can_trigger, monkeypatch):
    monkeypatch.setattr("nfd_hooks.api.uevent_subsystems", lambda options: ("usb", "mem"))
    assert wakes(api.Options(), kernel_change_of_dev_null)


def test_other_subsystems_do_not_wake(can_trigger, monkeypatch):
    monkeypatch.setattr("nfd_hooks.api.uevent_subsystems", lambda options: ("usb", "pci"))
    assert not wakes(api.Options(), kernel_change_of_dev_null, timeout=1.5)


def test_a_message_not_from_the_kernel_does_not_wake():
    """Only the kernel's messages count: one from a process (port != 0) is ignored."""
    receiver = events.open_socket()
    wake = asyncio.Event()
    try:
        sender = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, events.NETLINK_KOBJECT_UEVENT)
        try:
            sender.bind((0, 0))
            sender.sendto(b"add@/devices/x\0ACTION=add\0SUBSYSTEM=usb\0", (receiver.getsockname()[0], 0))
        except OSError as error:
            pytest.skip(f"cannot send a netlink message here: {error}")
        finally:
            sender.close()
        events.drain(receiver, {b"usb"}, wake)
        assert not wake.is_set()
    finally:
        receiver.close()


def test_subsystem_of_a_message():
    assert events.subsystem(b"change@/devices/virtual/mem/null\0ACTION=change\0SUBSYSTEM=mem\0MAJOR=1\0") == b"mem"
    assert events.subsystem(b"libudev\0\xfe\xed\xca\xfe") is None
    assert events.subsystem(b"") is None


def answer(raw: bytes):
    return kube._response(io.BufferedReader(io.BytesIO(raw)))


def test_a_content_length_answer_keeps_the_connection():
    assert answer(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}EXTRA") == (200, "OK", b"{}", True)


def test_a_chunked_answer_with_extensions_and_trailers():
    raw = (b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"4;ext=1\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nX-Trailer: y\r\n\r\n")
    assert answer(raw) == (201, "Created", b'{"a":1}', True)


def test_an_informational_answer_is_skipped_and_close_is_honoured():
    raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 3\r\n\r\nnop"
    assert answer(raw) == (404, "Not Found", b"nop", False)


def test_no_length_reads_to_the_end_and_closes():
    assert answer(b"HTTP/1.0 200 OK\r\n\r\nbody") == (200, "OK", b"body", False)


@pytest.mark.parametrize("raw", [
    b"", b"HTTP/1.1 200 OK\r\n", b"SSH-2.0-OpenSSH\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n", b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70000 + b"\r\n\r\n",
])
def test_a_broken_answer_is_a_value_error(raw):
    with pytest.raises(ValueError):
        answer(raw)
