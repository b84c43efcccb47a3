"""Capture a node into a self-describing bundle, and open one for replay.

A bundle is a directory::

    manifest.json      tool version, capture time, kernel, architecture, sha256 of every file
    devicetree.dtb     the devicetree as a blob (absent on a node without one)
    sys/...            a sysfs-shaped subset: only the USB attributes the scanner reads,
                       behind kernel-shaped relative symlinks in sys/bus/usb/devices

Replaying it is scanning with ``--sysfs DIR/sys --devicetree DIR/devicetree.dtb``
and the plain sysfs USB reader. The manifest lists every file and symlink under
``sys/``: a bundle with a changed, missing or extra one is refused, since it
would replay to different labels than the node had.
"""

import hashlib
import json
import os
import platform
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Tuple

from nfd_hooks import __version__
from nfd_hooks.errors import InputError, OutputError
from nfd_hooks.safe_read import OutsideRoot, open_path, read_regular_file
from nfd_hooks.sources.devicetree.blob import MAX_BLOB_SIZE, MAX_DEPTH, BlobNode, is_blob_name, looks_like_blob, parse_blob
from nfd_hooks.sources.usb.sysfs import ATTRIBUTES, DEVICE_ATTRIBUTES, INTERFACE_ATTRIBUTES

FORMAT = "nfd-hooks-bundle/1"
MANIFEST = "manifest.json"
DEVICETREE = "devicetree.dtb"
SYS = "sys"
USB_DEVICES = ("bus", "usb", "devices")

SERIAL = "serial"  # identifies a device: captured only on request

MAX_ATTRIBUTE_SIZE = 64 * 1024  # sysfs text is a page; USB descriptors a few KiB
MAX_MANIFEST_SIZE = 4 * 1024 * 1024


@dataclass
class Capture:
    """What ``capture`` wrote, for the one-line summary."""

    directory: Path
    devicetree_from: Optional[str]
    usb_devices: int
    size: int
    notices: List[str] = field(default_factory=list)


@dataclass(frozen=True)
class Bundle:
    """A verified bundle: where replay reads sysfs and the devicetree."""

    sysfs: Path
    devicetree: Optional[Path]
    manifest: Dict[str, Any]


# ---------------------------------------------------------------- devicetree


@dataclass
class PlainNode:
    """A devicetree node as plain data: what both the blob and the live tree reduce to."""

    name: str
    properties: Dict[str, bytes] = field(default_factory=dict)
    children: List["PlainNode"] = field(default_factory=list)


def _synthesized_name(node_name: str) -> bytes:
    """The ``name`` property the kernel adds to every live node (root: empty)."""
    return (b"" if node_name == "/" else node_name.split("@", 1)[0].encode()) + b"\0"


def read_live_tree(directory: Path) -> PlainNode:
    """Every node and property of a ``/proc/device-tree``-shaped directory.

    pyfdt's FdtFsParse would do this, but it lists in directory order (so the
    blob's bytes would change from run to run), opens FIFOs (a hang), follows
    nothing safely and keeps the kernel's synthesized ``name`` properties,
    which a real blob does not have. This walk is sorted, reads regular files
    only, drops those ``name`` properties and bounds the total size.
    """
    root = PlainNode("/")
    pending: List[Tuple[Path, PlainNode, int]] = [(directory, root, 0)]
    total = 0
    while pending:
        path, node, depth = pending.pop()
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError as error:
            raise InputError(f"{path}: cannot list devicetree node: {error.strerror}") from None
        for entry in entries:
            if entry.is_symlink():
                continue
            if entry.is_dir() or entry.is_file():
                _check_blob_name(entry.path, entry.name, depth + entry.is_dir())
            if entry.is_dir():
                child = PlainNode(entry.name)
                node.children.append(child)
                pending.append((Path(entry.path), child, depth + 1))
            elif entry.is_file():
                value = _read_regular(Path(entry.path), MAX_BLOB_SIZE)
                if value is None:
                    raise InputError(f"{entry.path}: cannot read devicetree property")
                total += len(value)
                if total > MAX_BLOB_SIZE:
                    raise InputError(f"{directory}: devicetree over {MAX_BLOB_SIZE} bytes")
                if not (entry.name == "name" and value == _synthesized_name(node.name)):
                    node.properties[entry.name] = value
    return root


def _check_blob_name(path: str, name: str, depth: int) -> None:
    """Refuse, before anything is written, a live tree no blob can hold, rather
    than write a bundle replay would refuse: Linux never builds one (it skips
    nodes deeper than FDT_MAX_DEPTH, and names come from a blob's printable ones).
    ``depth`` is 0 for the root's entries: a node at depth 64 is the 65th level."""
    if depth >= MAX_DEPTH:
        raise InputError(f"{path}: devicetree nested deeper than {MAX_DEPTH} levels: a blob cannot hold it")
    if not is_blob_name(os.fsencode(name)):
        raise InputError(f"{path}: devicetree name {name!r} is not printable ASCII: a blob cannot hold it")


def _from_blob_node(blob_root: BlobNode) -> PlainNode:
    """The parsed blob as plain data, to compare with the live tree."""
    root = PlainNode("/")
    pending = [(blob_root, root)]
    while pending:
        source, node = pending.pop()
        node.properties = {
            name: value
            for name, value in ((n, source.property(n)) for n in source.property_names())
            if value is not None and not (name == "name" and value == _synthesized_name(node.name))
        }
        for child in source.children():
            plain = PlainNode(child.name)
            node.children.append(plain)
            pending.append((child, plain))
    return root


def _canonical(node: PlainNode) -> Any:
    """Order-free form of a tree, to tell whether a blob and a live tree agree."""
    return (
        node.name,
        tuple(sorted(node.properties.items())),
        tuple(sorted((_canonical(child) for child in node.children), key=lambda c: c[0])),
    )


def build_blob(root: PlainNode) -> bytes:
    """A DTB (FDT version 17) of ``root``, through pyfdt's ``to_dtb``.

    pyfdt's blob writer is sound on Python 3 (its ``to_raw`` is not, but
    ``to_dtb`` does not use it): it chooses string, word or byte properties by
    the value and writes the same bytes back in each case.
    """
    from pyfdt.pyfdt import Fdt, FdtNode, FdtProperty  # lazy: only capture builds blobs

    def convert(plain: PlainNode) -> Any:
        node = FdtNode(plain.name)
        for name, value in sorted(plain.properties.items()):
            node.append(FdtProperty.new_raw_property(name, value))
        for child in sorted(plain.children, key=lambda c: c.name):
            sub = convert(child)
            sub.set_parent_node(node)
            node.append(sub)
        return node

    try:
        fdt = Fdt()
        fdt.add_rootnode(convert(root))
        blob: bytes = fdt.to_dtb()
        return blob
    except RecursionError:
        raise InputError("devicetree too deep to capture") from None
    except Exception as error:  # pyfdt raises bare Exception for names it cannot store
        raise InputError(f"cannot build a devicetree blob: {error}") from None


def capture_devicetree(sysfs: Path, devicetree: Optional[Path], notices: List[str]) -> Tuple[Optional[bytes], Optional[str]]:
    """The node's devicetree as blob bytes, and where it came from (None: no devicetree).

    ``<sysfs>/firmware/fdt`` is the blob the kernel booted with; it is used when
    readable and equal to the live tree (runtime overlays would make them
    differ, and a live run reads the live tree).
    """
    if devicetree is not None:
        if devicetree.is_dir():
            return build_blob(read_live_tree(devicetree)), str(devicetree)
        return _checked_blob(devicetree, required=True), str(devicetree)
    live = sysfs / "firmware" / "devicetree" / "base"
    fdt = sysfs / "firmware" / "fdt"
    blob = _checked_blob(fdt, required=False) if fdt.exists() else None
    if blob is None and fdt.exists():
        notices.append(f"{fdt} is not readable (root only): built the blob from {live}")
    if not live.is_dir():
        if blob is None:
            notices.append(f"no devicetree at {live}: the bundle has none")
        return blob, (str(fdt) if blob is not None else None)
    tree = read_live_tree(live)
    if blob is not None:
        if _canonical(_from_blob_node(parse_blob(blob, str(fdt)))) == _canonical(tree):
            return blob, str(fdt)
        notices.append(f"{fdt} differs from {live} (runtime overlays?): captured the live tree")
    return build_blob(tree), str(live)


def _checked_blob(path: Path, required: bool) -> Optional[bytes]:
    """A sane blob's bytes; None if unreadable and not ``required``."""
    data = _read_regular(path, MAX_BLOB_SIZE + 1)
    if data is None:
        if required:
            raise InputError(f"{path}: cannot read devicetree blob")
        return None
    if not looks_like_blob(data):
        raise InputError(f"{path}: not a devicetree blob")
    if len(data) > MAX_BLOB_SIZE:
        raise InputError(f"{path}: over {MAX_BLOB_SIZE} bytes, too large for a devicetree blob")
    parse_blob(data, str(path))  # refuse a corrupt blob now, not at replay
    return data


def _read_regular(path: Path, limit: int) -> Optional[bytes]:
    """Up to ``limit`` bytes of a regular file (never a FIFO or a symlink); None if it cannot be read."""
    try:
        return read_regular_file(str(path), limit, follow_symlinks=False)
    except OSError:
        return None


# ---------------------------------------------------------------- USB

ID_ATTRIBUTES = ("idVendor", "idProduct", "bDeviceClass")  # what the reader skips a device for


def capture_usb(sysfs: Path, with_serials: bool, notices: List[str]) -> Tuple[Dict[str, bytes], Dict[str, str], int]:
    """Files (path under the bundle's ``sys`` -> bytes) and symlinks (path -> target)
    for the USB devices under ``<sysfs>/bus/usb/devices``, and how many devices.

    Only the attributes the sysfs USB reader opens are copied (its
    DEVICE_ATTRIBUTES and INTERFACE_ATTRIBUTES); every entry keeps its
    kernel-shaped relative symlink into ``devices/``.
    """
    files: Dict[str, bytes] = {}
    links: Dict[str, str] = {}
    top = sysfs.joinpath(*USB_DEVICES)
    try:
        names = sorted(os.listdir(top))
    except OSError:
        notices.append(f"no USB bus at {top}: the bundle has no USB devices")
        return files, links, 0
    real_root = os.path.realpath(sysfs)
    device_attributes = [a for a in DEVICE_ATTRIBUTES if with_serials or a != SERIAL]
    devices = 0
    for name in names:
        entry = top / name
        listed = "/".join(USB_DEVICES + (name,))
        real = os.path.realpath(entry)
        inside = os.path.relpath(real, real_root)
        if inside.startswith(".." + os.sep) or inside == ".." or not os.path.isdir(real):
            notices.append(f"skipped {entry}: not a directory inside {sysfs}")
            continue
        if entry.is_symlink():
            links[listed] = os.path.relpath(inside, "/".join(USB_DEVICES))
            target = inside
        else:
            target = listed
        if ":" in name:  # an interface: its device's entry copies its attributes
            continue
        unreadable = _unreadable_ids(Path(real))
        if unreadable:  # the reader skips such a device; absent from the bundle, it would be read with an empty id
            notices.append(f"skipped USB device {name}: {unreadable} cannot be read")
            continue
        copied = _copy_attributes(Path(real), target, device_attributes, files)
        if "idProduct" not in copied:
            continue
        devices += 1
        for sub in sorted(os.scandir(real), key=lambda e: e.name):
            if sub.is_dir(follow_symlinks=False) and os.path.isfile(os.path.join(sub.path, "bInterfaceClass")):
                _copy_attributes(Path(sub.path), f"{target}/{sub.name}", INTERFACE_ATTRIBUTES, files)
    return files, _captured_links(links, files), devices


def _captured_links(links: Dict[str, str], files: Dict[str, bytes]) -> Dict[str, str]:
    """The links whose target directory holds a captured file: a device torn
    out while captured (or one without idProduct) leaves no dangling link."""
    captured = {parent for path in files for parent in _parents(path)}
    top = "/".join(USB_DEVICES)
    return {path: target for path, target in links.items() if os.path.normpath(os.path.join(top, target)) in captured}


def _parents(path: str) -> List[str]:
    parts = path.split("/")
    return ["/".join(parts[:n]) for n in range(1, len(parts))]


def _unreadable_ids(directory: Path) -> Optional[str]:
    """The first id attribute that exists but is no readable regular file (a
    symlink, a FIFO): the live reader skips that device, so capture must too."""
    for name in ID_ATTRIBUTES:
        path = directory / name
        if os.path.lexists(path) and _read_regular(path, MAX_ATTRIBUTE_SIZE) is None:
            return name
    return None


def _copy_attributes(directory: Path, target: str, names: Any, files: Dict[str, bytes]) -> List[str]:
    """Read the named attributes that exist into ``files``; return their names."""
    copied = []
    for name in names:
        value = _read_regular(directory / name, MAX_ATTRIBUTE_SIZE)
        if value is not None:
            files[f"{target}/{name}"] = value
            copied.append(name)
    return copied


# ---------------------------------------------------------------- bundle


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def capture(
    directory: Path,
    sysfs: Path = Path("/sys"),
    devicetree: Optional[Path] = None,
    with_serials: bool = False,
    now: Optional[datetime] = None,
) -> Capture:
    """Write the bundle for the node under ``sysfs`` to ``directory`` (new or empty).

    The bundle is assembled beside ``directory`` and renamed into place, so an
    interrupted capture leaves no torn bundle behind.
    """
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise OutputError(f"{directory} exists and is not an empty directory")
    notices: List[str] = []
    blob, blob_from = capture_devicetree(sysfs, devicetree, notices)
    usb_files, links, devices = capture_usb(sysfs, with_serials, notices)
    files = {f"{SYS}/{path}": data for path, data in usb_files.items()}
    if blob is not None:
        files[DEVICETREE] = blob
    uname = platform.uname()
    symlinks = {f"{SYS}/{path}": target for path, target in sorted(links.items())}
    manifest = {
        "format": FORMAT,
        "tool": f"nfd-hooks {__version__}",
        "captured_at": (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "kernel_release": uname.release,
        "architecture": uname.machine,
        "devicetree": {"file": DEVICETREE, "from": blob_from} if blob is not None else None,
        "usb_devices": devices,
        "with_serials": with_serials,
        "files": {path: _sha256(data) for path, data in sorted(files.items())},
        "symlinks": symlinks,
    }
    content = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    # sys/ always, and the USB bus when the node has one: replay then sees what the node showed
    directories = [SYS] + (["/".join((SYS,) + USB_DEVICES)] if sysfs.joinpath(*USB_DEVICES).is_dir() else [])
    _write_tree(directory, directories, files, symlinks, content)
    size = len(content) + sum(len(data) for data in files.values())
    return Capture(directory, blob_from, devices, size, notices)


def _write_tree(directory: Path, directories: List[str], files: Dict[str, bytes], links: Dict[str, str], manifest: bytes) -> None:
    parent = directory.absolute().parent
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=parent))
    except OSError as error:
        raise OutputError(f"cannot create a directory in {parent}: {error.strerror}") from None
    try:
        for path in directories:
            (staging / path).mkdir(parents=True, exist_ok=True)
        for path, data in files.items():
            target = staging / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        for path, link in links.items():
            target = staging / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(link)
        (staging / MANIFEST).write_bytes(manifest)
        os.chmod(staging, 0o755)
        os.replace(staging, directory)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise OutputError(f"cannot write bundle {directory}: {error.strerror or error}") from None


def open_bundle(directory: Path) -> Bundle:
    """Verify a bundle against its manifest; InputError (one line) when it is not intact.

    Every path is resolved beneath the bundle for real (``safe_read``'s
    ``beneath``): a chain of in-bundle symlinks that leads outside it is
    refused, whatever its text looks like. Only the layout capture writes is
    accepted: attribute files named as the sysfs reader reads them, the
    devicetree blob, and the symlinks of ``sys/bus/usb/devices``.
    """
    try:
        root = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as error:
        raise InputError(f"{directory}: not a capture bundle ({error.strerror})") from None
    try:
        manifest = _read_manifest(directory, root)
        _check_files(directory, root, manifest["files"])
        _check_links(directory, root, manifest["symlinks"])
    finally:
        os.close(root)
    extra = _unlisted(directory, set(manifest["files"]) | set(manifest["symlinks"]))
    if extra:
        raise InputError(f"{directory}: bundle damaged: {extra} is not in {MANIFEST}")
    has_blob = DEVICETREE in manifest["files"]
    return Bundle(directory / SYS, directory / DEVICETREE if has_blob else None, manifest)


def _read_manifest(directory: Path, root: int) -> Dict[str, Any]:
    try:
        data = read_regular_file(MANIFEST, MAX_MANIFEST_SIZE + 1, follow_symlinks=False, dir_fd=root)
    except OSError:
        raise InputError(f"{directory}: not a capture bundle (no readable {MANIFEST})") from None
    try:
        manifest = json.loads(data)
    except ValueError:
        raise InputError(f"{directory}: {MANIFEST} is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(f"{directory}: {MANIFEST} is not a {FORMAT} manifest")
    if not _str_map(manifest.get("files")) or not _str_map(manifest.get("symlinks")):
        raise InputError(f"{directory}: {MANIFEST} has no valid files/symlinks lists")
    return manifest


def _check_files(directory: Path, root: int, files: Dict[str, str]) -> None:
    for path, digest in files.items():
        parts = path.split("/")
        attribute = _safe(path) and parts[0] == SYS and len(parts) > 2 and parts[-1] in ATTRIBUTES
        if not (path == DEVICETREE or attribute):
            raise InputError(f"{directory}: {MANIFEST} names an unexpected file {path!r}")
        try:
            content = read_regular_file(path, MAX_BLOB_SIZE + 1, follow_symlinks=False, dir_fd=root, beneath=True)
        except OutsideRoot:
            raise InputError(f"{directory}: bundle damaged: {path} leads outside the bundle") from None
        except OSError as error:
            raise InputError(f"{directory}: bundle damaged: {path} is missing ({error.strerror})") from None
        if _sha256(content) != digest:
            raise InputError(f"{directory}: bundle damaged: {path} does not match its sha256")


def _check_links(directory: Path, root: int, links: Dict[str, str]) -> None:
    """Each symlink is one of ``sys/bus/usb/devices``, as listed, and stays in ``sys/`` when followed."""
    devices = "/".join((SYS,) + USB_DEVICES)
    try:
        sys_fd = open_path(SYS, os.O_RDONLY | os.O_DIRECTORY, follow_symlinks=False, dir_fd=root)
    except OSError as error:
        if links:
            raise InputError(f"{directory}: bundle damaged: {SYS}/ is not a directory ({error.strerror})") from None
        return
    try:
        for path, target in links.items():
            if not _safe(path) or path.rpartition("/")[0] != devices or target.startswith("/"):
                raise InputError(f"{directory}: {MANIFEST} names an unsafe symlink {path!r}")
            try:
                actual = os.readlink(path, dir_fd=root)
            except OSError:
                raise InputError(f"{directory}: bundle damaged: symlink {path} is missing") from None
            if actual != target:
                raise InputError(f"{directory}: bundle damaged: symlink {path} points elsewhere")
            try:
                os.close(open_path(path[len(SYS) + 1:], os.O_RDONLY | os.O_DIRECTORY, dir_fd=sys_fd, beneath=True))
            except OutsideRoot:
                raise InputError(f"{directory}: bundle damaged: symlink {path} leads outside {SYS}/") from None
            except OSError:
                pass  # dangling or not a directory: the sysfs reader skips it, as on a live node
    finally:
        os.close(sys_fd)


def _str_map(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())


def _safe(path: str) -> bool:
    """A relative path without ``..``, ``.`` or empty parts."""
    parts = path.split("/")
    return bool(path) and not path.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def _unlisted(directory: Path, listed: Set[str]) -> Optional[str]:
    """The first file or symlink under ``sys/`` (or a stray top-level blob) the manifest does not list."""
    if os.path.lexists(directory / DEVICETREE) and DEVICETREE not in listed:
        return DEVICETREE
    for top, dirs, names in os.walk(directory / SYS):
        for name in sorted(dirs + names):
            path = os.path.join(top, name)
            relative = os.path.relpath(path, directory).replace(os.sep, "/")
            if os.path.islink(path) or not os.path.isdir(path):
                if relative not in listed:
                    return relative
    return None
