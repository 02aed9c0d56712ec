"""Trace context through NATS: core pub/sub and JetStream, where a redelivered message is
processed again as the publisher's child."""

from __future__ import annotations

import uuid

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import micro
from micro.broker.nats import NatsBroker
from micro.registry import MemoryRegistry
from tests.runtime.echo_kit import EchoReply
from tests.waiting import eventually


async def test_core_and_jetstream_deliveries_continue_the_publishers_trace(
    spans: InMemorySpanExporter, nats_url: str
) -> None:
    core = micro.Event(f"trace.core.{uuid.uuid4().hex[:8]}", EchoReply)
    durable = micro.Event(f"trace.durable.{uuid.uuid4().hex[:8]}", EchoReply, durable=True)
    broker = NatsBroker(nats_url, nack_delay=0.1)
    seen: list[tuple[str, bool]] = []

    async def on_core(message: EchoReply) -> None:
        seen.append((message.text, False))

    async def on_durable(message: EchoReply, delivery: micro.Delivery) -> None:
        seen.append((message.text, delivery.redelivered))
        if not delivery.redelivered:
            raise RuntimeError("fail the first delivery")

    service = micro.Service(
        f"trace-{uuid.uuid4().hex[:8]}", registry=MemoryRegistry(), broker=broker
    )
    service.subscribe(core, on_core)
    service.subscribe(durable, on_durable)
    try:
        async with service:
            await core.publish(EchoReply(text="c"), broker=broker, metadata={"k": "v"})
            await durable.publish(EchoReply(text="d"), broker=broker)
            await eventually(lambda: ("d", True) in seen and ("c", False) in seen, timeout=20)
            await eventually(lambda: len(_named(spans, f"process {durable.topic}")) >= 2)
    finally:
        await broker.close()

    (published,) = _named(spans, f"publish {core.topic}")
    (processed,) = _named(spans, f"process {core.topic}")
    assert published.kind is SpanKind.PRODUCER and processed.kind is SpanKind.CONSUMER
    assert processed.parent is not None and published.context is not None
    assert processed.parent.span_id == published.context.span_id
    assert published.attributes is not None and processed.attributes is not None
    assert published.attributes["messaging.system"] == "nats"
    assert processed.attributes["messaging.system"] == "nats"

    (first_publish,) = _named(spans, f"publish {durable.topic}")
    attempts = _named(spans, f"process {durable.topic}")
    assert first_publish.context is not None
    for attempt in attempts:  # the first delivery and the redelivery: both its children
        assert attempt.parent is not None
        assert attempt.parent.span_id == first_publish.context.span_id
    by_redelivery = {bool((a.attributes or {})["micro.redelivered"]): a for a in attempts}
    assert by_redelivery[False].status.status_code is StatusCode.ERROR
    assert by_redelivery[True].status.status_code is StatusCode.UNSET


def _named(spans: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in spans.get_finished_spans() if s.name == name]


async def test_a_message_published_on_the_nats_broker_itself_is_traced_once(
    spans: InMemorySpanExporter, nats_url: str
) -> None:
    event = micro.Event(f"trace.raw.{uuid.uuid4().hex[:8]}", EchoReply)
    broker = NatsBroker(nats_url)
    seen: list[str] = []

    async def on_raw(message: EchoReply) -> None:
        seen.append(message.text)

    service = micro.Service(
        f"trace-{uuid.uuid4().hex[:8]}", registry=MemoryRegistry(), broker=broker
    )
    service.subscribe(event, on_raw)
    try:
        async with service:
            await broker.publish(event.message(EchoReply(text="raw")))
            await event.publish(EchoReply(text="typed"), broker=broker)
            await eventually(lambda: len(_named(spans, f"process {event.topic}")) == 2)
    finally:
        await broker.close()
    assert sorted(seen) == ["raw", "typed"]
    publishes = _named(spans, f"publish {event.topic}")
    assert len(publishes) == 2
    assert all((p.attributes or {})["messaging.system"] == "nats" for p in publishes)
    parents = {p.parent.span_id for p in _named(spans, f"process {event.topic}") if p.parent}
    assert parents == {p.context.span_id for p in publishes if p.context}
