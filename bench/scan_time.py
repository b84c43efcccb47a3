"""Time the scan inside one fresh process: what ``nfd-hooks show`` spends after start-up.

    python bench/scan_time.py --sysfs SYSFS [--devicetree PATH] [--no-usb] [--no-devicetree]

Imports ``nfd_hooks.api`` untimed, then times ``api.scan`` plus ``render_scan``
once, cold, as a real run does it (lazy imports inside the scan included), and
prints one JSON object. bench/run starts it several times and takes the median.
"""

import argparse
import json
import time
from pathlib import Path

from nfd_hooks import api


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sysfs", type=Path, required=True)
    parser.add_argument("--devicetree", type=Path)
    parser.add_argument("--no-usb", action="store_true")
    parser.add_argument("--no-devicetree", action="store_true")
    args = parser.parse_args()
    options = api.Options(
        sysfs=args.sysfs, devicetree=args.devicetree, use_usb=not args.no_usb, use_devicetree=not args.no_devicetree
    )
    start = time.perf_counter()
    result = api.scan(options)
    content = api.render_scan(result, options)
    elapsed = time.perf_counter() - start
    print(json.dumps({
        "scan_ms": elapsed * 1000,
        "sources": sorted(report.name for report in result.reports),
        "labels": sum(1 for f in result.features if f.label),
        "bytes": len(content),
    }))


if __name__ == "__main__":
    main()
