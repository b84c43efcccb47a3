"""Fixtures of the allocation tests: the upstream protos compiled once per session."""

import pytest

from tests.allocation.upstream import compile_protos, kubelet_apis


@pytest.fixture(scope="session")
def upstream(tmp_path_factory):
    """{proto path: (messages module, grpc stubs module)} of the kubelet's v0.35.3 APIs."""
    return compile_protos(kubelet_apis(), tmp_path_factory.mktemp("protos"))
