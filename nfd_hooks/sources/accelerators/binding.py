"""Is a matched device usable? Its driver link and device nodes, read from sysfs and /dev.

Presence says a device is there; readiness needs what the kernel shows once a
driver took it: the ``driver`` symlink of the device (``…/bus/pci/drivers/apex``),
and, for drivers that make character devices, the class device under it
(``<device>/apex/apex_0`` with ``dev`` = ``120:0`` and ``DEVNAME=apex_0`` in its
``uevent``) whose node exists under the dev root with that number. Devicetree
nodes are found through the ``of_node`` link of each platform device.

Everything is resolved beneath its root (sysfs, /dev), links are read as text
and never followed out, attribute files must be regular files, and device
nodes are only looked at (``O_PATH``), never opened: the hook runs privileged.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple

from nfd_hooks.safe_read import decimal, open_path, read_small_attribute

# "120:0\n" or a uevent of a few lines; anything larger is not one.
MAX_ATTRIBUTE_SIZE = 4096
DEVICETREE_BASE = "firmware/devicetree/base"
# Linux's dev_t: a 12-bit major and a 20-bit minor (MINORBITS, include/linux/kdev_t.h).
MAX_MAJOR, MAX_MINOR = (1 << 12) - 1, (1 << 20) - 1


class Binding(NamedTuple):
    """What the kernel shows of one device: its driver and its present device nodes.

    A NamedTuple for start-up time (see ``nfd_hooks.features.Feature``).
    """

    driver: Optional[str] = None  # the driver link's last component; None when unbound
    device_nodes: Tuple[str, ...] = ()  # DEVNAMEs present as the right character device under the dev root


UNBOUND = Binding()


class SysfsProbe:
    """Reads bindings under one sysfs root and one dev root (None: no device node is visible).

    Opened once per scan; platform devices are listed on first use only, as
    only a devicetree match with a driver rule needs them.
    """

    def __init__(self, sysfs: Path, dev: Optional[Path], notices: List[str]) -> None:
        self.sysfs, self.dev, self.notices = sysfs, dev, notices
        self._root: Optional[int] = None
        self._dev_fd: Optional[int] = None
        self._dev_tried = False
        self._platform: Optional[Dict[str, str]] = None

    def close(self) -> None:
        for fd in (self._root, self._dev_fd):
            if fd is not None:
                os.close(fd)
        self._root = self._dev_fd = None

    def pci(self, address: str, device_class: Optional[str]) -> Binding:
        """The binding of PCI function ``address`` (``bus/pci/devices/<address>``)."""
        return self._binding(f"bus/pci/devices/{address}", device_class)

    def usb(self, bus_path: str) -> Binding:
        """The binding of USB device ``bus_path`` (``bus/usb/devices/1-1.3``): its driver
        (``usb``) and its own node, ``bus/usb/BBB/DDD`` (the device's ``dev`` and the
        DEVNAME of its ``uevent``), when present under the dev root."""
        root = self._root_fd()
        if root is None:
            return UNBOUND
        try:
            device = open_path(f"bus/usb/devices/{bus_path}", os.O_PATH | os.O_DIRECTORY, dir_fd=root, beneath=True)
        except OSError:
            return UNBOUND
        try:
            driver = _link_name(device, "driver")
            node = self._present(device, ".")
        finally:
            os.close(device)
        return Binding(driver, (node,) if node else ())

    def devicetree(self, node: str, device_class: Optional[str]) -> Binding:
        """The binding of the platform device made from devicetree node ``node`` (``/gpu@57000000``)."""
        if self._platform is None:
            self._platform = self._platform_devices()
        path = self._platform.get(node)
        return self._binding(path, device_class) if path else UNBOUND

    def _root_fd(self) -> Optional[int]:
        if self._root is None:
            try:
                self._root = os.open(self.sysfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError:
                return None
        return self._root

    def _binding(self, path: str, device_class: Optional[str]) -> Binding:
        root = self._root_fd()
        if root is None:
            return UNBOUND
        try:
            device = open_path(path, os.O_PATH | os.O_DIRECTORY, dir_fd=root, beneath=True)
        except OSError:
            return UNBOUND
        try:
            driver = _link_name(device, "driver")
            nodes = self._device_nodes(device, device_class) if driver and device_class else ()
        finally:
            os.close(device)
        return Binding(driver, nodes)

    def _device_nodes(self, device: int, device_class: str) -> Tuple[str, ...]:
        """DEVNAMEs of the device's ``device_class`` class devices whose node is present, sorted."""
        try:
            directory = open_path(device_class, os.O_RDONLY | os.O_DIRECTORY, dir_fd=device, beneath=True)
        except OSError:
            return ()
        try:
            names = sorted(os.listdir(directory))
            found = [name for name in (self._present(directory, entry) for entry in names) if name]
        finally:
            os.close(directory)
        return tuple(found)

    def _present(self, directory: int, entry: str) -> Optional[str]:
        """The class device's DEVNAME if its node is under the dev root with the number sysfs gives."""
        number = _attribute(directory, f"{entry}/dev")
        uevent = _attribute(directory, f"{entry}/uevent")
        if number is None or uevent is None:
            return None
        name = next((line[len("DEVNAME="):] for line in uevent.splitlines() if line.startswith("DEVNAME=")), "")
        device_number = _device_number(number)
        if device_number is None:
            self.notices.append(f"device node of {entry} not checked: its dev {number.strip()!r} is not MAJOR:MINOR")
            return None
        if not name:
            return None
        dev = self._dev_root()
        if dev is None:
            return None
        try:
            fd = open_path(name, os.O_PATH, follow_symlinks=False, dir_fd=dev, beneath=True)
        except OSError:
            return None
        try:
            status = os.fstat(fd)
        finally:
            os.close(fd)
        if stat.S_ISCHR(status.st_mode) and status.st_rdev == device_number:
            return name
        return None

    def _dev_root(self) -> Optional[int]:
        if not self._dev_tried:
            self._dev_tried = True
            if self.dev is None:
                self.notices.append("device nodes not checked: no dev root here (a replayed bundle has none)")
                return None
            try:
                self._dev_fd = os.open(self.dev, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError as error:
                self.notices.append(f"device nodes not checked: cannot open {self.dev}: {error.strerror}")
        return self._dev_fd

    def _platform_devices(self) -> Dict[str, str]:
        """Devicetree node path -> ``bus/platform/devices/<name>``, from each device's ``of_node`` link."""
        root = self._root_fd()
        found: Dict[str, str] = {}
        if root is None:
            return found
        try:
            listing = open_path("bus/platform/devices", os.O_RDONLY | os.O_DIRECTORY, dir_fd=root, beneath=True)
        except OSError:
            return found
        try:
            names = sorted(os.listdir(listing))
        finally:
            os.close(listing)
        for name in names:
            path = f"bus/platform/devices/{name}"
            try:
                device = open_path(path, os.O_PATH | os.O_DIRECTORY, dir_fd=root, beneath=True)
            except OSError:
                continue
            try:
                target = _link_target(device, "of_node")
            finally:
                os.close(device)
            node = _devicetree_node(target) if target else None
            if node is not None:
                found.setdefault(node, path)
        return found


def _link_target(directory: int, name: str) -> Optional[str]:
    try:
        return os.readlink(name, dir_fd=directory)
    except OSError:
        return None


def _link_name(directory: int, name: str) -> Optional[str]:
    """The last component of the symlink ``name`` in ``directory`` (read, not followed)."""
    target = _link_target(directory, name)
    last = target.rstrip("/").rpartition("/")[2] if target else ""
    return last or None


def _devicetree_node(target: str) -> Optional[str]:
    """``/gpu@57000000`` of an ``of_node`` link ``../../../firmware/devicetree/base/gpu@57000000``."""
    before, marker, node = target.partition(DEVICETREE_BASE)
    if not marker or (before and not before.endswith("/")) or (node and not node.startswith("/")):
        return None
    return node or "/"


def _device_number(text: str) -> Optional[int]:
    """``dev``'s ``MAJOR:MINOR`` (``120:0``) as a device number; None when it is not
    one within the kernel's 12 and 20 bits (``120:99999999999999999999`` overflowed
    os.makedev, ``120:²`` passed str.isdigit and failed int)."""
    major, colon, minor = text.strip().partition(":")
    major_number, minor_number = decimal(major, MAX_MAJOR), decimal(minor, MAX_MINOR)
    if not colon or major_number is None or minor_number is None:
        return None
    return os.makedev(major_number, minor_number)


def _attribute(directory: int, path: str) -> Optional[str]:
    """A small sysfs attribute as text: a regular file, not a symlink, beneath ``directory``."""
    data = read_small_attribute(path, MAX_ATTRIBUTE_SIZE, directory)
    return None if data is None else data.decode("utf-8", "replace")
