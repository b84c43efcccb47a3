"""Expand a DTB into a /proc/device-tree-style directory, for tests.

Written from the devicetree specification (chapter 5, "Flattened Devicetree
format"), independent of pyfdt and of nfd_hooks, so that the live-tree reader
is checked against a second reading of the same blob.
"""

import struct
from pathlib import Path

BEGIN_NODE, END_NODE, PROP, NOP, END = 1, 2, 3, 4, 9


def expand(blob: bytes, target: Path) -> Path:
    """Write one directory per node (named with its unit address), one file per
    property holding its raw bytes, and a ``name`` file per node, as Linux does."""
    magic, _, off_struct, off_strings = struct.unpack_from(">4I", blob)
    assert magic == 0xD00DFEED
    offset = off_struct
    stack = []
    while True:
        (token,) = struct.unpack_from(">I", blob, offset)
        offset += 4
        if token == BEGIN_NODE:
            end = blob.index(b"\0", offset)
            name = blob[offset:end].decode("ascii")
            offset = (end + 4) & ~3
            directory = target if not stack else stack[-1] / name
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "name").write_bytes(name.split("@")[0].encode() + b"\0" if stack else b"\0")
            stack.append(directory)
        elif token == END_NODE:
            stack.pop()
        elif token == PROP:
            length, name_offset = struct.unpack_from(">2I", blob, offset)
            offset += 8
            name_end = blob.index(b"\0", off_strings + name_offset)
            prop_name = blob[off_strings + name_offset:name_end].decode("ascii")
            (stack[-1] / prop_name).write_bytes(blob[offset:offset + length])
            offset = (offset + length + 3) & ~3
        elif token == NOP:
            continue
        elif token == END:
            return target
        else:
            raise ValueError(f"bad token {token} at {offset - 4}")
