#!/usr/bin/env python3
"""The DRA driver's idle cost on a node: resident memory and CPU of the whole process.

    sudo .venv/bin/python bench/allocation_idle.py                 # 120 s window
    sudo .venv/bin/python bench/allocation_idle.py --window 600 --json out.json

Starts the e2e control plane (tests/e2e/harness.py: etcd, kube-apiserver and
kube-scheduler v1.35.3 from scripts/build-e2e-binaries), one Node with a Coral USB
Accelerator (the accelerator fixture, /dev made by mknod: needs root), and
``nfd-hooks dra-driver`` for it as its DaemonSet runs it: installed as the image
installs it (bench/.venv-allocation: a plain virtualenv of ``--python``, not
editable, pip and setuptools removed), every default (uevents on, 60 s resync,
the 5-minute claim check), the service account of manifests/allocation.
Then it does what the kubelet does (registration, NodePrepareResources for a claim
the real scheduler allocated) and leaves the driver alone: after the registration
checks are over (35 s), it samples the process every second for ``--window``
seconds: RSS (VmRSS, the budget's measure, and its peak), PSS, and user+system CPU
time from /proc/PID/stat, as mCPU (CPU ms per second of wall time).

Beside it, for the docs' choice of gRPC library, two bare servers on a unix socket,
each in its own process and measured the same way: grpclib with our codec
(nfd_hooks.allocation.rpc), and grpcio with a generic handler and the protobuf
runtime imported (what generated code would import).

Budget (issue 29 item 8): the driver within 30 MiB RSS and 1 mCPU. Exit 0 when
met, 1 when not, 2 when a piece is missing (root, Go, the e2e binaries).
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BUDGET_RSS_MIB, BUDGET_MCPU = 30.0, 1.0
SETTLE = 35.0  # the driver checks its slice 1, 3, 10 and 30 s after registering
TICK = os.sysconf("SC_CLK_TCK")


def serve(kind: str, socket: str) -> None:
    """``--serve``: one idle gRPC server on ``socket``, until killed; prints its import time."""
    started = time.perf_counter()
    if kind == "grpclib":
        import asyncio

        from nfd_hooks.allocation import rpc, wire

        imported = time.perf_counter() - started

        async def main() -> None:
            service = rpc.Service(lambda line: None)

            async def info(_):
                return wire.PluginInfo(type="DRAPlugin", name="bench")

            service.unary(wire.REGISTRATION + "GetInfo", wire.InfoRequest, wire.PluginInfo, info)
            await rpc.serve([service], Path(socket))
            print(json.dumps({"import_s": imported}), flush=True)
            await asyncio.Event().wait()

        asyncio.run(main())
    else:
        from concurrent import futures

        import google.protobuf.descriptor_pool  # noqa: F401  generated code imports these
        import google.protobuf.message  # noqa: F401
        import grpc

        imported = time.perf_counter() - started
        handler = grpc.method_handlers_generic_handler("pluginregistration.Registration", {
            "GetInfo": grpc.unary_unary_rpc_method_handler(lambda request, context: b""),
        })
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=1), handlers=[handler])
        server.add_insecure_port(f"unix:{socket}")
        server.start()
        print(json.dumps({"import_s": imported}), flush=True)
        server.wait_for_termination()


def bench_venv(python: Path) -> Path:
    """bench/.venv-allocation: this checkout installed as the image installs it (a plain
    virtualenv, not editable, pip and setuptools removed: Containerfile); its bin directory."""
    venv = ROOT / "bench" / ".venv-allocation"
    if not (venv / "bin" / "python").exists():
        subprocess.run([str(python), "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "ensurepip"], check=True, stdout=subprocess.DEVNULL)
    install = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*install, "--force-reinstall", "--no-deps", str(ROOT)], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([*install, str(ROOT)], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "uninstall", "-q", "--yes", "pip", "setuptools"], check=True)
    return venv / "bin"


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


def kib(pid: int, path: str, key: str) -> int:
    for line in Path(f"/proc/{pid}/{path}").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def measure(pids: Dict[str, int], window: float) -> Dict[str, Dict[str, float]]:
    """RSS and PSS each second, CPU over the window, for each process."""
    start = {name: cpu_ticks(pid) for name, pid in pids.items()}
    began = time.monotonic()
    rss: Dict[str, List[int]] = {name: [] for name in pids}
    pss: Dict[str, List[int]] = {name: [] for name in pids}
    while time.monotonic() - began < window:
        for name, pid in pids.items():
            rss[name].append(kib(pid, "status", "VmRSS"))
            pss[name].append(kib(pid, "smaps_rollup", "Pss"))
        time.sleep(1.0)
    elapsed = time.monotonic() - began
    result = {}
    for name, pid in pids.items():
        ticks = cpu_ticks(pid) - start[name]
        result[name] = {
            "rss_mib": rss[name][-1] / 1024, "rss_peak_mib": max(rss[name]) / 1024, "pss_mib": statistics.median(pss[name]) / 1024,
            "cpu_ms": ticks * 1000 / TICK, "mcpu": ticks * 1000 / TICK / elapsed, "window_s": elapsed,
        }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=120.0, help="seconds of idle measured (default 120)")
    parser.add_argument("--json", type=Path, help="also write the figures here (default bench/results/allocation-idle.json)")
    parser.add_argument("--python", type=Path, default=Path(sys.executable),
                        help="the interpreter the driver's virtualenv is made with (default: this one)")
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "SOCKET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return 0
    if os.geteuid() != 0:
        print("allocation_idle: needs root (the fixture's device nodes are made with mknod, the cluster in a network namespace)",
              file=sys.stderr)
        return 2
    from tests.allocation.upstream import compile_protos, kubelet_apis
    from tests.e2e import dra
    from tests.e2e.harness import Cluster, E2EUnavailable, build_binaries, wait_for

    program = [str(bench_venv(args.python) / "nfd-hooks")]
    scratch = Path(tempfile.mkdtemp(prefix="nfd-hooks-allocation-idle-"))
    scratch.chmod(0o755)
    servers: List[subprocess.Popen] = []
    cluster = None
    try:
        try:
            cluster = Cluster(build_binaries(), scratch)
            cluster.start()
            (scratch / "protos").mkdir()
            upstream = compile_protos(kubelet_apis(), scratch / "protos")
        except (E2EUnavailable, Exception) as missing:  # pytest.skip from the proto fetch is an Exception too
            print(f"allocation_idle: {type(missing).__name__}: {missing}", file=sys.stderr)
            return 2
        node = dra.CoralNode(cluster, upstream, "bench-coral", args=(), program=program)  # the DaemonSet's defaults
        node.kubelet.register()
        registered = time.monotonic()
        wait_for("the ResourceSlice", lambda: dra.offered(cluster, "bench-coral") == {"usb-2-1": []}, timeout=120)
        node.claim("tpu", "edgetpu")
        node.pod("tpu", "tpu")
        wait_for("the pod bound", lambda: node.placement("tpu") == "bench-coral", timeout=120)
        claim = cluster.get("resourceclaim", "tpu", "-n", dra.NAMESPACE_E2E)
        error = node.kubelet.prepare(claim)[claim["metadata"]["uid"]].error
        if error:
            raise RuntimeError(f"NodePrepareResources failed: {error}")
        imports = {}
        for kind in ("grpclib", "grpcio"):
            server = subprocess.Popen([sys.executable, __file__, "--serve", kind, str(scratch / f"{kind}.sock")],
                                      stdout=subprocess.PIPE, text=True, cwd=ROOT)
            servers.append(server)
            imports[kind] = json.loads(server.stdout.readline())["import_s"]
        command = Path(f"/proc/{node.driver.pid}/cmdline").read_bytes().split(b"\0")
        assert b"dra-driver" in command, command  # nsenter exec'd the driver itself: the pid is its own
        time.sleep(max(0.0, registered + SETTLE - time.monotonic()))
        figures = measure({"driver": node.driver.pid, "grpclib": servers[0].pid, "grpcio": servers[1].pid}, args.window)
        log = node.driver.log()
        node.close()
    finally:
        for server in servers:
            server.kill()
            server.wait()
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(scratch, ignore_errors=True)

    from grpclib import __version__ as grpclib_version
    import grpc

    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    driver = figures["driver"]
    met = driver["rss_mib"] <= BUDGET_RSS_MIB and driver["rss_peak_mib"] <= BUDGET_RSS_MIB and driver["mcpu"] <= BUDGET_MCPU
    print(f"### DRA driver idle, {when}, Python {platform.python_version()} on {platform.machine()}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; window {driver['window_s']:.0f} s\n")
    print("| process | RSS (MiB) | RSS peak (MiB) | PSS (MiB) | CPU (ms) | mCPU | import (s) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    rows = [("`nfd-hooks dra-driver`: a device published, a claim prepared, uevents on", "driver", ""),
            (f"bare grpclib {grpclib_version} server + our codec", "grpclib", f"{imports['grpclib']:.2f}"),
            (f"bare grpcio {grpc.__version__} server + protobuf runtime", "grpcio", f"{imports['grpcio']:.2f}")]
    for label, name, imported in rows:
        f = figures[name]
        print(f"| {label} | {f['rss_mib']:.1f} | {f['rss_peak_mib']:.1f} | {f['pss_mib']:.1f} | {f['cpu_ms']:.0f} | "
              f"{f['mcpu']:.2f} | {imported} |")
    print(f"\nBudget {BUDGET_RSS_MIB:g} MiB RSS and {BUDGET_MCPU:g} mCPU: {'met' if met else 'NOT met'}.")
    warnings = [line for line in log.splitlines() if "error" in line.lower() or "cannot" in line.lower()]
    if warnings:
        print("\nThe driver logged:\n" + "\n".join(f"    {line}" for line in warnings[-10:]))
    out = args.json or ROOT / "bench" / "results" / "allocation-idle.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"when": when, "python": platform.python_version(), "machine": platform.machine(),
                               "figures": figures, "imports_s": imports, "budget_met": met}, indent=2) + "\n")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
