"""Hypothesis strategies for the kubelet's gRPC messages, shared by the codec's
tests (tests/allocation/test_wire.py) and the driver's fuzz suite."""

from hypothesis import strategies as st

texts = st.text(max_size=12)


def instances(message, depth=0):
    """Strategy: instances of one of our message classes, every field drawn by its kind."""
    fields = {}
    for field in message.FIELDS:
        if field.kind == "map":
            values = instances(field.message, depth + 1) if field.message else texts
            fields[field.name] = st.dictionaries(texts, values, max_size=3)
            continue
        if field.kind == "message":
            one = instances(field.message, depth + 1)
        else:
            one = {"string": texts, "bool": st.booleans(), "int32": st.integers(-2**31, 2**31 - 1),
                   "int64": st.integers(-2**63, 2**63 - 1)}[field.kind]
        if field.repeated:
            fields[field.name] = st.lists(one, max_size=3)
        elif field.optional or field.kind == "message":
            fields[field.name] = st.none() | one
        else:
            fields[field.name] = one
    return st.fixed_dictionaries(fields).map(lambda values: message(**values))
