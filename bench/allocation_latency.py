#!/usr/bin/env python3
"""Allocation latency on the real node (issue 29 item 7): from plug, and from firmware ready, to
allocatable; from unplug to eviction.

    sudo .venv/bin/python bench/allocation_latency.py              # 5 rounds
    sudo .venv/bin/python bench/allocation_latency.py --rounds 10 --json out.json

Starts the real node of tests/e2e/node.py (kubelet, containerd 2.2 with CDI, kube-controller-manager,
kube-scheduler, all v1.35.3, DRADeviceTaints on), our image (scripts/build-image), and
manifests/allocation's DRA driver with its defaults (tests/realnode/allocation.py: the Coral's
tree in the node, the only change the two hardware host paths). Each round, timed from the moment
the kernel is told (a real uevent, as a plugged device's own would be):

- plug: a loaded Coral appears on port 2-1 -> the ResourceSlice offers usb-2-1;
- firmware ready: a Coral before its firmware (1a6e:089a on 1-1.2, withheld) re-enumerates as
  18d1:9302 on 2-1 -> offered;
- unplug to eviction: a pod holding the Coral through a claim; the stick leaves -> the pod is
  being deleted (kube-controller-manager's device-taint-eviction controller). The driver waits 5 s
  (``--grace``, a re-enumeration's time) before it taints.

Prints a Markdown table (each round, median, max) and writes JSON (bench/results/allocation-latency.json).
Exit 0, or 2 when a piece is missing (root, Go, podman, the real node's tools).
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NODE = "bench-coral"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="default bench/results/allocation-latency.json")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("allocation_latency: needs root (the real node)", file=sys.stderr)
        return 2
    import tempfile

    from tests.e2e.harness import E2EUnavailable, build_binaries
    from tests.e2e.node import NodeOptions, real_node_cluster
    from tests.realnode import allocation as hw
    from tests.realnode.conftest import HOOK_IMAGE, _build, _podman

    try:
        binaries = build_binaries()
    except E2EUnavailable as missing:
        print(f"allocation_latency: {missing}", file=sys.stderr)
        return 2
    _build("build-image", HOOK_IMAGE)
    scratch = Path(tempfile.mkdtemp(prefix="nfd-hooks-allocation-latency-"))
    archive = scratch / "nfd-hooks.tar"
    _podman("save", "--format", "oci-archive", "-o", str(archive), HOOK_IMAGE)
    rounds = {"plug": [], "firmware": [], "eviction": []}
    try:
        with real_node_cluster(binaries, feature_gates={"DRADeviceTaints": True}, node=NodeOptions(name=NODE)) as (cluster, node):
            setup = hw.Setup(cluster, node, archive)
            setup.hardware.unplug()
            hw.apply_with_hardware(cluster, "manifests/allocation", setup.work / "dra")
            setup.wait("the driver's pod Running", lambda: hw.driver_pod(cluster))
            setup.wait("an empty slice", lambda: hw.offered(cluster, NODE) == {})
            for number in range(args.rounds):
                setup.hardware.plug()
                _, took = hw.timed("offered", lambda: hw.offered(cluster, NODE) == {"usb-2-1": []})
                rounds["plug"].append(took)
                setup.hardware.unplug()
                setup.wait("withdrawn", lambda: hw.offered(cluster, NODE) == {}, timeout=180)

                setup.hardware.plug("coral-usb-before-firmware")
                time.sleep(3)
                assert hw.offered(cluster, NODE) == {}, "a Coral before its firmware was offered"
                setup.hardware.plug("coral-usb-after-firmware")
                _, took = hw.timed("offered", lambda: hw.offered(cluster, NODE) == {"usb-2-1": []})
                rounds["firmware"].append(took)

                name = f"holder-{number}"
                cluster.apply(hw.workload(name, claim_template="one-edgetpu"))
                setup.wait(f"{name} Running", lambda: hw.state(cluster, name) == "Running", timeout=180)
                setup.hardware.unplug()
                _, took = hw.timed("evicted", lambda: hw.state(cluster, name) in ("Gone", "Terminating"), timeout=180)
                rounds["eviction"].append(took)
                setup.wait("withdrawn", lambda: hw.offered(cluster, NODE) == {}, timeout=180)
                setup.wait(f"{name} gone", lambda: hw.state(cluster, name) == "Gone", timeout=180)
    finally:
        import shutil

        shutil.rmtree(scratch, ignore_errors=True)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"### Allocation latency on the real node, {when}, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}; {args.rounds} rounds\n")
    print("| from | to | each round (s) | median (s) | max (s) |")
    print("| --- | --- | --- | --- | --- |")
    labels = {"plug": ("plug (a loaded Coral appears)", "offered in the ResourceSlice"),
              "firmware": ("firmware ready (1a6e:089a becomes 18d1:9302)", "offered in the ResourceSlice"),
              "eviction": ("unplug, a pod holding it", "the pod being deleted")}
    for key, (start, end) in labels.items():
        values = rounds[key]
        print(f"| {start} | {end} | {', '.join(f'{v:.1f}' for v in values)} | {statistics.median(values):.1f} | {max(values):.1f} |")
    out = args.json or ROOT / "bench" / "results" / "allocation-latency.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"when": when, "rounds": rounds}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
