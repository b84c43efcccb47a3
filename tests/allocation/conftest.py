"""Fixtures of the allocation tests: the upstream protos compiled once per session, a
short temporary directory (a unix socket's path has at most 107 bytes), a node whose
hardware a test changes, an in-memory API server."""

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.allocation.nodes import FakeApi, Node
from tests.allocation.upstream import compile_protos, kubelet_apis


@pytest.fixture(scope="session")
def upstream(tmp_path_factory):
    """{proto path: (messages module, grpc stubs module)} of the kubelet's v0.35.3 APIs."""
    return compile_protos(kubelet_apis(), tmp_path_factory.mktemp("protos"))


@pytest.fixture
def tmp_path():
    directory = Path(tempfile.mkdtemp(prefix="alloc-", dir="/tmp"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def node(tmp_path):
    return Node(tmp_path / "node")


@pytest.fixture
def fake():
    return FakeApi()
