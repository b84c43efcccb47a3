"""Read a flattened devicetree blob (DTB): a small, linear, bounded parser.

This replaced pyfdt 0.3, which is unfit for untrusted blobs and could not be
made safe by a guard short of parsing the blob first: every property append
rescans the node (160 KB of NOP tokens took 70 s), every property name is read
byte by byte from an unbounded offset (an 80 KB blob took 280 s and 130 MB),
it prints to stdout on unknown tokens, raises a dozen unrelated exception
types and its ``to_raw()`` is broken on Python 3. The format is small
(devicetree specification, chapter 5): here every token is read once, every
name search is bounded, and any departure from the format is one InputError.
"""

import re
import struct
from typing import Dict, List, Optional, Tuple

from nfd_hooks.errors import InputError

FDT_MAGIC = 0xD00DFEED
# arm64 refuses a DTB over 2 MiB (arch/arm64/include/asm/boot.h, MAX_FDT_SIZE);
# real ones are at most ~150 KiB. Larger files are refused before parsing.
MAX_BLOB_SIZE = 2 * 1024 * 1024
# Linux's unflatten_dt_nodes skips nodes deeper than this (FDT_MAX_DEPTH).
MAX_DEPTH = 64
# A node or property becomes a file name under /sys/firmware/devicetree: NAME_MAX.
MAX_NAME_LENGTH = 255

_HEADER = struct.Struct(">10I")  # through size_dt_struct (version 17)
_U32 = struct.Struct(">I")
_PROP = struct.Struct(">II")
_PRINTABLE_NAME = re.compile(rb"[\x20-\x2e\x30-\x7e]*")  # printable ASCII but '/'
_BEGIN_NODE, _END_NODE, _PROP_TOKEN, _NOP, _END = 1, 2, 3, 4, 9


class BlobNode:
    """A node of a parsed DTB, with its properties as raw bytes."""

    __slots__ = ("_name", "_children", "_properties")

    def __init__(self, name: str) -> None:
        self._name = name
        self._children: Dict[str, "BlobNode"] = {}
        self._properties: Dict[str, bytes] = {}

    @property
    def name(self) -> str:
        return self._name

    def children(self) -> List["BlobNode"]:
        return list(self._children.values())

    def property(self, name: str) -> Optional[bytes]:
        return self._properties.get(name)

    def property_names(self) -> List[str]:
        """Every property's name (capture compares a whole blob with the live tree)."""
        return list(self._properties)


class _Corrupt(Exception):
    """A departure from the format; parse_blob turns it into one InputError."""


def is_blob_name(raw: bytes) -> bool:
    """Whether a blob can hold ``raw`` as a node or property name (what ``_name_at`` accepts)."""
    return 0 < len(raw) <= MAX_NAME_LENGTH and _PRINTABLE_NAME.fullmatch(raw) is not None


def looks_like_blob(head: bytes) -> bool:
    """True when ``head`` starts with the FDT magic number."""
    return len(head) >= 4 and _U32.unpack_from(head)[0] == FDT_MAGIC


def parse_blob(data: bytes, origin: str) -> BlobNode:
    """Parse a whole DTB; raise InputError naming ``origin`` when it is not a sane one."""
    if not looks_like_blob(data):
        raise InputError(f"{origin}: not a devicetree blob (no FDT magic)")
    if len(data) < _HEADER.size:
        raise InputError(f"{origin}: truncated devicetree blob ({len(data)} bytes, its header alone is {_HEADER.size})")
    if len(data) > MAX_BLOB_SIZE:
        raise InputError(f"{origin}: over {MAX_BLOB_SIZE} bytes, too large for a devicetree blob")
    try:
        return _parse_structure(data, *_blocks(data))
    except _Corrupt as error:
        raise InputError(f"{origin}: corrupt devicetree blob ({error})") from None


def _blocks(data: bytes) -> Tuple[int, int, int, int]:
    """Start and end of the structure and strings blocks, checked against the header."""
    (_, total, off_struct, off_strings, off_rsvmap, version, last_comp, _, size_strings, size_struct) = (
        _HEADER.unpack_from(data)
    )
    if last_comp > 17 or version < 16:
        raise _Corrupt(f"unsupported version {version} (compatible with {last_comp}); 16 and 17 are read")
    if not _HEADER.size <= total <= len(data):
        raise _Corrupt(f"header says {total} bytes, file has {len(data)}")
    if version < 17:  # no size_dt_struct before version 17: the block runs to the end
        size_struct = total - off_struct if off_struct <= total else 0
    for what, start, size in (
        ("reserve map", off_rsvmap, 16),
        ("structure block", off_struct, size_struct),
        ("strings block", off_strings, size_strings),
    ):
        if start < _HEADER.size or start + size > total:
            raise _Corrupt(f"{what} at {start}+{size} outside {total} bytes")
    if off_struct % 4:
        raise _Corrupt(f"structure block at unaligned offset {off_struct}")
    return off_struct, off_struct + size_struct, off_strings, off_strings + size_strings


def _name_at(data: bytes, start: int, end: int, what: str) -> Tuple[str, int]:
    """The NUL-terminated printable-ASCII name at ``start``, and the offset after its NUL."""
    stop = data.find(b"\0", start, min(end, start + MAX_NAME_LENGTH + 1))
    if stop < 0:
        raise _Corrupt(f"{what} at {start} has no end within {MAX_NAME_LENGTH} bytes")
    if not _PRINTABLE_NAME.fullmatch(data, start, stop):
        raise _Corrupt(f"{what} at {start} is not a printable name without '/'")
    return data[start:stop].decode("ascii"), stop + 1


def _parse_structure(data: bytes, start: int, end: int, strings: int, strings_end: int) -> BlobNode:
    """Walk the structure block's tokens once; nodes nest on an explicit stack."""
    names: Dict[int, str] = {}  # property name offset -> name: each is read once
    stack: List[BlobNode] = []
    root: Optional[BlobNode] = None
    offset = start
    while True:
        if offset + 4 > end:
            raise _Corrupt("structure block ends without an END token")
        (token,) = _U32.unpack_from(data, offset)
        offset += 4
        if token == _BEGIN_NODE:
            name, offset = _name_at(data, offset, end, "node name")
            offset = (offset + 3) & ~3
            if not stack:
                if root is not None:
                    raise _Corrupt("a second root node")
                root = node = BlobNode("/")
                if name:
                    raise _Corrupt(f"root node named {name!r}")
            else:
                if not name or name in stack[-1]._children:
                    raise _Corrupt(f"empty or duplicate node name {name!r} in {stack[-1].name!r}")
                if len(stack) >= MAX_DEPTH:
                    raise _Corrupt(f"nodes nested deeper than {MAX_DEPTH}")
                node = stack[-1]._children[name] = BlobNode(name)
            stack.append(node)
        elif token == _END_NODE:
            if not stack:
                raise _Corrupt(f"END_NODE outside any node at {offset - 4}")
            stack.pop()
        elif token == _PROP_TOKEN:
            if not stack:
                raise _Corrupt(f"property outside any node at {offset - 4}")
            if offset + _PROP.size > end:
                raise _Corrupt("property header past the structure block")
            length, name_offset = _PROP.unpack_from(data, offset)
            offset += _PROP.size
            if length > end - offset:
                raise _Corrupt(f"property of {length} bytes past the structure block")
            if name_offset not in names:
                if name_offset >= strings_end - strings:
                    raise _Corrupt(f"property name offset {name_offset} outside the strings block")
                names[name_offset] = _name_at(data, strings + name_offset, strings_end, "property name")[0]
            name = names[name_offset]
            properties = stack[-1]._properties
            if not name or name in properties:
                raise _Corrupt(f"empty or duplicate property name {name!r} in {stack[-1].name!r}")
            properties[name] = data[offset:offset + length]
            offset = (offset + length + 3) & ~3
        elif token == _NOP:
            continue
        elif token == _END:
            if stack or root is None:
                raise _Corrupt("END token inside a node or before the root")
            return root
        else:
            raise _Corrupt(f"unknown token {token:#x} at {offset - 4}")
