"""One conformance suite for every transport: the same behaviour on grpcio and grpclib,
server and client both on the transport under test, over real sockets on 127.0.0.1.

Where a transport cannot do a thing the same way, the test says so and pins the
difference (the README's transport table lists them)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

import micro
from micro.broker.embedded import EmbeddedBroker
from micro.dynamic import Descriptors, Reflection, Target
from micro.errors import Status
from micro.health import HEALTH_SPEC, HealthCheckRequest, ServingStatus
from micro.transport import GrpcioTransport, Transport
from micro.transport.grpclib_impl import GrpclibTransport
from tests.runtime.echo_kit import (
    ECHO,
    ECHO_SPEC,
    Echo,
    EchoClient,
    EchoReply,
    EchoRequest,
    serving,
)
from tests.waiting import eventually

WIRES: dict[str, Callable[[], Transport]] = {"grpcio": GrpcioTransport, "grpclib": GrpclibTransport}


@pytest.fixture(params=sorted(WIRES))
def wire(request: pytest.FixtureRequest) -> Transport:
    return WIRES[request.param]()


@pytest.fixture
async def echo(wire: Transport) -> AsyncIterator[tuple[micro.Service, Echo, micro.Client]]:
    handler = Echo()
    async with (
        serving(handler, transport=wire) as service,
        micro.Client(registry=service.registry, transport=wire) as client,
    ):
        yield service, handler, client


Echoing = tuple[micro.Service, Echo, micro.Client]


async def test_every_rpc_kind(echo: Echoing) -> None:
    _, _, client = echo
    stub = EchoClient("echo", client=client)
    assert (await stub.echo(EchoRequest(text="hi"))).text == "hi"
    assert [r.index async for r in stub.count(EchoRequest(count=3))] == [0, 1, 2]
    assert (await stub.collect([EchoRequest(text="a"), EchoRequest(text="b")])).text == "a,b"

    async def requests() -> AsyncIterator[EchoRequest]:
        for text in ("x", "y"):
            yield EchoRequest(text=text)

    assert (await stub.collect(requests())).index == 2
    async with stub.chat() as chat:
        for text in ("1", "2"):  # sends and receives interleave
            await chat.send(EchoRequest(text=text))
            reply = await chat.recv()
            assert reply is not None and reply.text == f"echo: {text}"
        await chat.close_send()
        assert [r async for r in chat] == []


async def test_metadata_both_ways_binary_included(echo: Echoing) -> None:
    _, _, client = echo
    reply = await client.unary_reply(
        ECHO,
        EchoRequest(text="md"),
        service="echo",
        metadata=[("x-user", "ada"), ("x-user", "bob"), ("x-blob-bin", b"\x00\xff")],
    )
    assert reply.message.metadata["x-user"] == "ada"  # the handler echoes the first value
    assert reply.headers["x-reply-header"] == "h1"
    assert reply.trailers["x-reply-trailer"] == "t1"
    stream = EchoClient("echo", client=client).count(EchoRequest(count=1))
    async with stream:
        assert [r.index async for r in stream] == [0]
        assert stream.headers is not None and stream.headers["x-stream"] == "yes"


async def test_a_handler_sees_binary_metadata_as_bytes(wire: Transport) -> None:
    seen: list[object] = []

    class Peek(Echo):
        async def echo(self, request: EchoRequest, context: micro.Context) -> EchoReply:
            seen.append(context.metadata.get_all("x-blob-bin"))
            context.set_trailer("x-out-bin", b"\x01\x02")
            return EchoReply(text="ok")

    async with (
        serving(Peek(), transport=wire) as service,
        micro.Client(registry=service.registry, transport=wire) as client,
    ):
        reply = await client.unary_reply(
            ECHO, EchoRequest(), service="echo", metadata=[("x-blob-bin", b"\x00\xff")]
        )
    assert seen == [[b"\x00\xff"]]
    assert reply.trailers["x-out-bin"] == b"\x01\x02"


async def test_errors_travel_with_their_status_and_micro_error(echo: Echoing) -> None:
    _, _, client = echo
    stub = EchoClient("echo", client=client)
    with pytest.raises(micro.Error) as info:
        await stub.echo(EchoRequest(text="9", fail="not_found"))
    assert info.value.to_dict() == {
        "id": "echo",
        "code": 404,
        "detail": "no such thing: 9",
        "status": "Not Found",
    }
    assert info.value.grpc_status is Status.NOT_FOUND
    assert info.value.origin is micro.errors.Origin.REMOTE
    with pytest.raises(micro.Error) as teapot:
        await stub.echo(EchoRequest(fail="custom"))
    assert (teapot.value.code, teapot.value.status) == (418, "Teapot")
    with pytest.raises(micro.Error) as boom:
        await stub.echo(EchoRequest(fail="boom"))
    assert boom.value.grpc_status is Status.INTERNAL
    assert "secret" not in boom.value.detail  # nothing of the exception leaks
    # an error in the middle of a server stream ends it with that error
    got: list[int] = []
    with pytest.raises(micro.Error) as mid:
        async for reply in stub.count(EchoRequest(count=5, fail="not_found")):
            got.append(reply.index)
    assert got == [0, 1] and mid.value.code == 404
    with pytest.raises(micro.Error) as missing:
        await stub.missing(EchoRequest())
    assert missing.value.grpc_status is Status.UNIMPLEMENTED


async def test_deadlines_expire_and_propagate(echo: Echoing) -> None:
    _, handler, client = echo
    stub = EchoClient("echo", client=client)
    with pytest.raises(micro.Error) as info:
        await stub.echo(EchoRequest(sleep_ms=2000), timeout=0.2)
    assert info.value.grpc_status is Status.DEADLINE_EXCEEDED
    assert info.value.detail == "Echo.Echo: deadline exceeded"
    await eventually(lambda: "echo-cancelled" in handler.events, what="the handler cancelled")
    reply = await stub.echo(EchoRequest(text="t"), timeout=2.0)
    assert 1.0 < reply.deadline_remaining <= 2.0 * 1.02  # grpc-timeout may round up


async def test_the_client_cancelling_cancels_the_handler(echo: Echoing) -> None:
    _, handler, client = echo
    stub = EchoClient("echo", client=client)
    task = asyncio.create_task(stub.echo(EchoRequest(sleep_ms=5000)))
    await asyncio.wait_for(handler.started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await eventually(lambda: "echo-cancelled" in handler.events, what="unary handler cancelled")
    stream = stub.count(EchoRequest(count=1000, sleep_ms=20))
    async with stream:
        async for reply in stream:
            if reply.index == 1:
                break
    await eventually(lambda: "count-cancelled" in handler.events, what="stream handler")
    async with stub.chat() as chat:
        await chat.send(EchoRequest(text="1", sleep_ms=10_000))  # works on after the end
        assert await chat.recv() is not None
    await eventually(lambda: "chat-cancelled" in handler.events, what="bidi handler cancelled")


async def test_large_messages_both_ways(echo: Echoing) -> None:
    _, _, client = echo
    text = "x" * (3 * 1024 * 1024)  # under the 4 MiB default receive limit of gRPC
    assert (await EchoClient("echo", client=client).echo(EchoRequest(text=text))).text == text


async def test_concurrent_calls_and_streams_share_one_connection(echo: Echoing) -> None:
    _, _, client = echo
    stub = EchoClient("echo", client=client)

    async def one(i: int) -> list[int]:
        if i % 2:
            return [(await stub.echo(EchoRequest(text=str(i)))).index]
        return [r.index async for r in stub.count(EchoRequest(count=20))]

    results = await asyncio.gather(*(one(i) for i in range(40)))
    assert results == [[0] if i % 2 else list(range(20)) for i in range(40)]


async def test_graceful_drain_finishes_calls_in_flight_and_refuses_new_ones(
    wire: Transport,
) -> None:
    handler = Echo()
    service = micro.Service("echo", registry=micro.MemoryRegistry(), transport=wire)
    service.handle(ECHO_SPEC, handler)
    await service.start()
    async with micro.Client(registry=service.registry, transport=wire, retries=0) as client:
        stub = EchoClient(address=service.address, client=client)
        slow = asyncio.create_task(stub.echo(EchoRequest(text="slow", sleep_ms=500)))
        await asyncio.wait_for(handler.started.wait(), 5)
        stopping = asyncio.create_task(service.stop(grace=10))
        await eventually(
            lambda: service.health.get("") == ServingStatus.NOT_SERVING, what="draining"
        )
        with pytest.raises(micro.Error) as refused:
            await stub.echo(EchoRequest(text="new"))
        assert refused.value.grpc_status is Status.UNAVAILABLE
        assert (await slow).text == "slow"  # the call in flight finished
        await stopping


async def test_health_and_reflection(echo: Echoing) -> None:
    _, _, client = echo
    health = await client.unary(HEALTH_SPEC.methods[0], HealthCheckRequest(), service="echo")
    assert health.status == ServingStatus.SERVING
    async with Reflection(client, Target(service="echo"), timeout=5) as reflection:
        listed = await reflection.list_services()
        assert {"test.v1.Echo", "grpc.health.v1.Health"} <= set(listed)
        descriptors = Descriptors(reflection)
        await descriptors.load_symbol("grpc.health.v1.Health")
        check = descriptors.method("/grpc.health.v1.Health/Check")
        assert check.method.kind is micro.Kind.UNARY


async def test_the_embedded_broker_delivers_over_the_transport(wire: Transport) -> None:
    registry = micro.MemoryRegistry()
    subscriber = EmbeddedBroker(registry, transport=wire)
    publisher = EmbeddedBroker(registry, transport=wire)
    got: asyncio.Queue[micro.Message] = asyncio.Queue()

    async def handle(delivery: micro.Delivery) -> None:
        await got.put(delivery.message)

    try:
        await subscriber.subscribe("conformance.topic", handle, queue="q")
        await publisher.publish(
            micro.Message("conformance.topic", b"\x01payload", metadata={"k": "v"})
        )
        message = await asyncio.wait_for(got.get(), 10)
        assert (message.data, dict(message.metadata)) == (b"\x01payload", {"k": "v"})
    finally:
        await publisher.close()
        await subscriber.close()


async def test_an_unreachable_node_is_unavailable_and_retried_elsewhere(
    echo: Echoing, wire: Transport
) -> None:
    service, _, _ = echo
    registry = micro.MemoryRegistry()
    dead = micro.Node(id="dead", address="127.0.0.1:1")
    live = micro.Node(id="live", address=service.address)
    await registry.register(micro.ServiceRecord(name="echo", nodes=(dead, live)))
    async with micro.Client(registry=registry, transport=wire, retries=3) as client:
        for _ in range(5):  # whichever node is picked first, the call lands on the live one
            assert (await EchoClient("echo", client=client).echo(EchoRequest(text="r"))).text == "r"
        with pytest.raises(micro.Error) as info:
            await client.unary(ECHO, EchoRequest(), address="127.0.0.1:1")
    assert info.value.grpc_status is Status.UNAVAILABLE
    assert info.value.detail.startswith("Echo.Echo: cannot reach 127.0.0.1:1")
