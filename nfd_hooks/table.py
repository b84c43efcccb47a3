"""``show --format table``: the scan explained for a person at a terminal.

Built only from the sources' reports (the typed results the JSON view prints
too), so the table cannot disagree with what is written. A source without a
section of its own here shows its features. Pure: the CLI decides the width and
whether headings are bold.
"""

from __future__ import annotations

import textwrap
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from nfd_hooks.errors import one_line
from nfd_hooks.features import Feature
from nfd_hooks.sources.accelerators.result import DEVICETREE, PCI, USB, AcceleratorsFound, Match, MatchedDevice
from nfd_hooks.sources.base import SourceReport
from nfd_hooks.sources.devicetree.result import DevicetreeFound
from nfd_hooks.sources.usb.ids import USB_IDS_HINT
from nfd_hooks.sources.usb.result import UsbFound, UsbNames
from nfd_hooks.sources.usb.source import LABEL_PREFIX as USB_PREFIX

WIDTH = 80
GAP = "  "
_MIN_COLUMN = 6
_BOLD, _PLAIN = "\033[1m", "\033[0m"
# Every USB label name ends so; the LABEL column leaves it out to give the names room.
_USB_SUFFIX = ".present"


def render_table(reports: Sequence[SourceReport[Any]], features: Sequence[Feature], width: int = WIDTH, bold: bool = False) -> str:
    """Every section of the reports present, then a one-line summary of the file."""
    out: List[str] = []
    for report in reports:
        heading, body = _section(report, width, reports)
        lines = _paragraph(heading, width)
        out += [f"{_BOLD}{line}{_PLAIN}" if bold else line for line in lines] + body + [""]
    labels = sum(1 for f in features if f.label)
    out.append(f"Features file: {labels} labels, {len(features) - labels} raw features ('show' prints it).")
    return "\n".join(out) + "\n"


def _section(report: SourceReport[Any], width: int, reports: Sequence[SourceReport[Any]]) -> Tuple[str, List[str]]:
    """A source's heading and lines: its own account, or its features for a source without one."""
    found = report.found
    if isinstance(found, DevicetreeFound):
        return _devicetree(found, width)
    if isinstance(found, UsbFound):
        return _usb(found, width, _catalog_names(reports))
    if isinstance(found, AcceleratorsFound):
        return _accelerators(found, width)
    rows = [[feature.name, feature.value] for feature in report.features]
    return f"{report.name}: {len(rows)} features", columns(["NAME", "VALUE"], rows, width) if rows else []


def columns(
    header: Sequence[str], rows: Sequence[Sequence[str]], width: int = WIDTH, first: Sequence[int] = ()
) -> List[str]:
    """``rows`` under ``header`` in columns of at most ``width`` characters.

    Each column is as wide as its widest cell until the line would be too long;
    then the widest of the columns ``first`` (then of all) gives way, and its
    cells wrap. A newline in a cell starts a new line within it (one label per line).
    """
    cells = [[[one_line(part) for part in cell.split("\n")] for cell in row] for row in [header, *rows]]
    widths = [max(len(part) for row in cells for part in row[i]) for i in range(len(header))]
    room = width - len(GAP) * (len(header) - 1)
    while sum(widths) > room:
        narrowable = [i for i in first if widths[i] > _MIN_COLUMN] or [
            i for i in range(len(widths)) if widths[i] > _MIN_COLUMN
        ]
        if not narrowable:
            break
        widest = max(narrowable, key=lambda i: widths[i])
        widths[widest] -= 1
    lines = []
    for row in cells:
        wrapped = [_wrap(parts, w) for parts, w in zip(row, widths)]
        for n in range(max(len(cell) for cell in wrapped)):
            parts = [(cell[n] if n < len(cell) else "").ljust(w) for cell, w in zip(wrapped, widths)]
            lines.append(GAP.join(parts).rstrip())
    return lines


def _wrap(parts: Sequence[str], width: int) -> List[str]:
    return [line for part in parts for line in (textwrap.wrap(part, width, break_on_hyphens=False) or [""])]


def _paragraph(text: str, width: int) -> List[str]:
    return textwrap.wrap(one_line(text), width, subsequent_indent="  ", break_on_hyphens=False)


def _devicetree(found: DevicetreeFound, width: int) -> Tuple[str, List[str]]:
    if found.reader is None:
        return "Devicetree: none found", []
    heading = f"Devicetree: {found.path} ({found.reader})"
    label_of: Dict[str, str] = {}
    for label in found.labels:
        for text, _ in label.strings:
            label_of[text] = f"{label.name.rsplit('/', 1)[1]}={label.seen}"
    rows = []
    for node in found.counted:
        strings = node.compatible
        rows.append([
            node.path,
            node.status or "-",
            "\n".join(strings) or "-",
            "\n".join(label_of.get(text, "no label-safe characters") for text in strings) or "no compatible",
        ])
    for node in found.skipped:
        rows.append([node.path, node.status or "", "\n".join(node.compatible) or "-", "skipped: not okay"])
    prefix = found.labels[0].name.rsplit("/", 1)[0] if found.labels else "the prefix"
    body = _paragraph(
        f"Model {found.model or 'unknown'}. Counted: the root and the nodes named "
        f"{', '.join(found.nodes)} (NAME, NAME@..., NAMEn@...) whose status is okay or absent (-). "
        f"Labels: {prefix}/<LABEL>.",
        width,
    )
    return heading, body + columns(["NODE", "STATUS", "COMPATIBLE", "LABEL"], rows, width)


def _usb(found: UsbFound, width: int, catalog: Mapping[str, str]) -> Tuple[str, List[str]]:
    heading = f"USB: {len(found.entries)} devices in {found.sysfs} (read by {found.backend})"
    rows = [
        [
            entry.device.bus_path,
            f"{entry.device.vendor}:{entry.device.product}",
            _names(entry.names, catalog.get(entry.device.bus_path)),
            entry.device.device_class,
            " ".join(entry.device.interface_classes) or "-",
            "\n".join(label.rsplit("/", 1)[1].removesuffix(_USB_SUFFIX) for label in entry.labels) or (entry.no_label or ""),
        ]
        for entry in found.entries
    ]
    body = _paragraph(f"Classes that label: {' '.join(found.allowlist)}. Labels: {USB_PREFIX}/<LABEL>{_USB_SUFFIX}=true.", width)
    if found.with_names and found.usb_ids is None and rows:
        body += _paragraph(f"Names: {USB_IDS_HINT}; from the devices' own strings and the accelerator catalog.", width)
    if rows:
        body += columns(["BUS", "ID", "VENDOR PRODUCT", "CLASS", "IFACES", "LABEL, OR WHY NONE"], rows, width, first=[2, 5])
    names = dict(sorted(pair for entry in found.entries if entry.names for pair in entry.names.classes))
    if names:
        body += _paragraph("Classes: " + ", ".join(f"{code} {name}" for code, name in names.items()) + ".", width)
    return heading, body


def _names(names: Optional[UsbNames], catalog: Optional[str]) -> str:
    """What a device is called: usb.ids names, else the device's own strings,
    each part on its own; a product neither knows takes the catalog's name for
    the device whole; "?" when nothing names it."""
    vendor = names and (names.vendor or names.manufacturer)
    product = names and (names.product or names.product_string)
    if product:
        return f"{vendor} {product}" if vendor else product
    return catalog or (f"{vendor} ?" if vendor else "?")


def _catalog_names(reports: Sequence[SourceReport[Any]]) -> Dict[str, str]:
    """The catalog's name of each USB device an accelerator entry matched, by bus path."""
    return {
        device.address: match.entry.name
        for report in reports
        if isinstance(report.found, AcceleratorsFound)
        for match in report.found.matches
        for device in match.devices
        if device.bus == USB
    }


def _accelerators(found: AcceleratorsFound, width: int) -> Tuple[str, List[str]]:
    read = [name for name, used in found.inputs.read().items() if used]
    heading = f"Accelerators: {len(found.matches)} of {len(found.entries)} catalog entries matched"
    body = _paragraph(
        f"Catalogs: {', '.join(found.catalogs)}; matched against {', '.join(read) or 'nothing'}. "
        f"Labels {found.prefix}/<ID>.present and .count, and .ready and .ready-count for the "
        "devices its ready rule finds usable"
        + ("; vendor plugins' labels too (--compat-labels)." if found.compat_labels else "."),
        width,
    )
    rows = [
        [m.entry.id, str(m.present), str(m.ready), m.entry.name, "\n".join(_matched(m) + _compat(m, found.compat_labels))]
        for m in found.matches
    ]
    if rows:
        body += columns(["ID", "COUNT", "READY", "NAME", "MATCHED"], rows, width, first=[3])
    return heading, body


def _matched(match: Match) -> List[str]:
    """Each matched device; a bound driver and readiness after it."""
    shown = {USB: "USB ", PCI: "PCI ", DEVICETREE: ""}
    return [f"{shown[d.bus]}{d.address} {d.id}{_state(d)}" for d in match.devices]


def _state(device: MatchedDevice) -> str:
    driver = f" {device.driver}" if device.driver else ""
    return driver + (" ready" if device.ready else "")


def _compat(match: Match, written: bool) -> List[str]:
    return [f"{name}={value}" for name, value in match.entry.compat] if written else []


def wants_bold(isatty: bool, environ: Mapping[str, str]) -> bool:
    """Bold headings only on a terminal that is not dumb, and never with NO_COLOR set."""
    return isatty and "NO_COLOR" not in environ and environ.get("TERM", "") not in ("", "dumb")
