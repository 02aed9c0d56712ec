"""The NATS broker against a real nats-server, subscribers in real processes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import micro
from golden.streaming.v1 import EchoRequest
from golden.streaming.v1.streaming_micro import StreamerClient
from micro.broker import BrokerError, Message, from_env
from micro.broker.nats import NatsBroker
from micro.registry.nats import NatsRegistry
from tests.nats.server import NatsServer
from tests.runtime.procs import Nodes, nodes
from tests.waiting import eventually


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def env(url: str, topic: str) -> dict[str, str]:
    return {
        "MICRO_REGISTRY": "nats",
        "MICRO_REGISTRY_ADDRESS": url,
        "MICRO_BROKER": "nats",
        "MICRO_BROKER_ADDRESS": url,
        # A pull that expires as the server answers it leaves a message unacknowledged
        # until ack_wait; keep that short here so redelivery tests are not timing bets.
        "MICRO_BROKER_ACK_WAIT": "3",
        "NODE_TOPIC": topic,
    }


@pytest.fixture
async def broker(nats_url: str) -> AsyncIterator[NatsBroker]:
    b = NatsBroker(nats_url)
    yield b
    await b.close()


async def publish(broker: NatsBroker, topic: str, text: str, durable: bool = False) -> None:
    event = micro.Event(topic, EchoRequest, durable=durable)
    await event.publish(EchoRequest(text=text), broker=broker)


async def test_queue_group_splits_a_topic_across_replicas(
    nats_url: str, broker: NatsBroker, tmp_path: Path
) -> None:
    topic, name = unique("orders"), unique("billing")
    with nodes(env(nats_url, topic), tmp_path / "events") as group:
        group.start(name, "a")
        group.start(name, "b")  # same service: one queue group
        group.start(unique("audit"), "c")  # another service: its own group
        texts = [f"m{i}" for i in range(60)]
        for text in texts:
            await publish(broker, topic, text)
        await eventually(lambda: len(group.events()) >= 120, timeout=20)
        await asyncio.sleep(0.3)  # nothing more arrives
        events = group.events()
    replicas = [(node, text) for node, text, _ in events if node in "ab"]
    assert sorted(text for _, text in replicas) == sorted(texts)  # each exactly once
    assert {node for node, _ in replicas} == {"a", "b"}  # both took a share
    assert sorted(text for node, text, _ in events if node == "c") == sorted(texts)


async def test_a_raising_subscriber_is_logged_and_the_service_keeps_running(
    nats_url: str, broker: NatsBroker, tmp_path: Path
) -> None:
    topic, name = unique("raise"), unique("svc")
    with nodes(env(nats_url, topic), tmp_path / "events") as group:
        node = group.start(name, "a")
        await publish(broker, topic, "raise-1")
        await publish(broker, topic, "ok-1")
        await eventually(lambda: len(group.events()) >= 2, timeout=10)
        await asyncio.sleep(1.5)  # core NATS: at most once, nothing comes back
        assert [text for _, text, _ in group.events()] == ["raise-1", "ok-1"]
        async with micro.Client(registry=NatsRegistry(nats_url)) as c:
            reply = await StreamerClient(name, client=c).echo(EchoRequest(text="alive"))
        assert reply.text == "alive from a"
        assert node.process.poll() is None
        assert "failing on raise-1" in node.log


async def test_a_raising_durable_subscriber_gets_the_message_again(
    nats_url: str, broker: NatsBroker, tmp_path: Path
) -> None:
    topic, name = unique("durable"), unique("svc")
    with nodes(env(nats_url, topic), tmp_path / "events") as group:
        node = group.start(name, "a", "--durable")
        await publish(broker, topic, "raise-once-1", durable=True)
        await publish(broker, topic, "after", durable=True)
        # At least once: a slow ack under load may bring "after" twice; wait for the
        # redelivery itself rather than for a count of events.
        await eventually(lambda: ("a", "raise-once-1", True) in group.events(), timeout=15)
        events = group.events()
        assert ("a", "raise-once-1", False) in events
        assert ("a", "raise-once-1", True) in events  # nacked, then redelivered
        assert ("a", "after", False) in events
        assert node.process.poll() is None
        assert "failing once on raise-once-1" in node.log


async def test_broker_restart_loses_no_acknowledged_message(
    own_nats: NatsServer, tmp_path: Path
) -> None:
    topic, name = unique("ledger"), unique("svc")
    broker = NatsBroker(own_nats.url, publish_timeout=1.0)
    acked: list[str] = []
    refused = 0
    with nodes(env(own_nats.url, topic), tmp_path / "events") as group:
        group.start(name, "a", "--durable")

        async def publisher(stop: asyncio.Event) -> None:
            nonlocal refused
            for i in range(100_000):
                if stop.is_set():
                    return
                try:
                    await publish(broker, topic, f"m{i}", durable=True)
                    acked.append(f"m{i}")
                except BrokerError:
                    refused += 1
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.005)

        stop = asyncio.Event()
        task = asyncio.create_task(publisher(stop))
        await eventually(lambda: len(acked) >= 50, timeout=20)
        await asyncio.to_thread(own_nats.kill)  # SIGKILL
        await asyncio.sleep(1.5)  # publishes time out meanwhile (and are not counted)
        await asyncio.to_thread(own_nats.start)  # the same port and store
        restarted = len(acked)
        await eventually(lambda: len(acked) >= restarted + 50, timeout=30)  # publishing resumed
        stop.set()
        await asyncio.wait_for(task, 10)

        def received() -> set[str]:
            return {text for _, text, _ in group.events()}

        await eventually(lambda: set(acked) <= received(), timeout=30)
        # core pub/sub resumes too: the subscriber's connection came back
        core = unique("core")
        plain = Nodes(env(own_nats.url, core), tmp_path / "core-events")
        try:
            plain.start(unique("svc"), "p")
            await publish(broker, core, "after-restart")
            await eventually(
                lambda: [t for _, t, _ in plain.events()] == ["after-restart"], timeout=10
            )
        finally:
            plain.stop_all()
    await broker.close()
    assert set(acked) <= received()
    assert len(acked) >= 100 and refused >= 1  # the outage was real


async def test_a_durable_subscription_stops_even_when_nats_py_swallows_the_cancel(
    broker: NatsBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the registry's mirror: its fetch loop must end on a cancel that nats-py's
    asyncio.wait_for (Python 3.11) dropped because a batch came at the same moment."""
    from nats.js.client import JetStreamContext

    real = JetStreamContext.PullSubscription.fetch
    swallowed = 0
    fetching = False  # the loop is inside (awaiting) nats-py's fetch()

    async def fetch(self: Any, *args: Any, **kwargs: Any) -> list[Any]:
        nonlocal swallowed, fetching
        fetching = True
        try:
            result: list[Any] = await real(self, *args, **kwargs)
            return result
        except asyncio.CancelledError:
            swallowed += 1
            return []
        finally:
            fetching = False

    async def handler(delivery: micro.Delivery) -> None:
        return None

    monkeypatch.setattr(JetStreamContext.PullSubscription, "fetch", fetch)
    subscription = await broker.subscribe(unique("t"), handler, queue="q", durable=True)
    task: asyncio.Task[None] = subscription._task  # type: ignore[union-attr]
    await eventually(lambda: fetching, what="the loop waiting in fetch()")
    task.cancel()  # now, while it is suspended there
    await asyncio.wait({task}, timeout=5)
    assert swallowed == 1
    assert task.cancelled()
    await subscription.unsubscribe()


async def test_durable_subscription_needs_a_queue(broker: NatsBroker) -> None:
    async def handler(delivery: micro.Delivery) -> None:
        return None

    with pytest.raises(BrokerError, match="needs a queue"):
        await broker.subscribe(unique("t"), handler, durable=True)


async def test_message_metadata_and_content_type_travel_as_headers(broker: NatsBroker) -> None:
    topic = unique("meta")
    got: asyncio.Queue[Message] = asyncio.Queue()

    async def handler(delivery: micro.Delivery) -> None:
        await got.put(delivery.message)

    sub = await broker.subscribe(topic, handler)
    await broker.publish(Message(topic, b"\x01", "application/json", {"tenant": "t1"}))
    message = await asyncio.wait_for(got.get(), 5)
    await sub.unsubscribe()
    assert (message.data, message.content_type, dict(message.metadata)) == (
        b"\x01",
        "application/json",
        {"tenant": "t1"},
    )


def test_env_selects_the_nats_broker() -> None:
    broker = from_env({"MICRO_BROKER": "nats", "MICRO_BROKER_ADDRESS": "nats://127.0.0.1:1"})
    assert isinstance(broker, NatsBroker) and broker.address == "nats://127.0.0.1:1"
    with pytest.raises(ValueError, match="valid values: embedded, nats"):
        from_env({"MICRO_BROKER": "kafka"})


def test_env_sets_the_redelivery_timings() -> None:
    broker = from_env(
        {"MICRO_BROKER": "nats", "MICRO_BROKER_ACK_WAIT": "2.5", "MICRO_BROKER_NACK_DELAY": "0.2"}
    )
    assert isinstance(broker, NatsBroker)
    assert (broker.ack_wait, broker.nack_delay) == (2.5, 0.2)
    assert from_env({"MICRO_BROKER": "nats"}).ack_wait == 30.0  # type: ignore[attr-defined]
    for bad in ("soon", "0", "-1"):
        with pytest.raises(ValueError, match=f"MICRO_BROKER_ACK_WAIT='{bad}' is not a positive"):
            from_env({"MICRO_BROKER": "nats", "MICRO_BROKER_ACK_WAIT": bad})
