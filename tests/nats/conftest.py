from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.nats.server import NatsServer


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A nats-server of this test module's own (tests here may kill and restart it)."""
    server = NatsServer(tmp_path_factory.mktemp("nats") / "store")
    server.start()
    yield server
    server.kill()


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[NatsServer]:
    """A nats-server for one test only."""
    server = NatsServer(tmp_path / "store")
    server.start()
    yield server
    server.kill()


@pytest.fixture(scope="module")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``NATS_URL`` when set (CI's shared server), else a server of this module's own.
    Tests using it pick unique service names and topics, so sharing a server is safe."""
    shared = os.environ.get("NATS_URL")
    if shared:
        yield shared
        return
    server = NatsServer(tmp_path_factory.mktemp("nats") / "store")
    server.start()
    yield server.url
    server.kill()
