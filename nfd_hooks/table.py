"""``show --format table``: the scan explained for a person at a terminal.

Built only from the sources' reports (the same ``details`` the JSON view
prints), so the table cannot disagree with what is written. Pure: the CLI
decides the width and whether headings are bold.
"""

from __future__ import annotations

import textwrap
from typing import Any, Dict, List, Mapping, Sequence, Tuple

from nfd_hooks.errors import one_line
from nfd_hooks.features import Feature
from nfd_hooks.sources import SourceReport
from nfd_hooks.sources.usb.source import LABEL_PREFIX as USB_PREFIX

WIDTH = 80
GAP = "  "
_MIN_COLUMN = 6
_BOLD, _PLAIN = "\033[1m", "\033[0m"
# Every USB label name ends so; the LABEL column leaves it out to give the names room.
_USB_SUFFIX = ".present"


def render_table(reports: Sequence[SourceReport], features: Sequence[Feature], width: int = WIDTH, bold: bool = False) -> str:
    """Every section of the reports present, then a one-line summary of the file."""
    sections = {"devicetree": _devicetree, "usb": _usb, "accelerators": _accelerators}
    out: List[str] = []
    for report in reports:
        heading, body = sections[report.name](report.details, width)
        lines = _paragraph(heading, width)
        out += [f"{_BOLD}{line}{_PLAIN}" if bold else line for line in lines] + body + [""]
    labels = sum(1 for f in features if f.label)
    out.append(f"Features file: {labels} labels, {len(features) - labels} raw features ('show' prints it).")
    return "\n".join(out) + "\n"


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


def _devicetree(details: Mapping[str, Any], width: int) -> Tuple[str, List[str]]:
    if not details:
        return "Devicetree: none found", []
    heading = f"Devicetree: {details['path']} ({details['reader']})"
    label_of: Dict[str, str] = {}
    for label in details["labels"]:
        for text in label["strings"]:
            label_of[text] = f"{label['label'].rsplit('/', 1)[1]}={label['value']}"
    rows = []
    for node in details["counted_nodes"]:
        strings = node["compatible"]
        rows.append([
            node["node"],
            node["status"] or "-",
            "\n".join(strings) or "-",
            "\n".join(label_of.get(text, "no label-safe characters") for text in strings) or "no compatible",
        ])
    for node in details["skipped_nodes"]:
        rows.append([node["node"], node["status"], "\n".join(node["compatible"]) or "-", "skipped: not okay"])
    prefix = details["labels"][0]["label"].rsplit("/", 1)[0] if details["labels"] else "the prefix"
    body = _paragraph(
        f"Model {details['model'] or 'unknown'}. Counted: the root and the nodes named "
        f"{', '.join(details['nodes'])} (NAME, NAME@..., NAMEn@...) whose status is okay or absent (-). "
        f"Labels: {prefix}/<LABEL>.",
        width,
    )
    return heading, body + columns(["NODE", "STATUS", "COMPATIBLE", "LABEL"], rows, width)


def _usb(details: Mapping[str, Any], width: int) -> Tuple[str, List[str]]:
    devices = details["devices"]
    heading = f"USB: {len(devices)} devices in {details['sysfs']} (read by {details['backend']})"
    rows = [
        [
            d["bus_path"],
            f"{d['vendor']}:{d['product']}",
            _names(d),
            d["device_class"],
            " ".join(d["interface_classes"]) or "-",
            "\n".join(label.rsplit("/", 1)[1].removesuffix(_USB_SUFFIX) for label in d["labels"]) or d["no_label"],
        ]
        for d in devices
    ]
    body = _paragraph(f"Classes that label: {' '.join(details['allowlist'])}. Labels: {USB_PREFIX}/<LABEL>{_USB_SUFFIX}=true.", width)
    if rows:
        body += columns(["BUS", "ID", "VENDOR PRODUCT", "CLASS", "IFACES", "LABEL, OR WHY NONE"], rows, width, first=[2, 5])
    names = _class_names(devices)
    if names:
        body += _paragraph("Classes: " + ", ".join(f"{code} {name}" for code, name in names.items()) + ".", width)
    return heading, body


def _names(device: Mapping[str, Any]) -> str:
    """usb.ids names; absent without usb.ids, None for ids it does not list."""
    vendor, product = device.get("vendor_name"), device.get("product_name")
    if vendor is None and product is None:
        return "?"
    return f"{vendor or '?'} {product or '?'}"


def _class_names(devices: Sequence[Mapping[str, Any]]) -> Dict[str, str]:
    found: Dict[str, str] = {}
    for device in devices:
        found.update(device.get("class_names", {}))
    return dict(sorted(found.items()))


def _accelerators(details: Mapping[str, Any], width: int) -> Tuple[str, List[str]]:
    read = [name for name, used in details["inputs"].items() if used]
    heading = f"Accelerators: {len(details['matches'])} of {len(details['entries'])} catalog entries matched"
    body = _paragraph(
        f"Catalogs: {', '.join(details['catalogs'])}; matched against {', '.join(read) or 'nothing'}. "
        f"Labels {details['prefix']}/<ID>.present and .count, and .ready and .ready-count for the "
        "devices its ready rule finds usable"
        + ("; vendor plugins' labels too (--compat-labels)." if details.get("compat_labels") else "."),
        width,
    )
    rows = [
        [m["id"], str(m["count"]), str(m["ready_count"]), m["name"], "\n".join(_matched(m) + m["compat"])]
        for m in details["matches"]
    ]
    if rows:
        body += columns(["ID", "COUNT", "READY", "NAME", "MATCHED"], rows, width, first=[3])
    return heading, body


def _matched(match: Mapping[str, Any]) -> List[str]:
    """Each matched device; a bound driver and readiness after it."""
    found = [f"USB {d['bus_path']} {d['id']}{' ready' if d['ready'] else ''}" for d in match["usb"]]
    found += [f"PCI {d['address']} {d['id']}{_state(d)}" for d in match["pci"]]
    found += [f"{d['node']} {d['compatible']}{_state(d)}" for d in match["devicetree"]]
    return found


def _state(device: Mapping[str, Any]) -> str:
    driver = f" {device['driver']}" if device["driver"] else ""
    return driver + (" ready" if device["ready"] else "")


def wants_bold(isatty: bool, environ: Mapping[str, str]) -> bool:
    """Bold headings only on a terminal that is not dumb, and never with NO_COLOR set."""
    return isatty and "NO_COLOR" not in environ and environ.get("TERM", "") not in ("", "dumb")
