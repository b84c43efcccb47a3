"""The kubelet's gRPC messages, encoded and decoded by hand.

Why not generated code: protobuf's runtime (the pure-Python wheel is the only
one for armv7) costs several MiB of resident memory and tens of milliseconds
of import on every node, for eleven small messages of strings, bools and
nested lists (bench/allocation_idle.py measures both). The wire format for
those is a page of code: varints and length-delimited fields.

Each message lists its fields with the numbers of the upstream API, whose
.proto files live in the Go module k8s.io/kubelet v0.35.3:

    pkg/apis/pluginregistration/v1/api.proto   package pluginregistration
    pkg/apis/dra/v1/api.proto                  package k8s.io.kubelet.pkg.apis.dra.v1
    pkg/apis/deviceplugin/v1beta1/api.proto    package v1beta1

tests/allocation/test_wire.py fetches those files (``go mod download``) and
compares every message and field here against them, name, number, type and
repetition, so a mistake here cannot pass.

Decoding follows proto3: unknown fields are skipped, a missing field is its
zero value, a repeated scalar may come packed or not. Anything malformed is a
``DecodeError``: a truncated varint or field, a wire type that does not fit
the field, a group, text that is not UTF-8.
"""

from __future__ import annotations

from typing import Any, ClassVar, Dict, List, NamedTuple, Optional, Tuple, Type

# Wire types.
VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5
SCALARS = ("string", "bool", "int32", "int64")


class DecodeError(ValueError):
    """The bytes are not a valid encoding of the message."""


class Field(NamedTuple):
    number: int
    name: str
    kind: str  # "string", "bool", "int32", "int64", "message", "map"
    repeated: bool = False
    message: Optional[Type["Message"]] = None  # for "message", and a map's values when they are messages
    optional: bool = False  # proto3 `optional`: None when absent


class Message:
    """A message: ``FIELDS`` in number order; attributes by field name."""

    FIELDS: ClassVar[Tuple[Field, ...]] = ()

    def __init__(self, **values: Any) -> None:
        names = {field.name for field in self.FIELDS}
        unknown = set(values) - names
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {sorted(unknown)[0]!r}")
        for field in self.FIELDS:
            setattr(self, field.name, values[field.name] if field.name in values else _zero(field))

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(
            getattr(self, f.name) == getattr(other, f.name) for f in self.FIELDS
        )

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in self.FIELDS if getattr(self, f.name) != _zero(f))
        return f"{type(self).__name__}({shown})"

    def encode(self) -> bytes:
        out = bytearray()
        for field in self.FIELDS:
            value = getattr(self, field.name)
            if field.kind == "map":
                for key in sorted(value):
                    item = value[key]
                    payload = item.encode() if field.message else str(item).encode()
                    entry = _key(1, LENGTH) + _delimited(str(key).encode()) + _key(2, LENGTH) + _delimited(payload)
                    out += _key(field.number, LENGTH) + _delimited(entry)
                continue
            for item in (value if field.repeated else [value]):
                if item is None or (not field.repeated and not field.optional and item == _zero(field)):
                    continue
                out += _encode_value(field, item)
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> "Message":
        message = cls()
        by_number = {field.number: field for field in cls.FIELDS}
        for number, wire, raw in _fields(data):
            field = by_number.get(number)
            if field is None:
                continue
            if field.kind == "map":
                if wire != LENGTH:
                    raise DecodeError(f"{cls.__name__}.{field.name}: wrong wire type {wire}")
                key, value = _map_entry(raw, field)
                getattr(message, field.name)[key] = value
                continue
            if field.repeated and wire == LENGTH and field.kind in ("bool", "int32", "int64"):
                getattr(message, field.name).extend(_packed(raw))
                continue
            value = _decode_value(cls, field, wire, raw)
            if field.repeated:
                getattr(message, field.name).append(value)
            else:
                setattr(message, field.name, value)
        return message


def _zero(field: Field) -> Any:
    if field.kind == "map":
        return {}
    if field.repeated:
        return []
    if field.optional or field.kind == "message":
        return None
    return {"string": "", "bool": False, "int32": 0, "int64": 0}[field.kind]


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # two's complement, as int32/int64 are on the wire
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _delimited(payload: bytes) -> bytes:
    return _varint(len(payload)) + payload


def _encode_value(field: Field, value: Any) -> bytes:
    if field.kind == "string":
        return _key(field.number, LENGTH) + _delimited(str(value).encode())
    if field.kind == "bool":
        return _key(field.number, VARINT) + _varint(1 if value else 0)
    if field.kind in ("int32", "int64"):
        return _key(field.number, VARINT) + _varint(int(value))
    return _key(field.number, LENGTH) + _delimited(value.encode())


def _read_varint(data: bytes, position: int) -> Tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(data):
            raise DecodeError("truncated varint")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
        if shift >= 70:
            raise DecodeError("varint longer than 10 bytes")


def _fields(data: bytes) -> List[Tuple[int, int, Any]]:
    """(number, wire type, value) of each field: an int for varints and fixed, bytes for length-delimited."""
    found = []
    position = 0
    while position < len(data):
        key, position = _read_varint(data, position)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise DecodeError("field number 0")
        if wire == VARINT:
            value, position = _read_varint(data, position)
        elif wire == LENGTH:
            size, position = _read_varint(data, position)
            if position + size > len(data):
                raise DecodeError("truncated length-delimited field")
            value, position = bytes(data[position:position + size]), position + size
        elif wire in (FIXED64, FIXED32):
            width = 8 if wire == FIXED64 else 4
            if position + width > len(data):
                raise DecodeError("truncated fixed-width field")
            value, position = int.from_bytes(data[position:position + width], "little"), position + width
        else:
            raise DecodeError(f"wire type {wire} (groups are not proto3)")
        found.append((number, wire, value))
    return found


def _decode_value(cls: type, field: Field, wire: int, raw: Any) -> Any:
    expected = LENGTH if field.kind in ("string", "message") else VARINT
    if wire != expected:
        raise DecodeError(f"{cls.__name__}.{field.name}: wrong wire type {wire}")
    if field.kind == "string":
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError(f"{cls.__name__}.{field.name}: not UTF-8") from None
    if field.kind == "bool":
        return raw != 0
    if field.kind in ("int32", "int64"):
        return _signed(raw, 32 if field.kind == "int32" else 64)
    assert field.message is not None
    return field.message.decode(raw)


def _signed(value: int, bits: int) -> int:
    value &= (1 << 64) - 1
    if value >= 1 << 63:
        value -= 1 << 64
    if bits == 32:
        value = (value + (1 << 31)) % (1 << 32) - (1 << 31)
    return value


def _packed(raw: bytes) -> List[int]:
    values, position = [], 0
    while position < len(raw):
        value, position = _read_varint(raw, position)
        values.append(value)
    return values


def _map_entry(raw: bytes, field: Field) -> Tuple[str, Any]:
    key, value = "", (field.message() if field.message else "")
    for number, wire, item in _fields(raw):
        if wire != LENGTH:
            raise DecodeError(f"map {field.name}: wrong wire type {wire}")
        try:
            if number == 1:
                key = item.decode("utf-8")
            elif number == 2:
                value = field.message.decode(item) if field.message else item.decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError(f"map {field.name}: not UTF-8") from None
    return key, value


# --- pluginregistration v1 (package pluginregistration) ---------------------

class InfoRequest(Message):
    FIELDS = ()


class PluginInfo(Message):
    FIELDS = (
        Field(1, "type", "string"),
        Field(2, "name", "string"),
        Field(3, "endpoint", "string"),
        Field(4, "supported_versions", "string", repeated=True),
    )


class RegistrationStatus(Message):
    FIELDS = (Field(1, "plugin_registered", "bool"), Field(2, "error", "string"))


class RegistrationStatusResponse(Message):
    FIELDS = ()


# --- dra v1 (package k8s.io.kubelet.pkg.apis.dra.v1) ------------------------

class Claim(Message):
    FIELDS = (Field(1, "namespace", "string"), Field(2, "uid", "string"), Field(3, "name", "string"))


class Device(Message):
    FIELDS = (
        Field(1, "request_names", "string", repeated=True),
        Field(2, "pool_name", "string"),
        Field(3, "device_name", "string"),
        Field(4, "cdi_device_ids", "string", repeated=True),
        Field(5, "share_id", "string", optional=True),
    )


class NodePrepareResourcesRequest(Message):
    FIELDS = (Field(1, "claims", "message", repeated=True, message=Claim),)


class NodePrepareResourceResponse(Message):
    FIELDS = (Field(1, "devices", "message", repeated=True, message=Device), Field(2, "error", "string"))


class NodePrepareResourcesResponse(Message):
    FIELDS = (Field(1, "claims", "map", message=NodePrepareResourceResponse),)


class NodeUnprepareResourcesRequest(Message):
    FIELDS = (Field(1, "claims", "message", repeated=True, message=Claim),)


class NodeUnprepareResourceResponse(Message):
    FIELDS = (Field(1, "error", "string"),)


class NodeUnprepareResourcesResponse(Message):
    FIELDS = (Field(1, "claims", "map", message=NodeUnprepareResourceResponse),)


# --- deviceplugin v1beta1 (package v1beta1) ---------------------------------

class Empty(Message):
    FIELDS = ()


class DevicePluginOptions(Message):
    FIELDS = (Field(1, "pre_start_required", "bool"), Field(2, "get_preferred_allocation_available", "bool"))


class RegisterRequest(Message):
    FIELDS = (
        Field(1, "version", "string"),
        Field(2, "endpoint", "string"),
        Field(3, "resource_name", "string"),
        Field(4, "options", "message", message=DevicePluginOptions),
    )


class NUMANode(Message):
    FIELDS = (Field(1, "ID", "int64"),)


class TopologyInfo(Message):
    FIELDS = (Field(1, "nodes", "message", repeated=True, message=NUMANode),)


class PluginDevice(Message):
    """deviceplugin v1beta1 ``Device`` (renamed here: dra v1 has a ``Device`` too)."""

    FIELDS = (
        Field(1, "ID", "string"),
        Field(2, "health", "string"),
        Field(3, "topology", "message", message=TopologyInfo),
    )


class ListAndWatchResponse(Message):
    FIELDS = (Field(1, "devices", "message", repeated=True, message=PluginDevice),)


class ContainerAllocateRequest(Message):
    FIELDS = (Field(1, "devices_ids", "string", repeated=True),)


class AllocateRequest(Message):
    FIELDS = (Field(1, "container_requests", "message", repeated=True, message=ContainerAllocateRequest),)


class Mount(Message):
    FIELDS = (Field(1, "container_path", "string"), Field(2, "host_path", "string"), Field(3, "read_only", "bool"))


class DeviceSpec(Message):
    FIELDS = (Field(1, "container_path", "string"), Field(2, "host_path", "string"), Field(3, "permissions", "string"))


class CDIDevice(Message):
    FIELDS = (Field(1, "name", "string"),)


class ContainerAllocateResponse(Message):
    FIELDS = (
        Field(1, "envs", "map"),
        Field(2, "mounts", "message", repeated=True, message=Mount),
        Field(3, "devices", "message", repeated=True, message=DeviceSpec),
        Field(4, "annotations", "map"),
        Field(5, "cdi_devices", "message", repeated=True, message=CDIDevice),
    )


class AllocateResponse(Message):
    FIELDS = (Field(1, "container_responses", "message", repeated=True, message=ContainerAllocateResponse),)


# Upstream message name -> our class, per .proto file (tests/allocation/test_wire.py).
UPSTREAM: Dict[str, Dict[str, Type[Message]]] = {
    "pluginregistration/v1/api.proto": {
        "InfoRequest": InfoRequest, "PluginInfo": PluginInfo,
        "RegistrationStatus": RegistrationStatus, "RegistrationStatusResponse": RegistrationStatusResponse,
    },
    "dra/v1/api.proto": {
        "Claim": Claim, "Device": Device,
        "NodePrepareResourcesRequest": NodePrepareResourcesRequest,
        "NodePrepareResourceResponse": NodePrepareResourceResponse,
        "NodePrepareResourcesResponse": NodePrepareResourcesResponse,
        "NodeUnprepareResourcesRequest": NodeUnprepareResourcesRequest,
        "NodeUnprepareResourceResponse": NodeUnprepareResourceResponse,
        "NodeUnprepareResourcesResponse": NodeUnprepareResourcesResponse,
    },
    "deviceplugin/v1beta1/api.proto": {
        "Empty": Empty, "DevicePluginOptions": DevicePluginOptions, "RegisterRequest": RegisterRequest,
        "NUMANode": NUMANode, "TopologyInfo": TopologyInfo, "Device": PluginDevice,
        "ListAndWatchResponse": ListAndWatchResponse, "ContainerAllocateRequest": ContainerAllocateRequest,
        "AllocateRequest": AllocateRequest, "Mount": Mount, "DeviceSpec": DeviceSpec, "CDIDevice": CDIDevice,
        "ContainerAllocateResponse": ContainerAllocateResponse, "AllocateResponse": AllocateResponse,
    },
}

# gRPC method paths: "/<proto package>.<service>/<method>" (the api_grpc.pb.go FullMethodName constants).
REGISTRATION = "/pluginregistration.Registration/"
DRA = "/k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin/"
DEVICE_PLUGIN_REGISTRATION = "/v1beta1.Registration/"
DEVICE_PLUGIN = "/v1beta1.DevicePlugin/"
