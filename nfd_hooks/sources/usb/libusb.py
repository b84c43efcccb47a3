"""The pyusb backend, for hosts where sysfs is not mounted but /dev/bus/usb is.

libusb reads the device and configuration descriptors itself (from sysfs when
it is there, from usbfs otherwise). The sysfs device name is rebuilt from the
bus number and port path, so every backend names a device alike. pyusb is
imported here only.
"""

from typing import Any, List, Optional, Tuple

from nfd_hooks.nfdfile import go_trimmed
from nfd_hooks.sources.usb.model import UsbDevice


def bus_path(bus: int, ports: Optional[Tuple[int, ...]], address: int) -> str:
    """The kernel's device name: ``usbB`` for a root hub, ``B-P.P.P`` below it.

    Without port numbers (usbfs on kernels too old to report them) only a root
    hub, always address 1, can be named; others get ``usbB-devA``.
    """
    if ports:
        return f"{bus}-{'.'.join(str(port) for port in ports)}"
    return f"usb{bus}" if address == 1 else f"usb{bus}-dev{address}"


def read_devices(with_serial: bool = True) -> Tuple[List[UsbDevice], List[str]]:
    """Every device libusb enumerates, and notices.

    The serial number needs a control transfer (opening the device), so it is
    read only when a label uses it.
    """
    import usb.backend.libusb1
    import usb.core

    backend = usb.backend.libusb1.get_backend()
    if backend is None:
        raise usb.core.NoBackendError("libusb-1.0 is not installed")
    notices: List[str] = []
    devices = []
    found = usb.core.find(find_all=True, backend=backend)
    named = sorted(((bus_path(d.bus, d.port_numbers, d.address), d) for d in found), key=lambda pair: pair[0])
    for name, device in named:
        devices.append(
            UsbDevice(
                bus_path=name,
                vendor=f"{device.idVendor:04x}",
                product=f"{device.idProduct:04x}",
                device_class=f"{device.bDeviceClass:02x}",
                interface_classes=_interface_classes(device, name, notices),
                serial=_serial(device, name, notices) if with_serial else None,
            )
        )
    return devices, notices


def _interface_classes(device: Any, name: str, notices: List[str]) -> Tuple[str, ...]:
    """Classes of the active configuration; unknown (an error) counts a single configuration."""
    import usb.core

    try:
        configuration = device.get_active_configuration()
    except usb.core.USBError as error:
        if error.errno is None:  # pyusb: "Configuration not set", the device is unconfigured
            return ()
        configurations = list(device)
        if len(configurations) != 1:
            notices.append(f"USB device {name}: active configuration unknown ({error}): no interface classes")
            return ()
        configuration = configurations[0]
    return tuple(sorted({f"{interface.bInterfaceClass:02x}" for interface in configuration}))


def _serial(device: Any, name: str, notices: List[str]) -> Optional[str]:
    import usb.core
    import usb.util

    if not device.iSerialNumber:
        return None
    try:
        return go_trimmed(usb.util.get_string(device, device.iSerialNumber) or "") or None
    except (usb.core.USBError, ValueError, NotImplementedError) as error:
        notices.append(f"USB device {name}: cannot read its serial number through libusb ({error})")
        return None
