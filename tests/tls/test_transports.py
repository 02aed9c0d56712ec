"""TLS and mTLS between micro services and clients, on both transports, with real
certificates made at test time."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

import micro
from micro.broker.embedded import EmbeddedBroker, topic_service
from micro.registry import NotFound
from micro.status import Status
from micro.transport import Transport
from tests.runtime.echo_kit import ECHO, EchoRequest, serving
from tests.tls.pki import Pki, make_pki


async def test_tls_call(wire: Transport, pki: Pki) -> None:
    async with (
        serving(transport=wire, tls=pki.server()) as service,
        micro.Client(registry=service.registry, transport=wire, tls=pki.client()) as client,
    ):
        reply = await client.unary(ECHO, EchoRequest(text="hi"), service="echo")
        assert reply.text == "hi"
        (node,) = service.record.nodes
        assert node.metadata["tls"] == "true"


async def test_mtls_call_and_refusal_without_a_client_certificate(
    wire: Transport, pki: Pki
) -> None:
    async with serving(transport=wire, tls=pki.server("require")) as service:
        async with micro.Client(
            registry=service.registry, transport=wire, tls=pki.client()
        ) as client:
            assert (await client.unary(ECHO, EchoRequest(text="m"), service="echo")).text == "m"
        async with micro.Client(
            registry=service.registry, transport=wire, tls=pki.client(identity=False), retries=0
        ) as anonymous:
            with pytest.raises(micro.Error) as refused:
                await anonymous.unary(ECHO, EchoRequest(text="x"), service="echo", timeout=10)
        assert refused.value.grpc_status is Status.UNAVAILABLE


async def test_plaintext_client_against_tls_server_fails_quickly(wire: Transport, pki: Pki) -> None:
    async with serving(transport=wire, tls=pki.server()) as service:
        async with micro.Client(registry=service.registry, transport=wire, tls=False) as client:
            with pytest.raises(micro.Error) as by_name:
                await client.unary(ECHO, EchoRequest(text="x"), service="echo")
            assert "every node serves TLS" in by_name.value.detail
            assert "MICRO_TLS_CA" in by_name.value.detail
            started = time.monotonic()
            with pytest.raises(micro.Error) as by_address:
                await client.unary(ECHO, EchoRequest(text="x"), address=service.address, timeout=30)
            assert time.monotonic() - started < 10
            assert "set MICRO_TLS_CA" in by_address.value.detail
            assert by_address.value.grpc_status is Status.UNAVAILABLE


async def test_tls_client_never_downgrades_to_a_plaintext_node(wire: Transport, pki: Pki) -> None:
    async with serving(transport=wire, tls=False) as service:
        async with micro.Client(
            registry=service.registry, transport=wire, tls=pki.client()
        ) as client:
            with pytest.raises(micro.Error) as refused:
                await client.unary(ECHO, EchoRequest(text="x"), service="echo")
            assert "never downgrades" in refused.value.detail
            assert "tls" not in dict(service.record.nodes[0].metadata)


async def test_wrong_ca_fails_verification(wire: Transport, pki: Pki, tmp_path: Path) -> None:
    other = make_pki(tmp_path / "other")
    async with serving(transport=wire, tls=pki.server()) as service:
        async with micro.Client(
            registry=service.registry, transport=wire, tls=other.client(), retries=0
        ) as client:
            with pytest.raises(micro.Error) as failed:
                await client.unary(ECHO, EchoRequest(text="x"), service="echo", timeout=10)
            assert failed.value.grpc_status is Status.UNAVAILABLE


async def test_wrong_hostname_fails_verification(wire: Transport, pki: Pki) -> None:
    async with serving(transport=wire, tls=pki.server()) as service:
        wrong = pki.client(server_name="elsewhere.example")
        async with micro.Client(
            registry=service.registry, transport=wire, tls=wrong, retries=0
        ) as client:
            with pytest.raises(micro.Error) as failed:
                await client.unary(ECHO, EchoRequest(text="x"), service="echo", timeout=10)
            assert failed.value.grpc_status is Status.UNAVAILABLE
        right = pki.client(server_name="localhost")
        async with micro.Client(registry=service.registry, transport=wire, tls=right) as client:
            assert (await client.unary(ECHO, EchoRequest(text="y"), service="echo")).text == "y"


async def test_the_embedded_broker_hands_over_over_mtls(wire: Transport, pki: Pki) -> None:
    registry = micro.MemoryRegistry()
    mtls = pki.server("require")  # one identity per node: it serves and calls with it
    subscriber = EmbeddedBroker(registry, transport=wire, tls=mtls)
    plaintext = EmbeddedBroker(registry, transport=wire, tls=False)
    publisher = EmbeddedBroker(registry, transport=wire, tls=mtls)
    got: asyncio.Queue[bytes] = asyncio.Queue()

    async def handle(delivery: micro.Delivery) -> None:
        await got.put(delivery.message.data)

    try:
        await subscriber.subscribe("t.tls", handle)
        (node,) = (await registry.get_service(topic_service("t.tls")))[0].nodes
        assert node.metadata["tls"] == "true"
        assert await publisher.deliver(micro.Message("t.tls", b"sealed")) == 1
        assert await asyncio.wait_for(got.get(), 10) == b"sealed"
        # a plaintext publisher does not reach a TLS subscriber, nor the reverse
        assert await plaintext.deliver(micro.Message("t.tls", b"open")) == 0
        await plaintext.subscribe("t.open", handle)
        assert await publisher.deliver(micro.Message("t.open", b"x")) == 0
        assert got.empty()
    finally:
        for broker in (subscriber, plaintext, publisher):
            await broker.close()


async def test_a_service_given_tls_hands_its_events_over_with_it(wire: Transport, pki: Pki) -> None:
    registry = micro.MemoryRegistry()
    mtls = pki.server("require")
    event = micro.Event("t.service-tls", EchoRequest)
    got: asyncio.Queue[str] = asyncio.Queue()
    subscriber = micro.Service("sub", registry=registry, transport=wire, tls=mtls)

    @subscriber.subscriber(event)
    async def handle(message: EchoRequest) -> None:
        await got.put(message.text)

    publisher = micro.Service("pub", registry=registry, transport=wire, tls=mtls)
    plaintext = EmbeddedBroker(registry, transport=wire, tls=False)
    try:
        async with subscriber, publisher:
            (node,) = (await registry.get_service(topic_service(event.topic)))[0].nodes
            assert node.metadata["tls"] == "true"  # the hand-over endpoint serves TLS
            await publisher.publish(event, EchoRequest(text="sealed"))
            assert await asyncio.wait_for(got.get(), 10) == "sealed"
            assert await plaintext.deliver(micro.Message(event.topic, b"")) == 0
        assert got.empty()
        # the brokers the services made are closed with them: the subscription is gone
        with pytest.raises(NotFound):
            await registry.get_service(topic_service(event.topic))
    finally:
        await plaintext.close()
