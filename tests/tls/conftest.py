from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from micro.transport import GrpcioTransport, Transport
from micro.transport.grpclib_impl import GrpclibTransport
from tests.tls.pki import Pki, make_pki

WIRES: dict[str, Callable[[], Transport]] = {"grpcio": GrpcioTransport, "grpclib": GrpclibTransport}


@pytest.fixture(params=sorted(WIRES))
def wire(request: pytest.FixtureRequest) -> Transport:
    return WIRES[request.param]()


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


@pytest.fixture(autouse=True)
def _no_tls_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test says its TLS settings itself."""
    for name in (
        "MICRO_TLS_CERT",
        "MICRO_TLS_KEY",
        "MICRO_TLS_CA",
        "MICRO_TLS_CLIENT_AUTH",
        "MICRO_TLS_SERVER_NAME",
        "MICRO_TLS_INSECURE_SKIP_VERIFY",
    ):
        monkeypatch.delenv(name, raising=False)
