"""The gateway's span of a streamed answer lasts until its body is done: the client span
of the stream behind it is its child, and ends first."""

from __future__ import annotations

import json

import httpx
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import micro
from golden.gateway.v1.gateway_micro import register_library_handler
from micro.gateway.app import Gateway, GatewayConfig, build_app
from micro.registry import MemoryRegistry
from tests.gateway.app import Library


def only(spans: InMemorySpanExporter, name: str, kind: SpanKind) -> ReadableSpan:
    (found,) = [s for s in spans.get_finished_spans() if s.name == name and s.kind is kind]
    return found


async def test_a_streamed_answer_ends_its_span_with_the_body(spans: InMemorySpanExporter) -> None:
    registry = MemoryRegistry()
    service = micro.Service("library", registry=registry)
    register_library_handler(service, Library("a"))
    gateway = Gateway(registry, GatewayConfig(tls=False))
    async with service:
        await gateway.start()
        try:
            transport = httpx.ASGITransport(app=build_app(gateway))
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
                answer = await http.get("/v1/shelves/1:watch", params={"count": 3})
                assert answer.status_code == 200
                assert len([json.loads(line) for line in answer.text.splitlines()]) == 3
                unary = await http.get("/v1/shelves/1/books/2")
                assert unary.status_code == 200
        finally:
            await gateway.stop()
    watched = only(spans, "GET /v1/{parent=shelves/*}:watch", SpanKind.SERVER)
    stream = only(spans, "gateway.v1.Library/WatchShelf", SpanKind.CLIENT)
    assert stream.parent is not None and watched.context is not None
    assert stream.parent.span_id == watched.context.span_id
    assert stream.end_time is not None and watched.end_time is not None
    assert watched.end_time >= stream.end_time  # after the last message, not at the first
    assert (watched.attributes or {})["http.response.status_code"] == 200
    # an answer that is not streamed ends its span as before, with its route
    got = only(spans, "GET /v1/{name=shelves/*/books/*}", SpanKind.SERVER)
    call = only(spans, "gateway.v1.Library/GetBook", SpanKind.CLIENT)
    assert got.end_time is not None and call.end_time is not None
    assert got.end_time >= call.end_time
