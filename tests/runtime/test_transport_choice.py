"""Service, Client and the embedded broker take a transport (``transport=`` or
``MICRO_TRANSPORT``), and use it for both sides of every call."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest

import micro
from micro import transport
from micro.broker.embedded import EmbeddedBroker
from micro.spec import AnyMethod
from micro.tls import TLS
from micro.transport import ClientTransport, Dispatch, GrpcioTransport, ServerTransport, Transport
from micro.transport.grpclib_impl import GrpclibTransport
from micro.transport.options import DEFAULT, TransportOptions
from tests.runtime.echo_kit import ECHO, EchoReply, EchoRequest, serving

TRANSPORTS = pytest.mark.parametrize("inner", [GrpcioTransport, GrpclibTransport])


class Counting:
    """A transport that counts the servers and clients it builds (over a real one)."""

    name = "counting"

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.servers = 0
        self.clients = 0

    def server(
        self,
        routes: Mapping[str, AnyMethod],
        dispatch: Dispatch,
        *,
        tls: TLS | None = None,
        options: TransportOptions = DEFAULT,
    ) -> ServerTransport:
        self.servers += 1
        return self.inner.server(routes, dispatch, tls=tls, options=options)

    def client(
        self, *, tls: TLS | None = None, options: TransportOptions = DEFAULT
    ) -> ClientTransport:
        self.clients += 1
        return self.inner.client(tls=tls, options=options)


@TRANSPORTS
async def test_service_and_client_use_the_transport_they_are_given(
    inner: type[Transport],
) -> None:
    wire = Counting(inner())
    async with serving(transport=wire) as svc:
        assert wire.servers == 1
        async with micro.Client(registry=micro.MemoryRegistry(), transport=wire) as client:
            reply = await client.unary(ECHO, EchoRequest(text="hi"), address=svc.address)
        assert isinstance(reply, EchoReply) and reply.text == "hi"
        assert wire.clients == 1


@TRANSPORTS
async def test_the_embedded_broker_serves_and_hands_over_on_its_transport(
    inner: type[Transport],
) -> None:
    wire = Counting(inner())
    registry = micro.MemoryRegistry()
    subscriber = EmbeddedBroker(registry, transport=wire)
    publisher = EmbeddedBroker(registry, transport=wire)
    got: asyncio.Queue[bytes] = asyncio.Queue()

    async def handle(delivery: micro.Delivery) -> None:
        await got.put(delivery.message.data)

    try:
        await subscriber.subscribe("t.choice", handle)
        await publisher.publish(micro.Message("t.choice", b"payload"))
        assert await asyncio.wait_for(got.get(), 10) == b"payload"
        # one server (the subscriber's endpoint), the publisher's client made the hand-over
        assert wire.servers == 1 and wire.clients >= 1
    finally:
        await publisher.close()
        await subscriber.close()


def test_micro_transport_picks_the_default_and_rejects_unknown_names() -> None:
    assert isinstance(transport.from_env({}), GrpcioTransport)
    assert isinstance(transport.from_env({"MICRO_TRANSPORT": " GRPCLIB "}), GrpclibTransport)
    assert transport.GrpclibTransport is GrpclibTransport  # imported on use
    with pytest.raises(
        ValueError, match="unknown MICRO_TRANSPORT='bogus'; valid values: grpcio, grpclib"
    ):
        transport.from_env({"MICRO_TRANSPORT": "bogus"})
