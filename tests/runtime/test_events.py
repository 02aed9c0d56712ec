"""Typed events on a Service: decoding by content type, metadata, handler shapes, errors."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

import micro
from golden.streaming.v1 import EchoRequest
from micro import broker as broker_mod
from micro.broker import JSON, BrokerError, Message
from micro.broker.embedded import EmbeddedBroker
from micro.registry import MemoryRegistry
from tests.waiting import eventually

ECHOED = micro.Event("test.echoed", EchoRequest)


@pytest.fixture
async def parts() -> AsyncIterator[tuple[MemoryRegistry, EmbeddedBroker]]:
    registry = MemoryRegistry()
    broker = EmbeddedBroker(registry)
    yield registry, broker
    await broker.close()
    await registry.close()


async def test_subscribers_get_typed_messages_and_metadata(
    parts: tuple[MemoryRegistry, EmbeddedBroker],
) -> None:
    registry, broker = parts
    plain: list[EchoRequest] = []
    detailed: list[tuple[str, str, dict[str, str]]] = []
    service = micro.Service("events", registry=registry, broker=broker)

    @service.subscriber(ECHOED)
    async def one(message: EchoRequest) -> None:
        plain.append(message)

    async def two(message: EchoRequest, delivery: micro.Delivery) -> None:
        m = delivery.message
        detailed.append((message.text, m.content_type, dict(m.metadata)))

    service.subscribe(ECHOED, two, broadcast=True)
    async with service:
        await service.publish(ECHOED, EchoRequest(text="pb", sleep_ms=3), metadata={"k": "v"})
        await ECHOED.publish(EchoRequest(text="js"), content_type=JSON, broker=broker)
        await eventually(lambda: len(plain) == 2 and len(detailed) == 2)
    assert [(m.text, m.sleep_ms) for m in plain] == [("pb", 3), ("js", 0)]
    assert detailed == [
        ("pb", "application/protobuf", {"k": "v"}),
        ("js", "application/json", {}),
    ]


async def test_undecodable_payloads_are_logged_and_dropped(
    parts: tuple[MemoryRegistry, EmbeddedBroker], caplog: pytest.LogCaptureFixture
) -> None:
    registry, broker = parts
    got: list[str] = []
    service = micro.Service("events", registry=registry, broker=broker)

    @service.subscriber(ECHOED)
    async def handle(message: EchoRequest) -> None:
        got.append(message.text)

    caplog.set_level(logging.ERROR)
    async with service:
        await broker.publish(Message("test.echoed", b"\x0a" + b"\xff" * 10, "application/protobuf"))
        await broker.publish(Message("test.echoed", b"{}", "text/yaml"))
        await ECHOED.publish(EchoRequest(text="fine"), broker=broker)
        await eventually(lambda: got == ["fine"])
    errors = [r.getMessage() for r in caplog.records if "dropping a message" in r.getMessage()]
    assert len(errors) == 2 and "unsupported content type 'text/yaml'" in errors[1]


async def test_a_raising_subscriber_does_not_stop_the_service(
    parts: tuple[MemoryRegistry, EmbeddedBroker], caplog: pytest.LogCaptureFixture
) -> None:
    registry, broker = parts
    got: list[str] = []
    service = micro.Service("events", registry=registry, broker=broker)

    @service.subscriber(ECHOED)
    async def handle(message: EchoRequest) -> None:
        got.append(message.text)
        if message.text == "bad":
            raise ValueError("subscriber bug")

    caplog.set_level(logging.ERROR)
    async with service:
        for text in ("bad", "good"):
            await ECHOED.publish(EchoRequest(text=text), broker=broker)
        await eventually(lambda: got == ["bad", "good"])
    assert any("subscriber bug" in (r.exc_text or "") for r in caplog.records)


async def test_default_queue_is_the_service_name_so_replicas_share(
    parts: tuple[MemoryRegistry, EmbeddedBroker],
) -> None:
    registry, broker = parts
    got: list[str] = []
    replicas = [micro.Service("shared", registry=registry, broker=broker) for _ in range(2)]

    def handler(who: str) -> Callable[[EchoRequest], Awaitable[None]]:
        async def handle(message: EchoRequest) -> None:
            got.append(who)

        return handle

    for index, service in enumerate(replicas):
        service.subscribe(ECHOED, handler(str(index)))
    async with replicas[0], replicas[1]:
        for _ in range(20):
            await ECHOED.publish(EchoRequest(text="x"), broker=broker)
        await eventually(lambda: len(got) == 20)
        await asyncio.sleep(0.1)
    assert len(got) == 20 and set(got) == {"0", "1"}


async def test_the_default_broker_is_used_without_one(
    parts: tuple[MemoryRegistry, EmbeddedBroker],
) -> None:
    registry, broker = parts
    got: list[str] = []
    broker_mod.set_default(broker)
    try:
        service = micro.Service("events", registry=registry)

        @service.subscriber(ECHOED)
        async def handle(message: EchoRequest) -> None:
            got.append(message.text)

        async with service:
            assert service.broker is broker
            await ECHOED.publish(EchoRequest(text="via default"))
            await eventually(lambda: got == ["via default"])
    finally:
        broker_mod.set_default(None)


def test_configuration_errors_are_clear() -> None:
    with pytest.raises(BrokerError, match="invalid topic 'has space'"):
        micro.Event("has space", EchoRequest)
    service = micro.Service("events", registry=MemoryRegistry())
    durable = micro.Event("t.durable", EchoRequest, durable=True)

    async def handle(message: EchoRequest) -> None:
        return None

    with pytest.raises(ValueError, match="cannot be broadcast"):
        service.subscribe(durable, handle, broadcast=True)


async def test_unreachable_broker_is_a_start_error() -> None:
    from micro.broker.nats import NatsBroker
    from tests.nats.server import free_port

    service = micro.Service(
        "events",
        registry=MemoryRegistry(),
        broker=NatsBroker(f"nats://127.0.0.1:{free_port()}", connect_timeout=0.5),
    )

    @service.subscriber(ECHOED)
    async def handle(message: EchoRequest) -> None:
        return None

    with pytest.raises(micro.StartError, match=r"cannot subscribe to test\.echoed: cannot reach"):
        await service.start()
