"""libudev and libusb-1.0 for pyudev and pyusb, found without ldconfig.

Both libraries look their shared library up with ``ctypes.util.find_library``,
which on Linux runs ``/sbin/ldconfig -p`` in a child process (then gcc, then
ld): one more process per lookup on a host, and no library at all in the
container image, which ships none of those programs. The dynamic loader
resolves a soname by itself (its cache, then the system directories), so the
two libraries whose ABI we use are asked for by soname first; any other name,
or a soname the loader cannot open, goes to ``ctypes.util.find_library`` as
before. Imported only by the udev and libusb code paths.
"""

import ctypes
import ctypes.util
from typing import Any, Optional

# The ABIs pyudev and pyusb are written against (Debian: libudev1, libusb-1.0-0).
SONAMES = {"udev": "libudev.so.1", "usb-1.0": "libusb-1.0.so.0", "libusb-1.0": "libusb-1.0.so.0"}


def find_library(name: str) -> Optional[str]:
    """``ctypes.util.find_library(name)``, answered by the dynamic loader for the names in SONAMES."""
    soname = SONAMES.get(name)
    if soname is not None:
        try:
            ctypes.CDLL(soname)
        except OSError:
            pass
        else:
            return soname
    return ctypes.util.find_library(name)


def udev_context() -> Any:
    """A ``pyudev.Context`` whose libudev was found by ``find_library``.

    pyudev takes no library name or path (pyudev/pyudev#83): its loader calls
    the ``find_library`` it imported from ctypes.util, so that name is pointed
    at ours (tests/usb/test_libraries.py fails if pyudev stops using it).
    """
    from pyudev._ctypeslib import utils

    utils.find_library = find_library
    import pyudev

    return pyudev.Context()


def libusb_backend() -> Any:
    """pyusb's libusb-1.0 backend (None when the library cannot be loaded)."""
    import usb.backend.libusb1

    return usb.backend.libusb1.get_backend(find_library=find_library)
