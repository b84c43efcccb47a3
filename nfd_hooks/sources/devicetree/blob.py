"""Read a flattened devicetree blob (DTB) with pyfdt.

pyfdt does the structure parsing, but on its own it is unsafe for untrusted
input: it prints to stdout on unknown tags (which would corrupt ``show``), trusts
the header's offsets, raises a dozen unrelated exception types, and its
``to_raw()`` is broken on Python 3. So the blob is size-checked and its header
validated first, pyfdt runs with stdout captured, every failure becomes one
InputError, and raw property bytes are rebuilt here from pyfdt's typed values.
"""

import contextlib
import io
import struct
from typing import Dict, List, Optional

from nfd_hooks.errors import InputError

FDT_MAGIC = 0xD00DFEED
# Real DTBs are tens to hundreds of KiB; the kernel's own limit for a blob is
# far below this. Anything larger is not a DTB and is refused before parsing.
MAX_BLOB_SIZE = 8 * 1024 * 1024
_HEADER = struct.Struct(">10I")


class BlobNode:
    """A node of a parsed DTB, with its properties as raw bytes."""

    __slots__ = ("_name", "_children", "_properties")

    def __init__(self, name: str, children: List["BlobNode"], properties: Dict[str, bytes]) -> None:
        self._name = name
        self._children = children
        self._properties = properties

    @property
    def name(self) -> str:
        return self._name

    def children(self) -> List["BlobNode"]:
        return self._children

    def property(self, name: str) -> Optional[bytes]:
        return self._properties.get(name)

    def property_names(self) -> List[str]:
        """Every property's name (capture compares a whole blob with the live tree)."""
        return list(self._properties)


def looks_like_blob(head: bytes) -> bool:
    """True when ``head`` starts with the FDT magic number."""
    return len(head) >= 4 and struct.unpack_from(">I", head)[0] == FDT_MAGIC


def parse_blob(data: bytes, origin: str) -> BlobNode:
    """Parse a whole DTB; raise InputError naming ``origin`` when it is not a sane one."""
    _check_header(data, origin)
    from pyfdt.pyfdt import FdtBlobParse  # lazy: pyfdt is only needed for blobs

    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured):
            root = FdtBlobParse(io.BytesIO(data)).to_fdt().get_rootnode()
        if captured.getvalue():
            raise ValueError(captured.getvalue().strip().splitlines()[0])
        if root is None:
            raise ValueError("no root node")
        return _convert(root)
    except InputError:
        raise
    except Exception as error:  # pyfdt raises bare Exception, struct.error, TypeError, ...
        raise InputError(f"{origin}: corrupt devicetree blob ({_describe(error)})") from None


def _check_header(data: bytes, origin: str) -> None:
    """Refuse blobs whose header points outside the data, before pyfdt seeks there."""
    if len(data) < _HEADER.size or not looks_like_blob(data):
        raise InputError(f"{origin}: not a devicetree blob (no FDT magic)")
    (_, total, off_struct, off_strings, off_rsvmap, version, _, _, _, _) = _HEADER.unpack_from(data)
    if total > len(data) or total < _HEADER.size:
        raise InputError(f"{origin}: corrupt devicetree blob (header says {total} bytes, file has {len(data)})")
    if not 1 <= version <= 17:
        raise InputError(f"{origin}: unsupported devicetree blob version {version}")
    for offset in (off_struct, off_strings, off_rsvmap):
        if offset >= total:
            raise InputError(f"{origin}: corrupt devicetree blob (offset {offset} beyond {total} bytes)")


def _convert(root: object) -> BlobNode:
    """Turn pyfdt's tree into BlobNodes, iteratively (no recursion limit)."""
    from pyfdt.pyfdt import FdtNode, FdtProperty

    converted: Dict[int, BlobNode] = {}
    pending = [(root, False)]
    while pending:
        node, done = pending.pop()
        subnodes = [item for item in node if isinstance(item, FdtNode)]
        if not done:
            pending.append((node, True))
            pending.extend((sub, False) for sub in subnodes)
            continue
        properties = {
            item.get_name(): _raw_value(item) for item in node if isinstance(item, FdtProperty)
        }
        children = [converted.pop(id(sub)) for sub in subnodes]
        name = "/" if node is root else node.get_name()
        converted[id(node)] = BlobNode(name, children, properties)
    return converted[id(root)]


def _raw_value(prop: object) -> bytes:
    """The property's bytes as they were in the blob (pyfdt's to_raw is broken on Python 3)."""
    from pyfdt.pyfdt import FdtPropertyBytes, FdtPropertyStrings, FdtPropertyWords

    if isinstance(prop, FdtPropertyStrings):
        return b"".join(s.encode("ascii") + b"\0" for s in prop.strings)
    if isinstance(prop, FdtPropertyWords):
        return struct.pack(f">{len(prop.words)}I", *prop.words)
    if isinstance(prop, FdtPropertyBytes):
        return struct.pack(f"{len(prop.bytes)}b", *prop.bytes)
    return b""


def _describe(error: Exception) -> str:
    """A short one-line reason from whatever pyfdt raised."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
