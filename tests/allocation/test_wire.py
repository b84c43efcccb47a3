"""Our hand-written messages against the kubelet's own .proto files (k8s.io/kubelet v0.35.3).

Field by field (name, number, type, repetition), then bytes: what we encode the
generated upstream classes parse to the same values, and what they encode we
decode to the same values, for messages hypothesis makes up.
"""

import pytest
from google.protobuf.descriptor import FieldDescriptor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nfd_hooks.allocation import wire
from tests.allocation.messages import instances
from tests.allocation.upstream import PROTOS

KINDS = {
    FieldDescriptor.TYPE_STRING: "string", FieldDescriptor.TYPE_BOOL: "bool",
    FieldDescriptor.TYPE_INT32: "int32", FieldDescriptor.TYPE_INT64: "int64",
}


def upstream_kind(field):
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return "map" if field.message_type.GetOptions().map_entry else "message"
    return KINDS.get(field.type, f"type {field.type}")


@pytest.mark.parametrize("proto", PROTOS)
def test_every_field_matches_upstream(upstream, proto):
    messages = upstream[proto][0].DESCRIPTOR.message_types_by_name
    for name, ours in wire.UPSTREAM[proto].items():
        assert name in messages, f"{proto} has no message {name}"
        theirs = {f.number: f for f in messages[name].fields}
        assert {f.number for f in ours.FIELDS} <= set(theirs), f"{name}: a field number upstream lacks"
        for field in ours.FIELDS:
            up = theirs[field.number]
            assert field.name == up.name, f"{name}.{field.number}"
            assert field.kind == upstream_kind(up), f"{name}.{field.name}"
            repeated = up.is_repeated and field.kind != "map"
            assert field.repeated == repeated, f"{name}.{field.name}"
            if field.kind == "message" or (field.kind == "map" and field.message):
                target = up.message_type if field.kind == "message" else up.message_type.fields_by_name["value"].message_type
                assert wire.UPSTREAM[proto][target.name] is field.message, f"{name}.{field.name}"
            assert field.optional == bool(up.has_presence and field.kind != "message" and not up.is_repeated)


@pytest.mark.parametrize("proto", ["pluginregistration/v1/api.proto", "dra/v1/api.proto"])
def test_every_message_of_the_apis_we_serve_is_ours(upstream, proto):
    """Registration and DRA are served whole: no message of theirs is missing here."""
    assert set(upstream[proto][0].DESCRIPTOR.message_types_by_name) == set(wire.UPSTREAM[proto])


def test_method_paths_are_upstream_services(upstream):
    services = {
        wire.REGISTRATION: upstream["pluginregistration/v1/api.proto"][0].DESCRIPTOR.services_by_name["Registration"],
        wire.DRA: upstream["dra/v1/api.proto"][0].DESCRIPTOR.services_by_name["DRAPlugin"],
        wire.DEVICE_PLUGIN_REGISTRATION: upstream["deviceplugin/v1beta1/api.proto"][0].DESCRIPTOR.services_by_name["Registration"],
        wire.DEVICE_PLUGIN: upstream["deviceplugin/v1beta1/api.proto"][0].DESCRIPTOR.services_by_name["DevicePlugin"],
    }
    for prefix, service in services.items():
        assert prefix == f"/{service.full_name}/"


ALL = [(proto, name, ours) for proto, messages in wire.UPSTREAM.items() for name, ours in messages.items()]


def to_python(value):
    """An upstream message as plain values, shaped like ours."""
    if hasattr(value, "DESCRIPTOR"):
        out = {}
        for field in value.DESCRIPTOR.fields:
            item = getattr(value, field.name)
            if upstream_kind(field) == "map":
                out[field.name] = {k: to_python(v) for k, v in item.items()}
            elif field.is_repeated:
                out[field.name] = [to_python(v) for v in item]
            elif field.has_presence and not value.HasField(field.name):
                out[field.name] = None
            else:
                out[field.name] = to_python(item)
        return out
    return value


def ours_to_python(value):
    if isinstance(value, wire.Message):
        return {f.name: ours_to_python(getattr(value, f.name)) for f in value.FIELDS}
    if isinstance(value, dict):
        return {k: ours_to_python(v) for k, v in value.items()}
    if isinstance(value, list):
        return [ours_to_python(v) for v in value]
    return value


@pytest.mark.parametrize("proto,name,ours", ALL, ids=[f"{p.split('/')[0]}.{n}" for p, n, _ in ALL])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_bytes_agree_with_upstream_both_ways(upstream, proto, name, ours, data):
    message = data.draw(instances(ours))
    theirs_class = getattr(upstream[proto][0], name)
    theirs = theirs_class.FromString(message.encode())
    assert to_python(theirs) == ours_to_python(message)
    assert ours_to_python(ours.decode(theirs.SerializeToString())) == ours_to_python(message)
