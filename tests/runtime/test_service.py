"""Service lifecycle, registration, draining, retries across nodes, the default client."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
from collections.abc import AsyncIterator, Iterator

import pytest

import micro
import micro.client
from micro import registry as registry_mod
from micro.errors import Status
from micro.health import ServingStatus
from micro.registry import MemoryRegistry, Node, NotFound, ServiceRecord
from micro.selector import RoundRobin
from tests.runtime.echo_kit import ECHO_SPEC, Echo, EchoClient, EchoReply, EchoRequest, serving
from tests.waiting import eventually

pytestmark = pytest.mark.timeout(60)


def dead_address() -> str:
    """A 127.0.0.1 port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"127.0.0.1:{port}"


async def static_registry(*addresses: str, name: str = "echo") -> MemoryRegistry:
    registry = MemoryRegistry()
    nodes = tuple(Node(id=f"n{i}", address=a) for i, a in enumerate(addresses))
    await registry.register(ServiceRecord(name=name, nodes=nodes))
    return registry


class _SwallowingRegistry(MemoryRegistry):
    """A heartbeat's register() that drops a cancel, as nats-py's asyncio.wait_for does
    on Python 3.11 when the put's ack arrives at the same moment."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = self.swallowed = 0
        self.beating = asyncio.Event()

    async def register(self, service: ServiceRecord, *, ttl: float | None = None) -> None:
        self.calls += 1
        await super().register(service, ttl=ttl)
        if self.calls > 1:  # a heartbeat, not the first registration
            self.beating.set()
            try:
                await asyncio.sleep(0.5)
            except asyncio.CancelledError:
                self.swallowed += 1


async def test_stop_ends_a_heartbeat_whose_registry_swallowed_the_cancel() -> None:
    registry = _SwallowingRegistry()
    async with serving(registry=registry, register_interval=0.01) as svc:
        await asyncio.wait_for(registry.beating.wait(), 5)
        await asyncio.wait_for(svc.stop(grace=0), 5)  # hung forever before
    assert registry.swallowed == 1


async def test_registration_record_and_heartbeat() -> None:
    registry = MemoryRegistry()
    async with serving(
        registry=registry,
        version="1.2.3",
        metadata={"zone": "z1"},
        register_ttl=0.3,
        register_interval=0.05,
    ) as svc:
        assert svc.address.startswith("127.0.0.1:") and not svc.address.endswith(":0")
        await asyncio.sleep(0.8)  # well past the TTL: the heartbeat kept it alive
        [record] = await registry.get_service("echo")
        assert record.version == "1.2.3" and dict(record.metadata) == {"zone": "z1"}
        [node] = record.nodes
        assert (node.id, node.address) == (svc.id, svc.address)
        endpoints = {e.name: e for e in record.endpoints}
        assert set(endpoints) == {m.name for m in ECHO_SPEC.methods}
        echo = endpoints["Echo.Echo"]
        assert (echo.path, echo.kind, echo.request, echo.response) == (
            "/test.v1.Echo/Echo",
            "unary",
            "EchoRequest",
            "EchoReply",
        )
        assert json.loads(echo.metadata["http"]) == [
            {
                "method": "POST",
                "path": "/v1/echo/echo",
                "body": "*",
                "response_body": "",
                "custom": False,
            }
        ]
        assert endpoints["Echo.Chat"].kind == "bidi_stream"
    with pytest.raises(NotFound):
        await registry.get_service("echo")


async def test_retry_on_another_node_when_one_is_dead() -> None:
    async with serving(Echo("live")) as svc:
        registry = await static_registry(dead_address(), svc.address)
        async with micro.Client(registry=registry, selector=RoundRobin()) as client:
            stub = EchoClient("echo", client=client)
            for _ in range(6):
                assert (await stub.echo(EchoRequest(text="x"), timeout=5)).node == "live"
            for _ in range(2):
                items = [r.node async for r in stub.count(EchoRequest(count=2))]
                assert items == ["live", "live"]

            async def gen() -> AsyncIterator[EchoRequest]:
                yield EchoRequest(text="g")

            for _ in range(2):
                # refused before the first item was taken: retried even for a generator
                assert (await stub.collect(gen())).text == "g"
                async with stub.chat() as chat:
                    await chat.send(EchoRequest(text="b"))
                    reply = await chat.recv()
                    assert reply is not None and reply.node == "live"

        # without retries the dead node surfaces as UNAVAILABLE
        async with micro.Client(registry=registry, selector=RoundRobin(), retries=0) as client:
            stub = EchoClient("echo", client=client)
            outcomes = []
            for _ in range(2):
                try:
                    outcomes.append((await stub.echo(EchoRequest())).node)
                except micro.Error as exc:
                    assert exc.grpc_status is Status.UNAVAILABLE and exc.code == 503
                    outcomes.append("error")
            assert sorted(outcomes) == ["error", "live"]


async def test_only_dead_nodes_gives_unavailable_after_bounded_retries() -> None:
    registry = await static_registry(dead_address(), dead_address())
    async with micro.Client(registry=registry, retries=3, backoff=0.01) as client:
        with pytest.raises(micro.Error) as info:
            await EchoClient("echo", client=client).echo(EchoRequest())
        assert info.value.grpc_status is Status.UNAVAILABLE
        with pytest.raises(micro.Error) as info:
            await EchoClient(address=dead_address(), client=client).echo(EchoRequest())
        assert info.value.code == 503


async def test_stop_deregisters_first_then_drains_then_closes() -> None:
    log: list[str] = []

    class Recording(MemoryRegistry):
        async def deregister(self, service: ServiceRecord) -> None:
            log.append("deregister")
            await super().deregister(service)

    class Slow(Echo):
        async def echo(self, request: EchoRequest, context: micro.Context) -> EchoReply:
            reply = await super().echo(request, context)
            log.append(f"handled {request.text}")
            return reply

    handler = Slow("a")
    registry = Recording()
    svc = micro.Service("echo", registry=registry, on_stop=[lambda s: log.append("on_stop")])
    svc.handle(ECHO_SPEC, handler)
    await svc.start()
    address = svc.address
    async with micro.Client(registry=MemoryRegistry(), retries=0) as client:
        stub = EchoClient(address=address, client=client)
        inflight = asyncio.create_task(stub.echo(EchoRequest(text="slow", sleep_ms=400)))
        await asyncio.wait_for(handler.started.wait(), 5)
        stopping = asyncio.create_task(svc.stop(grace=5))
        await eventually(
            lambda: svc.health.get("") == ServingStatus.NOT_SERVING, what="health says NOT_SERVING"
        )
        assert log == ["deregister"]  # deregistered while the call is still running
        with pytest.raises(NotFound):
            await registry.get_service("echo")
        # new calls are refused while draining, health says NOT_SERVING
        with pytest.raises(micro.Error) as info:
            await stub.echo(EchoRequest(text="late"))
        assert info.value.grpc_status is Status.UNAVAILABLE
        assert svc.health.get("test.v1.Echo") == ServingStatus.NOT_SERVING
        # the in-flight call completes normally
        assert (await inflight).text == "slow"
        await asyncio.wait_for(stopping, 5)
        assert log == ["deregister", "handled slow", "on_stop"]
        with pytest.raises(micro.Error) as info:
            await stub.echo(EchoRequest(text="after"))
        assert info.value.grpc_status is Status.UNAVAILABLE


async def test_draining_node_is_skipped_by_retries() -> None:
    blocker = Echo("a")
    async with serving(blocker) as a, serving(Echo("b")) as b:
        registry = await static_registry(a.address, b.address)
        async with micro.Client(registry=registry, selector=RoundRobin()) as client:
            stub = EchoClient("echo", client=client)
            stuck = asyncio.create_task(
                EchoClient(address=a.address, client=client).echo(EchoRequest(sleep_ms=10_000))
            )
            await asyncio.wait_for(blocker.started.wait(), 5)
            stopping = asyncio.create_task(a.stop(grace=10))
            await eventually(
                lambda: a.health.get("") == ServingStatus.NOT_SERVING, what="a draining"
            )
            for _ in range(4):
                assert (await stub.echo(EchoRequest())).node == "b"
                # a list of requests is replayable: retried on b
                assert (await stub.collect([EchoRequest(text="l")])).node == "b"

            async def slow_gen() -> AsyncIterator[EchoRequest]:
                yield EchoRequest(text="once")

            # a generator already consumed is not replayed: the 503 surfaces (when a is picked)
            outcomes = set()
            for _ in range(4):
                try:
                    outcomes.add((await stub.collect(slow_gen())).node)
                except micro.Error as exc:
                    assert exc.grpc_status is Status.UNAVAILABLE
                    outcomes.add("refused")
            assert outcomes == {"b", "refused"}
            stuck.cancel()
            with pytest.raises(asyncio.CancelledError):
                await stuck
            await asyncio.wait_for(stopping, 5)


async def test_grace_expiry_cancels_remaining_calls() -> None:
    handler = Echo()
    svc = micro.Service("echo", registry=MemoryRegistry())
    svc.handle(ECHO_SPEC, handler)
    await svc.start()
    async with micro.Client(registry=MemoryRegistry(), retries=0) as client:
        call = asyncio.create_task(
            EchoClient(address=svc.address, client=client).echo(EchoRequest(sleep_ms=10_000))
        )
        await asyncio.wait_for(handler.started.wait(), 5)
        await asyncio.wait_for(svc.stop(grace=0.1), 5)
        await eventually(lambda: "echo-cancelled" in handler.events, what="the handler cancelled")
        with pytest.raises(micro.Error):
            await asyncio.wait_for(call, 5)


async def test_hooks_and_duplicate_registration() -> None:
    seen: list[str] = []
    svc = micro.Service("echo", registry=MemoryRegistry())
    svc.handle(ECHO_SPEC, Echo())
    with pytest.raises(ValueError):
        svc.handle(ECHO_SPEC, Echo())

    @svc.on_start
    async def started(service: micro.Service) -> None:
        seen.append(f"start {service.address}")

    svc.on_stop(lambda service: seen.append("stop"))
    async with svc:
        assert seen == [f"start {svc.address}"]
    assert seen[-1] == "stop"


async def test_serve_stops_gracefully_on_sigterm() -> None:
    registry = MemoryRegistry()
    ready = asyncio.Event()
    svc = micro.Service("echo", registry=registry, on_start=[lambda s: ready.set()])
    svc.handle(ECHO_SPEC, Echo())
    task = asyncio.create_task(svc.serve(grace=1))
    await asyncio.wait_for(ready.wait(), 5)
    assert len(await registry.get_service("echo")) == 1
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(task, 5)
    with pytest.raises(NotFound):
        await registry.get_service("echo")


@pytest.fixture
def memory_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MICRO_REGISTRY", "memory")
    registry_mod.set_default(None)
    yield
    registry_mod.set_default(None)


async def test_default_client_and_registry_from_env(memory_env: None) -> None:
    svc = micro.Service("echo")  # registry from MICRO_REGISTRY=memory, shared process-wide
    svc.handle(ECHO_SPEC, Echo("env"))
    async with svc:
        assert isinstance(svc.registry, MemoryRegistry)
        assert micro.client.default() is micro.client.default()
        assert micro.client.default().registry is svc.registry
        reply = await EchoClient("echo").echo(EchoRequest(text="d"))  # the default client
        assert reply.node == "env"
        await micro.client.default().close()


def test_each_event_loop_gets_its_own_default_client() -> None:
    async def current() -> micro.Client:
        return micro.client.default()

    first = asyncio.run(current())
    second = asyncio.run(current())
    assert first is not second  # channels of a closed loop are never reused


def test_a_service_that_cannot_listen_exits_with_one_line() -> None:
    import socket
    import subprocess
    import sys

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = (
            "import micro\n"
            "registry = micro.MemoryRegistry()\n"
            f"micro.Service('svc', address='127.0.0.1:{port}', registry=registry).run()\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
        )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"micro: svc: cannot listen on 127.0.0.1:{port}: Address already in use"
    )


async def test_start_error_is_raised_by_start() -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        registry = micro.MemoryRegistry()
        service = micro.Service("svc", address=f"127.0.0.1:{port}", registry=registry)
        with pytest.raises(micro.StartError, match="cannot listen"):
            await service.start()
