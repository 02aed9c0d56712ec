"""The embedded broker: no server; in one process, and across processes on the local registry."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import micro
from golden.streaming.v1 import EchoRequest
from golden.streaming.v1.streaming_micro import StreamerClient
from micro.broker import BrokerError, Delivery, Handler, Message
from micro.broker.embedded import (
    BROKER_SPEC,
    DELIVER,
    Delivered,
    EmbeddedBroker,
    Envelope,
    topic_service,
)
from micro.registry import LocalRegistry, MemoryRegistry, NotFound
from tests.runtime.procs import nodes
from tests.waiting import eventually


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def registry() -> AsyncIterator[MemoryRegistry]:
    async with MemoryRegistry() as reg:
        yield reg


def recorder(sink: list[tuple[str, str]], name: str) -> Handler:
    async def handle(delivery: Delivery) -> None:
        sink.append((name, delivery.message.data.decode()))

    return handle


async def test_in_process_queue_groups_and_plain_subscribers(registry: MemoryRegistry) -> None:
    got: list[tuple[str, str]] = []
    subscriber, publisher = EmbeddedBroker(registry), EmbeddedBroker(registry)
    await subscriber.subscribe("t.x", recorder(got, "q1"), queue="workers")
    await subscriber.subscribe("t.x", recorder(got, "q2"), queue="workers")
    await publisher.subscribe("t.x", recorder(got, "all"))
    texts = [str(i) for i in range(40)]
    for text in texts:
        await publisher.publish(Message("t.x", text.encode()))
    await eventually(lambda: len(got) == 80, timeout=10)
    workers = [(n, t) for n, t in got if n != "all"]
    assert sorted(t for _, t in workers) == sorted(texts)  # each exactly once in the group
    assert {n for n, _ in workers} == {"q1", "q2"}
    assert [t for n, t in got if n == "all"] == texts  # in order, all of them
    await subscriber.close()
    await publisher.close()
    with pytest.raises(NotFound):  # closing deregistered every subscription
        await registry.get_service(topic_service("t.x"))


async def test_publishing_with_no_subscriber_is_dropped(registry: MemoryRegistry) -> None:
    broker = EmbeddedBroker(registry)
    await broker.publish(Message("nobody.listens", b"x"))  # at most once: no error
    await broker.close()


async def test_unsubscribed_handlers_get_nothing_more(registry: MemoryRegistry) -> None:
    got: list[tuple[str, str]] = []
    broker = EmbeddedBroker(registry)
    sub = await broker.subscribe("t.y", recorder(got, "s"))
    await broker.publish(Message("t.y", b"1"))
    await eventually(lambda: len(got) == 1, timeout=5)
    await sub.unsubscribe()
    await broker.publish(Message("t.y", b"2"))
    await asyncio.sleep(0.2)
    assert got == [("s", "1")]
    await broker.close()


async def test_durable_on_the_embedded_broker_warns_and_stays_at_most_once(
    registry: MemoryRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[bool] = []
    broker = EmbeddedBroker(registry)

    async def failing(delivery: Delivery) -> None:
        seen.append(delivery.redelivered)
        raise RuntimeError("handler bug")

    caplog.set_level(logging.WARNING, logger="micro.broker")
    await broker.subscribe("t.z", failing, queue="svc", durable=True)
    await broker.publish(Message("t.z", b"x"), durable=True)
    await eventually(lambda: len(seen) == 1, timeout=5)
    await asyncio.sleep(0.3)
    assert seen == [False]  # logged, not redelivered
    messages = [r.getMessage() for r in caplog.records]
    assert any("at most once" in m for m in messages)
    assert any("subscriber for 't.z' failed" in m for m in messages)
    await broker.close()


async def test_bad_topics_are_one_line_errors(registry: MemoryRegistry) -> None:
    broker = EmbeddedBroker(registry)
    with pytest.raises(BrokerError, match="invalid topic 'a b'"):
        await broker.publish(Message("a b", b""))
    with pytest.raises(BrokerError, match=r"invalid topic 'orders\.>'"):
        await broker.subscribe("orders.>", recorder([], "x"))


def local_env(path: Path, topic: str) -> dict[str, str]:
    return {
        "MICRO_REGISTRY": "local",
        "MICRO_REGISTRY_PATH": str(path),
        "MICRO_BROKER": "embedded",
        "NODE_TOPIC": topic,
    }


async def test_across_processes_queue_groups_and_failover(tmp_path: Path) -> None:
    path, topic, name = tmp_path / "registry.db", unique("orders"), unique("billing")
    registry = LocalRegistry(path)
    broker = EmbeddedBroker(registry)
    with nodes(local_env(path, topic), tmp_path / "events") as group:
        a = group.start(name, "a")
        group.start(name, "b")
        group.start(unique("audit"), "c")
        first = [f"m{i}" for i in range(30)]
        for text in first:
            await echo_event(topic).publish(EchoRequest(text=text), broker=broker)
        await eventually(lambda: len(group.events()) >= 60, timeout=20)
        events = group.events()
        replicas = [(n, t) for n, t, _ in events if n in "ab"]
        assert sorted(t for _, t in replicas) == sorted(first)
        assert {n for n, _ in replicas} == {"a", "b"}
        assert sorted(t for n, t, _ in events if n == "c") == sorted(first)
        # a member killed without deregistering is skipped: b takes everything
        a.kill()
        second = [f"n{i}" for i in range(20)]
        for text in second:
            await echo_event(topic).publish(EchoRequest(text=text), broker=broker)
        await eventually(lambda: len(group.events()) >= 100, timeout=20)
        late = [(n, t) for n, t, _ in group.events() if t.startswith("n") and n in "ab"]
        assert sorted(late) == sorted(("b", t) for t in second)
    await broker.close()
    await registry.close()


async def test_across_processes_a_raising_subscriber_keeps_the_service_up(
    tmp_path: Path,
) -> None:
    path, topic, name = tmp_path / "registry.db", unique("raise"), unique("svc")
    registry = LocalRegistry(path)
    broker = EmbeddedBroker(registry)
    with nodes(local_env(path, topic), tmp_path / "events") as group:
        node = group.start(name, "a")
        await echo_event(topic).publish(EchoRequest(text="raise-1"), broker=broker)
        await echo_event(topic).publish(EchoRequest(text="ok-1"), broker=broker)
        await eventually(lambda: len(group.events()) >= 2, timeout=10)
        await asyncio.sleep(0.5)
        assert [t for _, t, _ in group.events()] == ["raise-1", "ok-1"]  # no redelivery
        async with micro.Client(registry=registry) as c:
            reply = await StreamerClient(name, client=c).echo(EchoRequest(text="alive"))
        assert reply.text == "alive from a"
        assert "failing on raise-1" in node.log
        assert node.terminate() == 0  # SIGTERM: unsubscribes and exits cleanly
    with pytest.raises(NotFound):
        await registry.get_service(topic_service(topic))
    await broker.close()
    await registry.close()


def echo_event(topic: str) -> micro.Event[EchoRequest]:
    return micro.Event(topic, EchoRequest)


def test_the_hand_over_keeps_its_wire() -> None:
    """Generated from runtime/protos/micro/broker/v1/broker.proto, the hand-over is the one
    the hand-written messages spoke: the bytes below are theirs, so processes of both
    versions still deliver to each other."""
    envelope = Envelope(
        topic="news",
        data=b"\x00\x01",
        content_type="application/json",
        metadata={"k": "v"},
        subscription="sub-1",
    )
    wire = b'\n\x04news\x12\x02\x00\x01\x1a\x10application/json"\x06\n\x01k\x12\x01v*\x05sub-1'
    assert bytes(envelope) == wire
    assert Envelope.parse(wire) == envelope
    assert bytes(Delivered()) == b""
    assert (DELIVER.path, DELIVER.handler_attr, DELIVER.kind) == (
        "/micro.broker.v1.Broker/Deliver",
        "deliver",
        micro.Kind.UNARY,
    )
    assert (DELIVER.request_name, DELIVER.response_name) == (
        "micro.broker.v1.Envelope",
        "micro.broker.v1.Delivered",
    )
    assert BROKER_SPEC.name == "micro.broker.v1.Broker"
    assert BROKER_SPEC.methods == (DELIVER,)
