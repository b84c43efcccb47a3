"""Build a DTB from a node tree, for generated test input.

Written from the devicetree specification (chapter 5, version 17 layout:
header, memory reservation map, structure block, strings block), independent
of nfd_hooks' parser, so generated trees test it rather than mirror it.
"""

import struct
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

MAGIC = 0xD00DFEED
BEGIN_NODE, END_NODE, PROP, NOP, END = 1, 2, 3, 4, 9
HEADER_SIZE = 40
# Header fields by index, as struct-unpacked from the first 40 bytes.
HEADER_FIELDS = (
    "magic", "totalsize", "off_dt_struct", "off_dt_strings", "off_mem_rsvmap",
    "version", "last_comp_version", "boot_cpuid_phys", "size_dt_strings", "size_dt_struct",
)


@dataclass
class Node:
    """A devicetree node: ``name`` with unit address, raw property values, subnodes."""

    name: str
    properties: Dict[str, bytes] = field(default_factory=dict)
    children: List["Node"] = field(default_factory=list)


def _padded(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def build(root: Node, nops: int = 0) -> bytes:
    """The DTB of ``root`` (whose own name is ignored: the root is unnamed), with
    ``nops`` NOP tokens after each node's start, as fdtput leaves in place of
    what it deletes."""
    strings: Dict[str, int] = {}
    pool = bytearray()
    body = bytearray()
    pending: List[Tuple[Node, bool]] = [(root, False)]
    while pending:
        node, closing = pending.pop()
        if closing:
            body += struct.pack(">I", END_NODE)
            continue
        name = b"" if node is root else node.name.encode("ascii")
        body += struct.pack(">I", BEGIN_NODE) + _padded(name + b"\0") + struct.pack(">I", NOP) * nops
        for prop_name, value in node.properties.items():
            if prop_name not in strings:
                strings[prop_name] = len(pool)
                pool += prop_name.encode("ascii") + b"\0"
            body += struct.pack(">3I", PROP, len(value), strings[prop_name]) + _padded(value)
        pending.append((node, True))
        pending.extend((child, False) for child in reversed(node.children))
    body += struct.pack(">I", END)
    off_rsvmap = HEADER_SIZE
    off_struct = off_rsvmap + 16  # one all-zero entry ends the reservation map
    off_strings = off_struct + len(body)
    total = off_strings + len(pool)
    header = struct.pack(
        ">10I", MAGIC, total, off_struct, off_strings, off_rsvmap, 17, 16, 0, len(pool), len(body)
    )
    return header + bytes(16) + bytes(body) + bytes(pool)


def header(blob: bytes) -> Dict[str, int]:
    """The header fields of ``blob`` by name."""
    return dict(zip(HEADER_FIELDS, struct.unpack_from(">10I", blob)))
