"""Safe retries, on both transports over real sockets: a call that may have reached a
handler runs again on another node only when it is idempotent (its proto's
``idempotency_level``, ``idempotent=True`` per call, or ``assume_idempotent``); a call no
handler saw (a draining node's refusal, an unreachable node) always fails over."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack

import pytest
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import RequestReceived

import micro
from golden.streaming.v1 import EchoReply, EchoRequest
from golden.streaming.v1.streaming_micro import (
    STREAMER_ECHO,
    STREAMER_PUT,
    StreamerClient,
    StreamerHandler,
    register_streamer_handler,
)
from micro.errors import Status
from micro.transport import GrpcioTransport, Transport
from micro.transport.grpclib_impl import GrpclibTransport

WIRES: dict[str, Callable[[], Transport]] = {"grpcio": GrpcioTransport, "grpclib": GrpclibTransport}


class InOrder:
    """Picks the node with the smallest id: node "a" first, then (once tried) "b"."""

    def select(self, nodes: Sequence[micro.Node], *, service: str = "") -> micro.Node:
        return min(nodes, key=lambda n: n.id)


class Node(StreamerHandler):
    """Counts the calls its handlers run; node "a" answers UNAVAILABLE after running."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.runs = 0

    async def echo(self, request: EchoRequest, context: micro.Context) -> EchoReply:
        self.runs += 1
        if self.name == "a":  # e.g. its own downstream call failed
            raise micro.errors.unavailable("retried", "a downstream node is unavailable")
        return EchoReply(text=f"{request.text} from {self.name}")

    async def put(self, request: EchoRequest, context: micro.Context) -> EchoReply:
        return await self.echo(request, context)


Cluster = tuple[micro.Client, dict[str, Node], dict[str, micro.Service]]


@pytest.fixture(params=sorted(WIRES))
async def two_nodes(request: pytest.FixtureRequest) -> AsyncIterator[Cluster]:
    registry = micro.MemoryRegistry()
    handlers = {name: Node(name) for name in ("a", "b")}
    services: dict[str, micro.Service] = {}
    async with AsyncExitStack() as stack:
        for name, handler in handlers.items():
            service = micro.Service("retried", registry=registry, transport=WIRES[request.param]())
            service.id = name  # the order InOrder picks them in
            register_streamer_handler(service, handler)
            await service.start()
            stack.push_async_callback(service.stop)
            services[name] = service
        client = micro.Client(
            registry=registry, selector=InOrder(), retries=2, transport=WIRES[request.param]()
        )
        stack.push_async_callback(client.close)
        yield client, handlers, services


async def test_a_handlers_unavailable_is_not_retried_for_a_non_idempotent_method(
    two_nodes: Cluster,
) -> None:
    client, nodes, _ = two_nodes
    with pytest.raises(micro.Error) as info:
        await StreamerClient("retried", client=client).echo(EchoRequest(text="x"))
    assert info.value.grpc_status is Status.UNAVAILABLE
    assert info.value.detail == "a downstream node is unavailable"
    assert (nodes["a"].runs, nodes["b"].runs) == (1, 0)  # ran once, never twice


async def test_an_idempotent_method_is_retried_on_another_node(two_nodes: Cluster) -> None:
    client, nodes, _ = two_nodes
    assert STREAMER_PUT.idempotent  # option idempotency_level = IDEMPOTENT
    reply = await StreamerClient("retried", client=client).put(EchoRequest(text="x"))
    assert reply.text == "x from b"
    assert (nodes["a"].runs, nodes["b"].runs) == (1, 1)


async def test_the_caller_opts_in_per_call(two_nodes: Cluster) -> None:
    client, nodes, _ = two_nodes
    reply = await client.unary(
        STREAMER_ECHO, EchoRequest(text="x"), service="retried", idempotent=True
    )
    assert reply.text == "x from b"
    with pytest.raises(micro.Error):  # and opts out for an idempotent method
        await client.unary(STREAMER_PUT, EchoRequest(text="y"), service="retried", idempotent=False)
    assert (nodes["a"].runs, nodes["b"].runs) == (2, 1)


async def test_middleware_can_mark_a_call_idempotent(two_nodes: Cluster) -> None:
    client, nodes, _ = two_nodes

    async def idempotent(call: micro.ClientCall, next: micro.ClientNext) -> object:
        assert call.idempotent is call.method.idempotent
        call.idempotent = True
        return await next(call)

    async with micro.Client(
        registry=client.registry, selector=InOrder(), middleware=[idempotent]
    ) as marked:
        reply = await StreamerClient("retried", client=marked).echo(EchoRequest(text="x"))
    assert reply.text == "x from b"
    assert (nodes["a"].runs, nodes["b"].runs) == (1, 1)


async def test_assume_idempotent_retries_every_method(two_nodes: Cluster) -> None:
    client, nodes, _ = two_nodes
    async with micro.Client(
        registry=client.registry, selector=InOrder(), assume_idempotent=True
    ) as assuming:
        reply = await StreamerClient("retried", client=assuming).echo(EchoRequest(text="x"))
    assert reply.text == "x from b"
    assert (nodes["a"].runs, nodes["b"].runs) == (1, 1)


async def test_a_draining_nodes_refusal_fails_over_whatever_the_method(
    two_nodes: Cluster,
) -> None:
    """A node that is stopping answers UNAVAILABLE before any handler runs, and says so
    (``micro-unprocessed``): the call goes to another node, idempotent or not."""
    client, nodes, services = two_nodes
    a = services["a"]
    a._draining = True  # what stop() sets first; the node still answers on its address
    try:
        reply = await StreamerClient("retried", client=client).echo(EchoRequest(text="x"))
    finally:
        a._draining = False
    assert reply.text == "x from b"
    assert (nodes["a"].runs, nodes["b"].runs) == (0, 1)


async def test_an_unreachable_node_fails_over_for_a_non_idempotent_method() -> None:
    """Nothing was sent to a node that refused the connection."""
    registry = micro.MemoryRegistry()
    handler = Node("b")
    service = micro.Service("retried", registry=registry)
    service.id = "b"
    register_streamer_handler(service, handler)
    await service.start()
    try:
        dead = micro.Node(id="a", address="127.0.0.1:1")
        record = await registry.get_service("retried")
        nodes = (dead, *record[0].nodes)
        await registry.register(micro.ServiceRecord(name="retried", nodes=nodes))
        async with micro.Client(registry=registry, selector=InOrder(), retries=2) as client:
            stub = StreamerClient("retried", client=client)
            assert (await asyncio.wait_for(stub.echo(EchoRequest(text="x")), 10)).text == (
                "x from b"
            )
    finally:
        await service.stop()
    assert handler.runs == 1


class RefusingServer:
    """An HTTP/2 server that resets every stream with REFUSED_STREAM (as a server at its
    stream limit does): the request provably ran nowhere."""

    def __init__(self) -> None:
        self.refused = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        h2 = H2Connection(H2Configuration(client_side=False))
        h2.initiate_connection()
        writer.write(h2.data_to_send())
        try:
            while data := await reader.read(65536):
                for event in h2.receive_data(data):
                    if isinstance(event, RequestReceived):
                        self.refused += 1
                        h2.reset_stream(event.stream_id, ErrorCodes.REFUSED_STREAM)
                writer.write(h2.data_to_send())
                await writer.drain()
        finally:
            writer.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def test_a_refused_stream_fails_over_for_a_non_idempotent_method() -> None:
    """On grpclib (grpcio's C-core retries REFUSED_STREAM itself)."""
    refusing = RefusingServer()
    refused_at = await refusing.start()
    registry = micro.MemoryRegistry()
    handler = Node("b")
    service = micro.Service("retried", registry=registry, transport=GrpclibTransport())
    service.id = "b"
    register_streamer_handler(service, handler)
    await service.start()
    try:
        record = await registry.get_service("retried")
        nodes = (micro.Node(id="a", address=refused_at), *record[0].nodes)
        await registry.register(micro.ServiceRecord(name="retried", nodes=nodes))
        async with micro.Client(
            registry=registry, selector=InOrder(), transport=GrpclibTransport()
        ) as client:
            stub = StreamerClient("retried", client=client)
            assert (await asyncio.wait_for(stub.echo(EchoRequest(text="x")), 10)).text == (
                "x from b"
            )
    finally:
        await service.stop()
        await refusing.close()
    assert (refusing.refused, handler.runs) == (1, 1)
