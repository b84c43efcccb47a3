"""The binary descriptor walker: real-shaped input, malformed tails, garbage."""

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from nfd_hooks.sources.usb.descriptors import MAX_DESCRIPTORS_SIZE, interface_classes_by_configuration
from tests.conftest import FIXTURES

WEBCAM = FIXTURES / "usb" / "edge-node" / "devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1.1/descriptors"

DEVICE = bytes.fromhex("120100020000004003040160000601020301")  # FT232R: 0403:6001, 1 configuration


def config(value: int, *interfaces: bytes) -> bytes:
    body = b"".join(interfaces)
    return struct.pack("<BBHBBBBB", 9, 2, 9 + len(body), len(interfaces), value, 0, 0x80, 50) + body


def interface(number: int, cls: int, alt: int = 0) -> bytes:
    return struct.pack("<BBBBBBBBB", 9, 4, number, alt, 1, cls, 0, 0, 0) + bytes.fromhex("07058102400000")


def test_device_descriptor_is_18_bytes():
    assert len(DEVICE) == 18 and DEVICE[1] == 1


def test_webcam_fixture_interfaces_video_and_audio():
    # C920: IADs, class-specific VC header, alternate settings; classes 0e (video) and 01 (audio)
    assert interface_classes_by_configuration(WEBCAM.read_bytes()) == {1: ("01", "0e")}


def test_each_configuration_keeps_its_own_classes():
    data = DEVICE + config(1, interface(0, 0x08)) + config(2, interface(0, 0xFF), interface(1, 0x0E))
    assert interface_classes_by_configuration(data) == {1: ("08",), 2: ("0e", "ff")}


def test_alternate_settings_count():
    data = DEVICE + config(1, interface(0, 0x0E), interface(0, 0x01, alt=1))
    assert interface_classes_by_configuration(data) == {1: ("01", "0e")}


def test_malformed_tail_is_ignored():
    good = DEVICE + config(1, interface(0, 0xFF))
    assert interface_classes_by_configuration(good + b"\x00\x04\xff") == {1: ("ff",)}  # bLength 0
    assert interface_classes_by_configuration(good + b"\x09\x04\x01\x00") == {1: ("ff",)}  # cut short
    assert interface_classes_by_configuration(good + b"\x05\x04\x01\x00\x00") == {1: ("ff",)}  # interface too short


def test_interface_before_any_configuration_is_ignored():
    assert interface_classes_by_configuration(DEVICE + interface(0, 0xFF)) == {}


def test_empty_and_tiny_input():
    assert interface_classes_by_configuration(b"") == {}
    assert interface_classes_by_configuration(b"\x12") == {}


def test_input_beyond_the_bound_is_not_walked():
    filler = struct.pack("<BB", 255, 0x24) + bytes(253)  # class-specific padding records
    data = DEVICE + config(1, interface(0, 0x08)) + filler * (MAX_DESCRIPTORS_SIZE // 255 + 1)
    data += config(2, interface(0, 0xFF))
    assert interface_classes_by_configuration(data) == {1: ("08",)}


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_garbage_never_raises(data):
    result = interface_classes_by_configuration(data)
    assert all(len(c) == 2 for classes in result.values() for c in classes)
