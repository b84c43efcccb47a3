"""The kubelet's own .proto files, fetched at test time and compiled for the tests.

``go mod download k8s.io/kubelet@v0.35.3`` puts the module in Go's cache (the
proxy, as scripts/build-e2e-binaries does); grpc_tools' protoc compiles the
three APIs into a temporary directory. Nothing fetched enters the repository.
"""

import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Dict

import pytest

KUBELET_MODULE = "k8s.io/kubelet@v0.35.3"
PROTOS = ("pluginregistration/v1/api.proto", "dra/v1/api.proto", "deviceplugin/v1beta1/api.proto")


def unavailable(reason: str) -> None:
    if os.environ.get("NFD_HOOKS_REQUIRE_TOOLS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def kubelet_apis() -> Path:
    """``pkg/apis`` of the k8s.io/kubelet module in Go's module cache."""
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if go is None:
        unavailable("Go not found: the kubelet's .proto files come through the Go module proxy")
    done = subprocess.run([go, "mod", "download", "-json", KUBELET_MODULE], capture_output=True, text=True, timeout=300,
                          cwd="/")
    if done.returncode != 0:
        unavailable(f"go mod download {KUBELET_MODULE} failed: {done.stdout[-500:]}{done.stderr[-500:]}")
    return Path(json.loads(done.stdout)["Dir"]) / "pkg" / "apis"


def compile_protos(apis: Path, out: Path) -> Dict[str, ModuleType]:
    """``{proto path: (messages module, grpc module)}`` compiled from ``apis`` into ``out``."""
    try:
        from grpc_tools import protoc
    except ImportError:
        unavailable("grpcio-tools not installed (scripts/test-requirements.txt)")
    for proto in PROTOS:
        code = protoc.main(["protoc", f"-I{apis}", f"--python_out={out}", f"--grpc_python_out={out}", str(apis / proto)])
        assert code == 0, f"protoc failed on {proto}"
    sys.path.insert(0, str(out))
    modules = {}
    for proto in PROTOS:
        base = proto[: -len(".proto")].replace("/", ".")
        modules[proto] = (importlib.import_module(base + "_pb2"), importlib.import_module(base + "_pb2_grpc"))
    return modules
