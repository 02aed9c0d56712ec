"""Telemetry cost: the micro stack's small unary and streaming points with telemetry off,
with metrics on (``MICRO_METRICS_ADDRESS``) and with tracing on at full sampling (every
span exported over OTLP/gRPC to a receiver in the bench process that discards them).

Modes alternate within each round (:mod:`bench.modes`). Targets: off costs nothing (it
installs no middleware, so it is the plain stack), metrics under 5%; tracing is reported.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from typing import Any

from bench import modes
from bench.rpc import LoadSpec

MODES = ("off", "metrics", "tracing")
STACK = "micro"


@contextmanager
def _otlp_sink() -> Iterator[str]:
    """An OTLP/gRPC trace endpoint that accepts and drops every export."""
    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

    class Sink(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:
            return trace_service_pb2.ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    port = server.add_insecure_port("127.0.0.1:0")
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
        Sink(), server
    )
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop(grace=None)


def _env(base: dict[str, str], mode: str, endpoint: str) -> dict[str, str]:
    env = {
        k: v for k, v in base.items() if not k.startswith("OTEL_") and k != "MICRO_METRICS_ADDRESS"
    }
    if mode == "metrics":
        env["MICRO_METRICS_ADDRESS"] = "127.0.0.1:0"
    elif mode == "tracing":
        env.update(
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
            OTEL_TRACES_SAMPLER="always_on",
        )
    return env


def run(rounds: int, spec: LoadSpec, log: Callable[[str], None] = print) -> modes.ModeResults:
    with _otlp_sink() as endpoint:
        env = {mode: functools.partial(_env, mode=mode, endpoint=endpoint) for mode in MODES}
        return modes.run("telemetry", (STACK,), env, rounds, spec, log)


def tables(res: modes.ModeResults, rounds: int) -> list[str]:
    spec = res.spec
    title = (
        f"### Telemetry cost ({STACK} stack, medians of {rounds} rounds; {spec.duration:g} s "
        f"per point; streaming: {spec.stream_count} messages)"
    )
    return modes.table(title, res, "off", {"metrics": 0.95})
