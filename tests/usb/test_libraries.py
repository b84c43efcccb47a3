"""libudev and libusb-1.0 are found without ldconfig (nfd_hooks.libraries).

The container image has no /sbin/ldconfig, gcc or ld, so ctypes.util.find_library
finds nothing there. Each check runs in a fresh interpreter in which
find_library is made to find nothing, as in the image, and first shows that
pyudev and pyusb then fail on their own: the checks can fail.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

NO_LDCONFIG = "import ctypes.util\nctypes.util.find_library = lambda name: None\n"


def run_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", NO_LDCONFIG + code], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_pyudev_alone_fails_where_find_library_finds_nothing():
    out = run_python(
        "import pyudev\n"
        "try:\n    pyudev.Context()\nexcept ImportError as error:\n    print('failed:', error)\n"
    )
    assert out == "failed: No library named udev"


def test_udev_context_loads_libudev_by_soname():
    out = run_python(
        "from nfd_hooks.libraries import udev_context\n"
        "context = udev_context()\n"
        "print(context._libudev._name)\n"
        "print(next(iter(context.list_devices(subsystem='mem'))).sys_name != '')\n"
    )
    assert out.splitlines() == ["libudev.so.1", "True"]


def test_pyusb_finds_libusb_by_soname():
    out = run_python(
        "import usb.libloader\n"
        "from nfd_hooks.libraries import find_library\n"
        "candidates = ('usb-1.0', 'libusb-1.0', 'usb')\n"
        "print(usb.libloader.locate_library(candidates))\n"
        "print(usb.libloader.locate_library(candidates, find_library))\n"
    )
    assert out.splitlines() == ["None", "libusb-1.0.so.0"]


def test_other_names_and_missing_sonames_go_to_ctypes(monkeypatch):
    import ctypes.util

    from nfd_hooks import libraries

    asked = []
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: asked.append(name) or f"lib{name}.so.9")
    monkeypatch.setitem(libraries.SONAMES, "absent", "libnfd-hooks-absent.so.0")
    assert libraries.find_library("c") == "libc.so.9"
    assert libraries.find_library("absent") == "libabsent.so.9"
    assert libraries.find_library("udev") == "libudev.so.1"
    assert asked == ["c", "absent"]


@pytest.mark.parametrize("name", ["udev", "usb-1.0"])
def test_the_sonames_are_what_ldconfig_finds(name):
    """On a machine with ldconfig, the soname asked for is the one ctypes finds."""
    import ctypes.util

    from nfd_hooks.libraries import SONAMES

    found = ctypes.util.find_library(name)
    if found is None:
        pytest.skip(f"ctypes finds no {name} library here")
    assert found == SONAMES[name]
