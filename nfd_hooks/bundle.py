"""The capture bundle: a node's devicetree and USB attributes, self-describing, for replay.

A bundle is a directory::

    manifest.json      tool version, capture time, kernel, architecture, sha256 of every file
    devicetree.dtb     the devicetree as a blob (absent on a node without one)
    sys/...            a sysfs-shaped subset: only the USB attributes the scanner reads,
                       behind kernel-shaped relative symlinks in sys/bus/usb/devices

Replaying it is scanning with ``--sysfs DIR/sys --devicetree DIR/devicetree.dtb``
and the plain sysfs USB reader. The manifest lists every file and symlink under
``sys/``: a bundle with a changed, missing or extra one is refused, since it
would replay to different labels than the node had. ``write_bundle`` writes
one (``nfd_hooks.capture`` gathers what goes in), ``open_bundle`` verifies one.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Set

from nfd_hooks import __version__
from nfd_hooks.errors import InputError, OutputError
from nfd_hooks.nfdfile import format_time
from nfd_hooks.safe_read import OutsideRoot, open_path, read_regular_file
from nfd_hooks.sources.devicetree.blob import MAX_BLOB_SIZE
from nfd_hooks.sources.usb.sysfs import ATTRIBUTES

FORMAT = "nfd-hooks-bundle/1"
MANIFEST = "manifest.json"
DEVICETREE = "devicetree.dtb"
SYS = "sys"
USB_DEVICES = ("bus", "usb", "devices")
MAX_MANIFEST_SIZE = 4 * 1024 * 1024


class Contents(NamedTuple):
    """What a bundle holds: ``files`` and ``links`` (their targets) by path under
    ``sys/``, the devicetree ``blob`` and where it came from, how many USB devices,
    whether with serials, and whether the node has a USB bus (its directory is
    kept even when empty, so that replay sees what the node showed)."""

    files: Dict[str, bytes]
    links: Dict[str, str]
    blob: Optional[bytes]
    blob_from: Optional[str]
    usb_devices: int
    with_serials: bool
    usb_bus: bool


class Bundle(NamedTuple):
    """A verified bundle: where replay reads sysfs and the devicetree."""

    sysfs: Path
    devicetree: Optional[Path]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_bundle(directory: Path, contents: Contents, now: datetime) -> int:
    """Write ``contents`` as a bundle at ``directory``; the bytes written.

    The bundle is assembled beside ``directory`` and renamed into place, so an
    interrupted capture leaves no torn bundle behind.
    """
    import platform  # lazy, as shutil and tempfile: replay only opens bundles

    files = {f"{SYS}/{path}": data for path, data in contents.files.items()}
    if contents.blob is not None:
        files[DEVICETREE] = contents.blob
    uname = platform.uname()
    symlinks = {f"{SYS}/{path}": target for path, target in sorted(contents.links.items())}
    manifest = {
        "format": FORMAT,
        "tool": f"nfd-hooks {__version__}",
        "captured_at": format_time(now),
        "kernel_release": uname.release,
        "architecture": uname.machine,
        "devicetree": {"file": DEVICETREE, "from": contents.blob_from} if contents.blob is not None else None,
        "usb_devices": contents.usb_devices,
        "with_serials": contents.with_serials,
        "files": {path: sha256(data) for path, data in sorted(files.items())},
        "symlinks": symlinks,
    }
    content = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    directories = [SYS] + (["/".join((SYS,) + USB_DEVICES)] if contents.usb_bus else [])
    _write_tree(directory, directories, files, symlinks, content)
    return len(content) + sum(len(data) for data in files.values())


def _write_tree(directory: Path, directories: List[str], files: Dict[str, bytes], links: Dict[str, str], manifest: bytes) -> None:
    import shutil
    import tempfile

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
    return Bundle(directory / SYS, directory / DEVICETREE if has_blob else None)


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
        if sha256(content) != digest:
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
