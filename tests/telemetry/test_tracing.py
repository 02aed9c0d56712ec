"""Spans of calls and events, in one process: names, kinds, links, attributes, errors."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import micro
from micro.broker.embedded import EmbeddedBroker
from micro.registry import MemoryRegistry
from tests.runtime.echo_kit import ECHO, Echo, EchoClient, EchoReply, EchoRequest, serving
from tests.waiting import eventually

ECHOED = micro.Event("telemetry.echoed", EchoReply)


def by_name(spans: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in spans.get_finished_spans() if s.name == name]


def one(spans: InMemorySpanExporter, name: str) -> ReadableSpan:
    found = by_name(spans, name)
    assert len(found) == 1, [s.name for s in spans.get_finished_spans()]
    return found[0]


async def test_a_call_is_a_client_span_and_its_server_child(spans: InMemorySpanExporter) -> None:
    async with serving() as service, micro.Client() as client:
        reply = await EchoClient(address=service.address, client=client).echo(
            EchoRequest(text="hi")
        )
    # the handler saw the context on the wire, as W3C traceparent
    assert reply.metadata["traceparent"].startswith("00-")
    server = next(s for s in by_name(spans, "test.v1.Echo/Echo") if s.kind is SpanKind.SERVER)
    client_span = next(s for s in by_name(spans, "test.v1.Echo/Echo") if s.kind is SpanKind.CLIENT)
    assert server.context is not None and client_span.context is not None
    assert server.context.trace_id == client_span.context.trace_id
    assert server.parent is not None and server.parent.span_id == client_span.context.span_id
    assert reply.metadata["traceparent"].split("-")[2] == format(
        client_span.context.span_id, "016x"
    )
    assert dict(server.attributes or {}) | {"network.peer.port": 0} == {
        "rpc.system": "grpc",
        "rpc.service": "test.v1.Echo",
        "rpc.method": "Echo",
        "rpc.grpc.status_code": 0,
        "network.peer.address": "127.0.0.1",
        "network.peer.port": 0,
    }
    host, port = service.address.rsplit(":", 1)
    assert client_span.attributes is not None
    assert client_span.attributes["server.address"] == host
    assert client_span.attributes["server.port"] == int(port)
    # health and reflection are not traced: only the two spans of the call
    assert len(spans.get_finished_spans()) == 2


async def test_a_nested_call_continues_the_trace(spans: InMemorySpanExporter) -> None:
    async with serving(Echo("b")) as b, serving(Echo("a")) as a:
        reply = await EchoClient(address=a.address).echo(EchoRequest(text="x", forward=b.address))
    assert reply.text == "via a: x"
    calls = by_name(spans, "test.v1.Echo/Echo")
    assert len(calls) == 4  # client -> server a -> client -> server b
    assert len({s.context.trace_id for s in calls if s.context}) == 1
    ids = {s.context.span_id: s for s in calls if s.context}
    roots = [s for s in calls if s.parent is None]
    assert len(roots) == 1 and roots[0].kind is SpanKind.CLIENT
    depth = {}
    for s in calls:
        d, p = 0, s.parent
        while p is not None:
            d, p = d + 1, ids[p.span_id].parent
        depth[d] = s.kind
    assert depth == {
        0: SpanKind.CLIENT,
        1: SpanKind.SERVER,
        2: SpanKind.CLIENT,
        3: SpanKind.SERVER,
    }


@pytest.mark.parametrize(
    ("fail", "status", "error_id", "code"),
    [("not_found", 5, "echo", 404), ("boom", 13, None, None), ("custom", 2, "echo.custom", 418)],
)
async def test_a_failed_call_sets_the_error_status_and_the_micro_error(
    spans: InMemorySpanExporter, fail: str, status: int, error_id: str | None, code: int | None
) -> None:
    async with serving() as service:
        with pytest.raises(micro.Error):
            await EchoClient(address=service.address).echo(EchoRequest(fail=fail))
    for span in by_name(spans, "test.v1.Echo/Echo"):
        assert span.status.status_code is StatusCode.ERROR
        attributes = dict(span.attributes or {})
        if span.kind is SpanKind.CLIENT:  # what came back over the wire
            assert attributes["rpc.grpc.status_code"] == status
            assert attributes["micro.error.code"] == (code or 500)
        elif error_id is not None:  # what the handler raised
            assert attributes["micro.error.id"] == error_id
            assert attributes["micro.error.code"] == code
        else:  # an exception is INTERNAL, and its text stays out of the span
            assert attributes["rpc.grpc.status_code"] == 13
            assert "secret" not in str(span.status.description)


async def test_streams_get_spans_too(spans: InMemorySpanExporter) -> None:
    async with serving() as service:
        echo = EchoClient(address=service.address)
        items = [r async for r in echo.count(EchoRequest(text="s", count=3))]
        assert len(items) == 3
        assert (await echo.collect([EchoRequest(text="a"), EchoRequest(text="b")])).index == 2
    for name in ("test.v1.Echo/Count", "test.v1.Echo/Collect"):
        kinds = sorted(s.kind.name for s in by_name(spans, name))
        assert kinds == ["CLIENT", "SERVER"], name


async def test_an_event_is_a_publish_span_and_its_process_child(
    spans: InMemorySpanExporter,
) -> None:
    registry = MemoryRegistry()
    broker = EmbeddedBroker(registry)
    got: list[EchoReply] = []

    async def on_echoed(message: EchoReply) -> None:
        got.append(message)

    subscriber = micro.Service("sub", registry=registry, broker=broker)
    subscriber.subscribe(ECHOED, on_echoed)
    try:
        async with subscriber:
            await ECHOED.publish(EchoReply(text="e"), broker=broker, metadata={"k": "v"})
            await eventually(lambda: len(got) == 1)
            await eventually(lambda: len(by_name(spans, "process telemetry.echoed")) == 1)
    finally:
        await broker.close()
    publish = one(spans, "publish telemetry.echoed")
    process = one(spans, "process telemetry.echoed")
    assert publish.kind is SpanKind.PRODUCER and process.kind is SpanKind.CONSUMER
    assert publish.context is not None and process.parent is not None
    assert process.parent.span_id == publish.context.span_id
    assert dict(process.attributes or {}) == {
        "messaging.system": "micro.embedded",
        "messaging.destination.name": "telemetry.echoed",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "micro.redelivered": False,
    }
    # the embedded broker's hand-over is no span of its own
    assert not by_name(spans, "micro.broker.v1.Broker/Deliver")


async def test_a_failing_subscriber_marks_its_span(spans: InMemorySpanExporter) -> None:
    registry = MemoryRegistry()
    broker = EmbeddedBroker(registry)

    async def on_echoed(message: EchoReply) -> None:
        raise RuntimeError("nope")

    subscriber = micro.Service("sub", registry=registry, broker=broker)
    subscriber.subscribe(ECHOED, on_echoed)
    try:
        async with subscriber:
            await ECHOED.publish(EchoReply(text="e"), broker=broker)
            await eventually(lambda: len(by_name(spans, "process telemetry.echoed")) == 1)
    finally:
        await broker.close()
    process = one(spans, "process telemetry.echoed")
    assert process.status.status_code is StatusCode.ERROR


async def test_off_means_no_middleware_at_all() -> None:
    service = micro.Service("quiet", registry=MemoryRegistry())
    assert service._dispatcher._chain.__name__ == "_invoke"
    assert micro.Client()._middleware == ()
    assert ECHO.path  # the spec is loaded


async def test_a_message_published_on_the_broker_itself_gets_one_publish_span(
    spans: InMemorySpanExporter,
) -> None:
    registry = MemoryRegistry()
    broker = EmbeddedBroker(registry)
    got: list[str] = []

    async def on_echoed(message: EchoReply) -> None:
        got.append(message.text)

    subscriber = micro.Service("sub", registry=registry, broker=broker)
    subscriber.subscribe(ECHOED, on_echoed)
    try:
        async with subscriber:
            await broker.publish(ECHOED.message(EchoReply(text="raw"), metadata={"k": "v"}))
            await subscriber.publish(ECHOED, EchoReply(text="typed"))
            await eventually(lambda: len(by_name(spans, "process telemetry.echoed")) == 2)
    finally:
        await broker.close()
    assert sorted(got) == ["raw", "typed"]
    publishes = by_name(spans, "publish telemetry.echoed")  # one each: no double spans
    assert len(publishes) == 2 and all(p.kind is SpanKind.PRODUCER for p in publishes)
    parents = {p.parent.span_id for p in by_name(spans, "process telemetry.echoed") if p.parent}
    assert parents == {p.context.span_id for p in publishes if p.context}
