"""Two nodes under load on a real nats-server registry: SIGKILL, SIGTERM, registry outage."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import micro
from golden.streaming.v1 import EchoRequest
from golden.streaming.v1.streaming_micro import StreamerClient
from micro.registry.nats import NatsRegistry
from tests.nats.load import Load
from tests.nats.server import NatsServer
from tests.runtime.procs import nodes
from tests.waiting import eventually


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def env(url: str) -> dict[str, str]:
    return {"MICRO_REGISTRY": "nats", "MICRO_REGISTRY_ADDRESS": url}


def answered(load: Load) -> set[str]:
    """The nodes that have answered a call of ``load`` so far."""
    return {o.node for o in load.outcomes if o.node}


@pytest.fixture
async def client(nats_url: str) -> AsyncIterator[micro.Client]:
    async with micro.Client(registry=NatsRegistry(nats_url), retries=2) as c:
        yield c


async def test_sigkill_under_load_calls_go_on_through_the_survivor(
    nats_url: str, client: micro.Client, tmp_path: Path
) -> None:
    name = unique("failover")
    with nodes(env(nats_url), tmp_path / "events") as group:
        a = group.start(name, "a", "--ttl", "3")
        group.start(name, "b", "--ttl", "3")
        load = Load(client, name)
        load.start()
        await eventually(lambda: answered(load) >= {"a", "b"}, what="both nodes under load")
        await asyncio.to_thread(a.kill)
        killed = time.monotonic()
        await asyncio.sleep(2.0)
        outcomes = await load.stop()
    # A call whose reply had left a when it died, but not the call's status, fails as
    # in any gRPC client: it is committed (a handled it), so it is not retried. That
    # takes a kill between two writes; every other call must go on through b.
    committed = [f for f in load.failures() if "before the call's status" in f.error]
    assert [f for f in load.failures() if f not in committed] == []
    assert len(committed) <= load.workers  # at most the calls a had in flight
    before = {o.node for o in outcomes if o.ended < killed and o.node}  # failures: above
    after = [o.node for o in outcomes if o.started > killed]
    assert before == {"a", "b"}
    assert after and set(after) == {"b"}


async def test_sigterm_under_load_has_zero_failed_calls(
    nats_url: str, client: micro.Client, tmp_path: Path
) -> None:
    name = unique("graceful")
    with nodes(env(nats_url), tmp_path / "events") as group:
        a = group.start(name, "a", "--ttl", "15")
        group.start(name, "b", "--ttl", "15")
        load = Load(client, name, sleep_ms=150)
        load.start()
        await eventually(lambda: answered(load) >= {"a", "b"}, what="both nodes under load")
        signalled = time.monotonic()
        code = await asyncio.to_thread(a.terminate)  # deregister, drain, exit
        await asyncio.sleep(1.0)
        outcomes = await load.stop()
    assert code == 0
    assert load.failures() == []
    # calls a had in flight when SIGTERM arrived were finished by a, not cut off
    assert any(o.node == "a" and o.started < signalled < o.ended for o in outcomes)
    assert {o.node for o in outcomes if o.started > signalled + 0.5} == {"b"}


async def test_watch_refreshes_the_client_cache(nats_url: str, tmp_path: Path) -> None:
    name = unique("watched")
    # a cache that would otherwise hold the first lookup for a minute
    async with micro.Client(registry=NatsRegistry(nats_url), cache_ttl=60) as c:
        stub = StreamerClient(name, client=c)
        with nodes(env(nats_url), tmp_path / "events") as group:
            group.start(name, "a")
            assert (await stub.echo(EchoRequest(text="x"))).text == "x from a"
            group.start(name, "b")
            seen: set[str] = set()

            async def both_answer() -> bool:
                seen.add((await stub.echo(EchoRequest(text="x"))).text.split()[-1])
                return seen == {"a", "b"}

            await eventually(both_answer, timeout=10, interval=0, what="b in the cache")
            assert seen == {"a", "b"}


async def test_registry_outage_keeps_the_last_known_nodes(
    own_nats: NatsServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    name = unique("outage")
    async with micro.Client(registry=NatsRegistry(own_nats.url), cache_ttl=0.2) as c:
        stub = StreamerClient(name, client=c)
        with nodes(env(own_nats.url), tmp_path / "events") as group:
            group.start(name, "a")
            b = group.start(name, "b")
            assert (await stub.echo(EchoRequest(text="x"))).text.startswith("x from")
            own_nats.kill()  # the registry is gone; the nodes are not
            caplog.set_level(logging.WARNING, logger="micro.client")
            answered = []
            for i in range(10):
                answered.append((await stub.echo(EchoRequest(text=str(i)))).text.split()[-1])
            assert set(answered) == {"a", "b"}
            # b dies too: a failed call makes the client re-read the registry, which is
            # down, so it goes on with the nodes it knew and retries on a
            b.kill()
            answered = []
            for i in range(20):
                answered.append((await stub.echo(EchoRequest(text=str(i)))).text.split()[-1])
            assert set(answered) == {"a"}
            warnings = [r for r in caplog.records if "last known node" in r.getMessage()]
            assert len(warnings) == 1  # once per outage, not once per call
