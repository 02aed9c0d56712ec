"""Wire-compatible with grpcio's own OpenTelemetry instrumentation, both ways: a grpcio
client instrumented with opentelemetry-instrumentation-grpc calls a micro service, and a
micro client calls an instrumented grpcio server; each pair is one trace."""

from __future__ import annotations

import asyncio
from concurrent import futures
from typing import Any

import grpc
import pytest
from opentelemetry.instrumentation.grpc import client_interceptor, grpcext, server_interceptor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import micro
import micro.transport
from micro import codec
from micro.telemetry import tracing
from tests.runtime.echo_kit import ECHO, EchoClient, EchoReply, EchoRequest, serving

TRANSPORTS = pytest.mark.parametrize("transport", sorted(micro.transport.backends()))


def _pair(spans: InMemorySpanExporter) -> tuple[Any, Any]:
    finished = spans.get_finished_spans()
    (client,) = [s for s in finished if s.kind is SpanKind.CLIENT]
    (server,) = [s for s in finished if s.kind is SpanKind.SERVER]
    return client, server


@TRANSPORTS
async def test_an_instrumented_grpcio_client_and_a_micro_server_share_a_trace(
    spans: InMemorySpanExporter, transport: str
) -> None:
    wire = micro.transport.from_env({"MICRO_TRANSPORT": transport})
    provider = tracing._provider  # the provider the fixture gave micro: one exporter for both
    async with serving(transport=wire) as service:

        def call() -> bytes:
            with grpc.insecure_channel(service.address) as plain:
                # what GrpcInstrumentorClient does to every channel (without patching grpc)
                interceptor = client_interceptor(tracer_provider=provider)  # type: ignore[no-untyped-call]
                channel = grpcext.intercept_channel(plain, interceptor)  # type: ignore[no-untyped-call]
                echo = channel.unary_unary(ECHO.path)
                reply: bytes = echo(codec.encode(EchoRequest(text="hi"), EchoRequest), timeout=5)
                return reply

        reply = codec.decode(await asyncio.to_thread(call), EchoReply)
    assert reply.text == "hi"
    client, server = _pair(spans)
    assert client.instrumentation_scope.name.startswith("opentelemetry.instrumentation.grpc")
    assert server.instrumentation_scope.name == "micro"
    assert server.context.trace_id == client.context.trace_id
    assert server.parent is not None and server.parent.span_id == client.context.span_id
    assert reply.metadata["traceparent"].split("-")[1] == format(client.context.trace_id, "032x")


@TRANSPORTS
async def test_a_micro_client_and_an_instrumented_grpcio_server_share_a_trace(
    spans: InMemorySpanExporter, transport: str
) -> None:
    provider = tracing._provider

    def echo(request: bytes, context: grpc.ServicerContext) -> bytes:
        got = codec.decode(request, EchoRequest)
        return codec.encode(EchoReply(text=f"grpcio: {got.text}"), EchoReply)

    handler = grpc.method_handlers_generic_handler(
        "test.v1.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
    )
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=2),
        interceptors=[server_interceptor(tracer_provider=provider)],  # type: ignore[no-untyped-call]
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        wire = micro.transport.from_env({"MICRO_TRANSPORT": transport})
        async with micro.Client(transport=wire) as client:
            reply = await EchoClient(address=f"127.0.0.1:{port}", client=client).echo(
                EchoRequest(text="hi")
            )
    finally:
        server.stop(grace=None)
    assert reply.text == "grpcio: hi"
    client_span, server_span = _pair(spans)
    assert client_span.instrumentation_scope.name == "micro"
    assert server_span.instrumentation_scope.name.startswith("opentelemetry.instrumentation.grpc")
    assert server_span.context.trace_id == client_span.context.trace_id
    assert server_span.parent is not None
    assert server_span.parent.span_id == client_span.context.span_id
    assert server_span.attributes is not None
    assert server_span.attributes["rpc.method"] == "Echo"
