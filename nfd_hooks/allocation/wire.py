"""The kubelet's gRPC messages, encoded and decoded by hand.

Why not generated code: protobuf's runtime (the pure-Python wheel is the only
one for armv7) is resident memory and import time on every node, for a few
dozen small messages of strings, bools and nested lists (bench/allocation_idle.py
measures a bare server with each). The wire format for those is a page of
code: varints and length-delimited fields.

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

import dataclasses
from typing import Any, ClassVar, Dict, List, NamedTuple, Optional, Tuple, Type, TypeVar, Union

# Wire types.
VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5

_WIRE = "wire"  # the key of a dataclass field's metadata that holds its Field


class DecodeError(ValueError):
    """The bytes are not a valid encoding of the message."""


class Field(NamedTuple):
    number: int
    name: str
    kind: str  # "string", "bool", "int32", "int64", "message", "map"
    repeated: bool = False
    message: Optional[Type["Message"]] = None  # for "message", and a map's values when they are messages
    optional: bool = False  # proto3 `optional`: None when absent


def field(number: int, kind: str, *, repeated: bool = False, message: Optional[Type["Message"]] = None,
          optional: bool = False) -> Any:
    """A message's field: a dataclass field (typed by its annotation, defaulting to its
    zero value) that carries its upstream number and kind, as betterproto does."""
    spec = Field(number, "", kind, repeated, message, optional)
    metadata = {_WIRE: spec}
    if kind == "map":
        return dataclasses.field(default_factory=dict, metadata=metadata)
    if repeated:
        return dataclasses.field(default_factory=list, metadata=metadata)
    return dataclasses.field(default=_zero(spec), metadata=metadata)


M = TypeVar("M", bound="Message")


class Message:
    """A message: each subclass is a dataclass whose attributes are ``field``s;
    ``FIELDS`` lists them in number order (filled in when the subclass is made)."""

    FIELDS: ClassVar[Tuple[Field, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found = [value.metadata[_WIRE]._replace(name=name) for name, value in vars(cls).items()
                 if isinstance(value, dataclasses.Field) and _WIRE in value.metadata]
        cls.FIELDS = tuple(sorted(found, key=lambda spec: spec.number))

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
    def decode(cls: Type[M], data: bytes) -> M:
        message = cls()
        by_number = {field.number: field for field in cls.FIELDS}
        for number, wire, raw in _fields(data):
            field = by_number.get(number)
            if field is None:
                continue
            if field.kind == "map":
                if not isinstance(raw, bytes):
                    raise DecodeError(f"{cls.__name__}.{field.name}: wrong wire type {wire}")
                key, value = _map_entry(raw, field)
                getattr(message, field.name)[key] = value
                continue
            if field.repeated and isinstance(raw, bytes) and field.kind in ("bool", "int32", "int64"):
                getattr(message, field.name).extend(_decode_value(cls, field, VARINT, item) for item in _packed(raw))
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


def _fields(data: bytes) -> List[Tuple[int, int, Union[int, bytes]]]:
    """(number, wire type, value) of each field: an int for varints and fixed, bytes for length-delimited."""
    found: List[Tuple[int, int, Union[int, bytes]]] = []
    position = 0
    while position < len(data):
        key, position = _read_varint(data, position)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise DecodeError("field number 0")
        value: Union[int, bytes]
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


def _decode_value(cls: type, field: Field, wire: int, raw: Union[int, bytes]) -> Any:
    if field.kind in ("string", "message"):
        if wire != LENGTH or not isinstance(raw, bytes):
            raise DecodeError(f"{cls.__name__}.{field.name}: wrong wire type {wire}")
        if field.message is not None:
            return field.message.decode(raw)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError(f"{cls.__name__}.{field.name}: not UTF-8") from None
    if wire != VARINT or not isinstance(raw, int):
        raise DecodeError(f"{cls.__name__}.{field.name}: wrong wire type {wire}")
    if field.kind == "bool":
        return raw != 0
    return _signed(raw, 32 if field.kind == "int32" else 64)


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
        if not isinstance(item, bytes):
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

@dataclasses.dataclass
class InfoRequest(Message):
    pass


@dataclasses.dataclass
class PluginInfo(Message):
    type: str = field(1, "string")
    name: str = field(2, "string")
    endpoint: str = field(3, "string")
    supported_versions: List[str] = field(4, "string", repeated=True)


@dataclasses.dataclass
class RegistrationStatus(Message):
    plugin_registered: bool = field(1, "bool")
    error: str = field(2, "string")


@dataclasses.dataclass
class RegistrationStatusResponse(Message):
    pass


# --- dra v1 (package k8s.io.kubelet.pkg.apis.dra.v1) ------------------------

@dataclasses.dataclass
class Claim(Message):
    namespace: str = field(1, "string")
    uid: str = field(2, "string")
    name: str = field(3, "string")


@dataclasses.dataclass
class Device(Message):
    request_names: List[str] = field(1, "string", repeated=True)
    pool_name: str = field(2, "string")
    device_name: str = field(3, "string")
    cdi_device_ids: List[str] = field(4, "string", repeated=True)
    share_id: Optional[str] = field(5, "string", optional=True)


@dataclasses.dataclass
class NodePrepareResourcesRequest(Message):
    claims: List[Claim] = field(1, "message", repeated=True, message=Claim)


@dataclasses.dataclass
class NodePrepareResourceResponse(Message):
    devices: List[Device] = field(1, "message", repeated=True, message=Device)
    error: str = field(2, "string")


@dataclasses.dataclass
class NodePrepareResourcesResponse(Message):
    claims: Dict[str, NodePrepareResourceResponse] = field(1, "map", message=NodePrepareResourceResponse)


@dataclasses.dataclass
class NodeUnprepareResourcesRequest(Message):
    claims: List[Claim] = field(1, "message", repeated=True, message=Claim)


@dataclasses.dataclass
class NodeUnprepareResourceResponse(Message):
    error: str = field(1, "string")


@dataclasses.dataclass
class NodeUnprepareResourcesResponse(Message):
    claims: Dict[str, NodeUnprepareResourceResponse] = field(1, "map", message=NodeUnprepareResourceResponse)


# --- deviceplugin v1beta1 (package v1beta1) ---------------------------------

@dataclasses.dataclass
class Empty(Message):
    pass


@dataclasses.dataclass
class DevicePluginOptions(Message):
    pre_start_required: bool = field(1, "bool")
    get_preferred_allocation_available: bool = field(2, "bool")


@dataclasses.dataclass
class RegisterRequest(Message):
    version: str = field(1, "string")
    endpoint: str = field(2, "string")
    resource_name: str = field(3, "string")
    options: Optional[DevicePluginOptions] = field(4, "message", message=DevicePluginOptions)


@dataclasses.dataclass
class NUMANode(Message):
    ID: int = field(1, "int64")


@dataclasses.dataclass
class TopologyInfo(Message):
    nodes: List[NUMANode] = field(1, "message", repeated=True, message=NUMANode)


@dataclasses.dataclass
class PluginDevice(Message):
    """deviceplugin v1beta1 ``Device`` (renamed here: dra v1 has a ``Device`` too)."""

    ID: str = field(1, "string")
    health: str = field(2, "string")
    topology: Optional[TopologyInfo] = field(3, "message", message=TopologyInfo)


@dataclasses.dataclass
class ListAndWatchResponse(Message):
    devices: List[PluginDevice] = field(1, "message", repeated=True, message=PluginDevice)


@dataclasses.dataclass
class ContainerAllocateRequest(Message):
    devices_ids: List[str] = field(1, "string", repeated=True)


@dataclasses.dataclass
class AllocateRequest(Message):
    container_requests: List[ContainerAllocateRequest] = field(1, "message", repeated=True, message=ContainerAllocateRequest)


@dataclasses.dataclass
class Mount(Message):
    container_path: str = field(1, "string")
    host_path: str = field(2, "string")
    read_only: bool = field(3, "bool")


@dataclasses.dataclass
class DeviceSpec(Message):
    container_path: str = field(1, "string")
    host_path: str = field(2, "string")
    permissions: str = field(3, "string")


@dataclasses.dataclass
class CDIDevice(Message):
    name: str = field(1, "string")


@dataclasses.dataclass
class ContainerAllocateResponse(Message):
    envs: Dict[str, str] = field(1, "map")
    mounts: List[Mount] = field(2, "message", repeated=True, message=Mount)
    devices: List[DeviceSpec] = field(3, "message", repeated=True, message=DeviceSpec)
    annotations: Dict[str, str] = field(4, "map")
    cdi_devices: List[CDIDevice] = field(5, "message", repeated=True, message=CDIDevice)


@dataclasses.dataclass
class AllocateResponse(Message):
    container_responses: List[ContainerAllocateResponse] = field(1, "message", repeated=True, message=ContainerAllocateResponse)


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
