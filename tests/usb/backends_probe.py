"""Run inside ``umockdev-run``: read the devices with each backend, print JSON.

Usage: backends_probe.py [--usb-class XX]... [--usb-label-fields F]
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from nfd_hooks.sources.usb import UsbOptions, check_options, discover  # noqa: E402
from nfd_hooks.sources.usb.source import read_with_backend  # noqa: E402


def main(args):
    classes = tuple(args[i + 1] for i, a in enumerate(args) if a == "--usb-class") or ("0e", "ef", "fe", "ff")
    fields = tuple(args[i + 1] for i, a in enumerate(args) if a == "--usb-label-fields") or ("class", "vendor", "device")
    seen = {}
    for backend in ("sysfs", "udev", "libusb"):
        options = check_options(UsbOptions(backend=backend, allowlist=classes, label_fields=fields))
        devices, notices, used = read_with_backend(options)
        report = discover(options, devices)
        seen[backend] = {
            "backend": used,  # a failing backend falls back to sysfs: the tests must notice
            "devices": [list(d) for d in devices],  # every backend reads serials only when a label needs them
            "labels": sorted(f.name for f in report.features),
        }
    json.dump(seen, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
