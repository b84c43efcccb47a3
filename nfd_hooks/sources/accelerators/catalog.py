"""The accelerator catalog: TOML data, validated on load into ``Accelerator`` records.

The shipped ``catalog.toml`` is read first; each ``--catalog FILE`` then adds
entries or replaces those of the same id. A broken file is an InputError of one
line, ``FILE:LINE: reason``, so a typo in a user's catalog never yields labels
that silently match nothing.

A little over 300 lines, on purpose: the records and the checks that make them
are the catalog's one schema, read side by side (a field's record comment and
its check); split, each half would only make sense with the other open.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from nfd_hooks.errors import InputError
from nfd_hooks.nfdfile import label_problem
from nfd_hooks.safe_read import read_regular_file

BUILTIN_NAME = "catalog.toml"
TOP_KEY = "accelerators"
KINDS = ("usb", "pci", "devicetree")
ENTRY_KEYS = ("name",) + KINDS + ("ready", "compat")
READY_KEYS = ("usb", "driver", "device-class")
# A catalog is a few kilobytes; anything far larger is not one.
MAX_CATALOG_SIZE = 1024 * 1024
# The longest label name made from an id is "<id>.ready-count"; a label name is at most 63 characters.
MAX_ID_LENGTH = 63 - len(".ready-count")

_ID_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
_HEX_PAIR_RE = re.compile(r"([0-9A-Fa-f]{4}):([0-9A-Fa-f]{4})\Z")
# Kernel driver and device class names as sysfs shows them (xhci_hcd, apex, hailo_chardev).
_KERNEL_NAME_RE = re.compile(r"[A-Za-z0-9][-A-Za-z0-9_.]*\Z")
# Compiled on first use (re caches it): only a broken catalog needs it.
_TOML_POSITION = r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)\Z"


class Readiness(NamedTuple):
    """When a matched device is usable, not merely present.

    ``usb``: the USB ids a device has once usable (its firmware loaded);
    ``drivers``: kernel drivers whose binding makes a PCI function or the
    device of a devicetree node usable; ``device_class``: if set, that device
    must also have a device node of this class present under the dev root.
    """

    usb: Tuple[Tuple[str, str], ...] = ()
    drivers: Tuple[str, ...] = ()
    device_class: Optional[str] = None


class Accelerator(NamedTuple):
    """One kind of accelerator and everything that identifies it.

    ``usb`` and ``pci`` hold lowercase ``(vendor, product)`` hex pairs;
    ``devicetree`` exact compatible strings; ``ready`` when a match is usable
    (None: never said); ``compat`` the labels a vendor's device plugin waits
    for, written only when asked; ``origin`` the file it came from.
    A NamedTuple for start-up time (see ``nfd_hooks.features.Feature``).
    """

    id: str
    name: str
    usb: Tuple[Tuple[str, str], ...] = ()
    pci: Tuple[Tuple[str, str], ...] = ()
    devicetree: Tuple[str, ...] = ()
    origin: str = BUILTIN_NAME
    ready: Optional[Readiness] = None
    compat: Tuple[Tuple[str, str], ...] = ()


# The shipped catalog once parsed, and the last catalog loaded, by the text of its
# user files: ``watch`` loads it at every rescan, and parses again only what changed.
_shipped: Optional[Dict[str, Accelerator]] = None
_loaded: Dict[Tuple[Tuple[str, str], ...], Dict[str, Accelerator]] = {}


def load_catalog(extra: Sequence[Path] = ()) -> Dict[str, Accelerator]:
    """The shipped catalog, then each file in ``extra`` in order, by id.

    The files are read at every call, so an edited one counts from the next
    scan on; they are parsed once per content. A new dict each time: callers may
    change it.
    """
    texts = tuple((str(path), _read(path)) for path in extra)
    catalog = _loaded.get(texts)
    if catalog is None:
        catalog = dict(_builtin())
        for origin, text in texts:
            catalog.update(parse_catalog(text, origin))
        _check_compat(catalog)
        _loaded.clear()
        _loaded[texts] = catalog
    return dict(catalog)


def _builtin() -> Dict[str, Accelerator]:
    """The shipped catalog, parsed once per process."""
    global _shipped
    if _shipped is None:
        # Beside this module, read as a file: importlib.resources would load zipfile and
        # tempfile (~6 ms a start) for a package that is never installed zipped.
        _shipped = parse_catalog(Path(__file__).with_name(BUILTIN_NAME).read_text(encoding="utf-8"), BUILTIN_NAME)
    return _shipped


def _check_compat(catalog: Mapping[str, Accelerator]) -> None:
    """Two entries may declare one compatibility label only with one value:
    otherwise a node with both would get a label whose value depends on order."""
    seen: Dict[str, Tuple[str, Accelerator]] = {}
    for ident in sorted(catalog):
        entry = catalog[ident]
        for name, value in entry.compat:
            first = seen.setdefault(name, (value, entry))
            if first[0] != value:
                raise InputError(
                    f"{entry.origin}: accelerator {ident!r}: compat label {name!r}={value!r} contradicts "
                    f"{first[1].id!r} ({first[1].origin}), which sets it to {first[0]!r}"
                )


def _read(path: Path) -> str:
    """A user's catalog file as text; every failure is one InputError line."""
    try:
        data = read_regular_file(str(path), MAX_CATALOG_SIZE + 1)  # a FIFO is refused, not waited on
    except OSError as error:
        raise InputError(f"{path}: cannot read catalog: {error.strerror}") from None
    if len(data) > MAX_CATALOG_SIZE:
        raise InputError(f"{path}: over {MAX_CATALOG_SIZE} bytes, too large for a catalog")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise InputError(f"{path}:{line}: not UTF-8 text") from None


def parse_catalog(text: str, origin: str) -> Dict[str, Accelerator]:
    """Parse and validate one catalog document; ``origin`` names it in errors."""
    document = _parse_toml(text, origin)
    unknown = sorted(set(document) - {TOP_KEY})
    if unknown:
        raise _error(origin, text, None, unknown[0], f"unknown top-level key {unknown[0]!r} (expected [{TOP_KEY}.<id>] tables)")
    entries = document.get(TOP_KEY, {})
    if not isinstance(entries, dict):
        raise _error(origin, text, None, TOP_KEY, f"{TOP_KEY!r} must be a table of [{TOP_KEY}.<id>] entries")
    return {ident: _entry(ident, value, origin, text) for ident, value in entries.items()}


def _parse_toml(text: str, origin: str) -> Dict[str, Any]:
    """TOML to a dict; a syntax error becomes ``ORIGIN:LINE: reason (column C)``."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    try:
        document: Dict[str, Any] = tomllib.loads(text)
        return document
    except tomllib.TOMLDecodeError as error:
        message = str(error).splitlines()[0] if str(error) else "invalid TOML"
        match = re.search(_TOML_POSITION, message)
        reason = message[: match.start()] if match else message
        if match and match.group(1):
            line, where = int(match.group(1)), f" (column {match.group(2)})"
        else:
            line, where = max(1, text.count("\n") + (0 if text.endswith("\n") else 1)), ""
        raise InputError(f"{origin}:{line}: invalid TOML: {reason}{where}") from None


def _entry(ident: str, value: Any, origin: str, text: str) -> Accelerator:
    """Validate one ``[accelerators.<id>]`` table."""
    if not _ID_RE.match(ident) or len(ident) > MAX_ID_LENGTH:
        raise _error(
            origin, text, ident, None,
            f"accelerator id {ident!r} must be 1 to {MAX_ID_LENGTH} of a-z, 0-9 and '-', "
            "starting and ending with a letter or digit",
        )
    if not isinstance(value, dict):
        raise _error(origin, text, ident, None, f"accelerator {ident!r} must be a table")
    unknown = sorted(set(value) - set(ENTRY_KEYS))
    if unknown:
        raise _error(
            origin, text, ident, unknown[0],
            f"accelerator {ident!r}: unknown key {unknown[0]!r} (expected {', '.join(ENTRY_KEYS)})",
        )
    name = value.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _error(origin, text, ident, "name", f"accelerator {ident!r}: 'name' must be a non-empty string")
    usb = _pairs(value, "usb", ident, origin, text)
    pci = _pairs(value, "pci", ident, origin, text)
    devicetree = _strings(value, "devicetree", ident, origin, text)
    if not (usb or pci or devicetree):
        raise _error(origin, text, ident, None, f"accelerator {ident!r} lists no usb, pci or devicetree ids")
    ready = _readiness(value, usb, ident, origin, text) if "ready" in value else None
    compat = _compat(value, ident, origin, text)
    return Accelerator(ident, name.strip(), usb, pci, devicetree, origin, ready, compat)


def _readiness(value: Mapping[str, Any], usb: Tuple[Tuple[str, str], ...], ident: str, origin: str, text: str) -> Readiness:
    """Validate ``[accelerators.<id>.ready]``: its usb ids are some of the entry's own."""
    table = value["ready"]
    where = f"{ident}.ready"
    if not isinstance(table, dict):
        raise _error(origin, text, ident, "ready", f"accelerator {ident!r}: 'ready' must be a table")
    unknown = sorted(set(table) - set(READY_KEYS))
    if unknown:
        raise _error(
            origin, text, where, unknown[0],
            f"accelerator {ident!r}: unknown ready key {unknown[0]!r} (expected {', '.join(READY_KEYS)})",
        )
    ready_usb = _pairs(table, "usb", ident, origin, text, where)
    strange = [f"{v}:{p}" for v, p in ready_usb if (v, p) not in usb]
    if strange:
        raise _error(origin, text, where, "usb", f"accelerator {ident!r}: ready usb id {strange[0]!r} is not one of its usb ids")
    drivers = tuple(dict.fromkeys(_kernel_name(item, "driver", ident, origin, text) for item in _list(table, "driver", ident, origin, text, where)))
    device_class = table.get("device-class")
    if device_class is not None:
        device_class = _kernel_name(device_class, "device-class", ident, origin, text)
        if not drivers:
            raise _error(origin, text, where, "device-class", f"accelerator {ident!r}: ready 'device-class' needs a 'driver'")
    if not (ready_usb or drivers):
        raise _error(origin, text, where, None, f"accelerator {ident!r}: 'ready' lists no usb ids and no driver")
    return Readiness(ready_usb, drivers, device_class)


def _kernel_name(item: Any, key: str, ident: str, origin: str, text: str) -> str:
    if not isinstance(item, str) or not _KERNEL_NAME_RE.match(item) or len(item) > 64:
        raise _error(
            origin, text, f"{ident}.ready", key,
            f"accelerator {ident!r}: ready {key} {item!r} must be a kernel name (letters, digits, '-', '_', '.')",
        )
    return item


def _compat(value: Mapping[str, Any], ident: str, origin: str, text: str) -> Tuple[Tuple[str, str], ...]:
    """``[accelerators.<id>.compat]``: full label names and values, each valid for nfd-master."""
    table = value.get("compat", {})
    if not isinstance(table, dict):
        raise _error(origin, text, ident, "compat", f"accelerator {ident!r}: 'compat' must be a table of label = \"value\"")
    labels = []
    for name, label_value in table.items():
        problem = (
            "its value must be a string" if not isinstance(label_value, str) else label_problem(name, label_value)
        )
        if problem:
            raise _error(origin, text, f"{ident}.compat", None, f"accelerator {ident!r}: compat label {name!r}: {problem}")
        labels.append((name, label_value))
    return tuple(sorted(labels))


def _list(value: Mapping[str, Any], key: str, ident: str, origin: str, text: str, where: Optional[str] = None) -> List[Any]:
    """``value[key]`` as a list; ``where`` is the table it is in, for the error's line."""
    items = value.get(key, [])
    if not isinstance(items, list):
        raise _error(origin, text, where or ident, key, f"accelerator {ident!r}: {key!r} must be a list")
    return items


def _pairs(
    value: Mapping[str, Any], key: str, ident: str, origin: str, text: str, where: Optional[str] = None
) -> Tuple[Tuple[str, str], ...]:
    """``"vvvv:pppp"`` strings as lowercase pairs, in file order, without repeats."""
    pairs = []
    for item in _list(value, key, ident, origin, text, where):
        match = _HEX_PAIR_RE.match(item) if isinstance(item, str) else None
        if not match:
            raise _error(
                origin, text, where or ident, key,
                f"accelerator {ident!r}: {key} id {item!r} is not 'vvvv:pppp' (4 hex digits each)",
            )
        pairs.append((match.group(1).lower(), match.group(2).lower()))
    return tuple(dict.fromkeys(pairs))


def _strings(value: Mapping[str, Any], key: str, ident: str, origin: str, text: str) -> Tuple[str, ...]:
    """Exact compatible strings: non-empty, no NUL (it separates them in the blob)."""
    strings = []
    for item in _list(value, key, ident, origin, text):
        if not isinstance(item, str) or not item or "\0" in item or item != item.strip():
            raise _error(
                origin, text, ident, key,
                f"accelerator {ident!r}: devicetree compatible {item!r} must be a non-empty string without NUL or surrounding spaces",
            )
        strings.append(item)
    return tuple(dict.fromkeys(strings))


def _error(origin: str, text: str, ident: Optional[str], key: Optional[str], reason: str) -> InputError:
    """``ORIGIN:LINE: reason``, LINE found by looking for the entry's table and key."""
    return InputError(f"{origin}:{_line_of(text, ident, key)}: {reason}")


def _line_of(text: str, ident: Optional[str], key: Optional[str]) -> int:
    """Best-effort line of ``key`` inside ``[accelerators.<ident>]`` (or at top level).

    The TOML parser gives no positions for values, so this scans the text: the
    entry's table header, then the first ``key =`` after it; 1 if neither is found.
    """
    lines = text.splitlines()
    start = 0
    if ident is not None:
        header = re.compile(
            r"\s*\[\s*" + TOP_KEY + r"\s*\.\s*(" + re.escape(ident) + r"|([\"'])" + re.escape(ident) + r"\2)\s*\]"
        )
        found = next((n for n, line in enumerate(lines) if header.match(line)), None)
        if found is None:
            # "<id>.ready" written inline (ready = {...}): the line of its key in the entry
            owner, dot, sub = ident.rpartition(".")
            return _line_of(text, owner, sub) if dot else 1
        start = found
        if key is None:
            return found + 1
    if key is not None:
        assignment = re.compile(r"\s*([\"']?)" + re.escape(key) + r"\1\s*[=.]")
        for number in range(start, len(lines)):
            if number > start and ident is not None and lines[number].lstrip().startswith("["):
                break
            if assignment.match(lines[number]) or (ident is None and re.match(r"\s*\[\s*" + re.escape(key) + r"\b", lines[number])):
                return number + 1
    return start + 1
