"""A client's span, duration and count of a streaming call last until the call ends
(exhausted, failed, closed early or dropped), with its final status; client-streaming
calls count the messages they send, and a list of requests is still replayed."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import REGISTRY

import micro
from micro import telemetry
from micro.registry import MemoryRegistry
from tests.runtime.echo_kit import (
    COLLECT,
    ECHO_SPEC,
    Echo,
    EchoClient,
    EchoReply,
    EchoRequest,
    serving,
)
from tests.waiting import eventually


def client_spans(spans: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in spans.get_finished_spans() if s.name == name and s.kind is SpanKind.CLIENT]


def status_code(span: ReadableSpan) -> object:
    return (span.attributes or {}).get("rpc.grpc.status_code")


async def test_a_server_stream_span_ends_when_the_stream_does(
    spans: InMemorySpanExporter,
) -> None:
    async with serving() as service:
        echo = EchoClient(address=service.address)
        async with echo.count(EchoRequest(count=3)) as stream:
            assert (await anext(stream)).index == 0
            assert client_spans(spans, "test.v1.Echo/Count") == []  # still running
            assert [r.index async for r in stream] == [1, 2]
        (done,) = client_spans(spans, "test.v1.Echo/Count")
        assert status_code(done) == 0 and done.status.status_code is StatusCode.UNSET

        # failing after two messages: the error, not OK
        with pytest.raises(micro.Error):
            async for _ in echo.count(EchoRequest(count=5, fail="not_found")):
                pass
        failed = client_spans(spans, "test.v1.Echo/Count")[1]
        assert status_code(failed) == 5 and failed.status.status_code is StatusCode.ERROR
        assert (failed.attributes or {})["micro.error.code"] == 404

        # left early (break): cancelled
        async for _ in echo.count(EchoRequest(count=50)):
            break
        await eventually(lambda: len(client_spans(spans, "test.v1.Echo/Count")) == 3)
        assert status_code(client_spans(spans, "test.v1.Echo/Count")[2]) == 1  # CANCELLED


async def test_a_dropped_stream_ends_its_span_as_cancelled(spans: InMemorySpanExporter) -> None:
    async with serving() as service:
        stream = EchoClient(address=service.address).count(EchoRequest(count=50))
        assert (await anext(stream)).index == 0
        del stream
        gc.collect()
        await eventually(lambda: client_spans(spans, "test.v1.Echo/Count"))
    (span,) = client_spans(spans, "test.v1.Echo/Count")
    assert status_code(span) == 1 and span.status.status_code is StatusCode.ERROR


async def test_a_bidi_span_ends_with_the_call(spans: InMemorySpanExporter) -> None:
    async with serving() as service:
        async with EchoClient(address=service.address).chat() as chat:
            await chat.send(EchoRequest(text="x"))
            assert (await chat.recv()) is not None
            assert client_spans(spans, "test.v1.Echo/Chat") == []
            await chat.close_send()
            assert await chat.recv() is None  # ended by the server: OK, before aclose
            (span,) = client_spans(spans, "test.v1.Echo/Chat")
            assert status_code(span) == 0
        async with EchoClient(address=service.address).chat() as chat:
            await chat.send(EchoRequest(fail="not_found"))
            with pytest.raises(micro.Error):
                await chat.recv()
    failed = client_spans(spans, "test.v1.Echo/Chat")[1]
    assert status_code(failed) == 5 and failed.status.status_code is StatusCode.ERROR


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_client_metrics_of_streams_last_until_they_end() -> None:
    telemetry.configure(metrics=True)
    registry = MemoryRegistry()
    call = {"side": "client", "service": "streamed", "endpoint": "Echo.Count"}
    async with serving(name="streamed", registry=registry), micro.Client(registry=registry) as c:
        echo = EchoClient("streamed", client=c)
        before = sample("micro_request_total", **call, status="NOT_FOUND")
        async with echo.count(EchoRequest(count=3)) as stream:
            await anext(stream)
            assert sample("micro_requests_in_flight", **call) == 1  # open: in flight
        assert sample("micro_requests_in_flight", **call) == 0
        with pytest.raises(micro.Error):
            async for _ in echo.count(EchoRequest(count=5, fail="not_found")):
                pass
        assert sample("micro_request_total", **call, status="NOT_FOUND") == before + 1
        # the one closed early is CANCELLED, and its duration is observed as that
        assert sample("micro_request_duration_seconds_count", **call, status="CANCELLED") >= 1
        chat = {**call, "endpoint": "Echo.Chat"}
        before = sample("micro_request_total", **chat, status="OK")
        async with echo.chat() as stream:
            await stream.send(EchoRequest(text="x"))
            await stream.recv()
            await stream.close_send()
            assert await stream.recv() is None
            assert sample("micro_request_total", **chat, status="OK") == before + 1


class Flaky(Echo):
    """Node "a" reads every request, then answers UNAVAILABLE (so an idempotent call is
    retried on "b", its list of requests replayed)."""

    async def collect(
        self, requests: AsyncIterator[EchoRequest], context: micro.Context
    ) -> EchoReply:
        texts = [r.text async for r in requests]
        if self.node == "a":
            raise micro.errors.unavailable("flaky", "try another node")
        return EchoReply(text=",".join(texts), index=len(texts), node=self.node)


class InOrder:
    """Picks node "a" first, then (once tried) "b"."""

    def select(self, nodes: Sequence[micro.Node], *, service: str = "") -> micro.Node:
        return min(nodes, key=lambda n: n.id)


async def test_client_streaming_counts_what_it_sends_and_still_replays_a_list() -> None:
    telemetry.configure(metrics=True)
    sent = {"side": "client", "service": "collecting", "endpoint": "Echo.Collect"}
    direction = {"direction": "sent"}
    registry = MemoryRegistry()
    async with AsyncExitStack() as stack:
        nodes = {}
        for name in ("a", "b"):
            service = micro.Service("collecting", registry=registry)
            service.id = name  # the order InOrder picks them in
            service.handle(ECHO_SPEC, Flaky(name))
            await stack.enter_async_context(service)
            nodes[name] = service
        client = await stack.enter_async_context(
            micro.Client(registry=registry, selector=InOrder())
        )
        before = sample("micro_stream_messages_total", **sent, **direction)
        reply = await client.client_stream(
            COLLECT, [EchoRequest(text=t) for t in "xyz"], service="collecting", idempotent=True
        )
        assert (reply.text, reply.node) == ("x,y,z", "b")  # replayed on b
        assert sample("micro_stream_messages_total", **sent, **direction) == before + 6

        async def gen() -> AsyncIterator[EchoRequest]:
            for t in "pq":
                yield EchoRequest(text=t)

        await client.client_stream(COLLECT, gen(), address=nodes["b"].address)
    static = {**sent, "service": "-"}
    assert sample("micro_stream_messages_total", **static, **direction) == 2
