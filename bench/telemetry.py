"""Telemetry cost: the micro stack's small unary and streaming points with telemetry off,
with metrics on (``MICRO_METRICS_ADDRESS``) and with tracing on at full sampling (every
span exported over OTLP/gRPC to a receiver in the bench process that discards them).

Each mode runs the RPC suite's load (server and client in their own processes, both with
the mode's environment); modes alternate within each round. Targets: off costs nothing
(it installs no middleware, so it is the plain stack), metrics under 5%; tracing is
reported.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.gen import generate
from bench.procs import ROOT
from bench.report import _ratio, _verdict
from bench.rpc import LoadSpec, RpcResults, run_stack

MODES = ("off", "metrics", "tracing")
STACK = "micro"


@dataclass
class TelemetryResults:
    spec: LoadSpec
    modes: dict[str, RpcResults] = field(default_factory=dict)


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


def run(rounds: int, spec: LoadSpec, log: Callable[[str], None] = print) -> TelemetryResults:
    spec = LoadSpec(
        duration=spec.duration,
        warmup=spec.warmup,
        concurrency=spec.concurrency,
        sizes=("small",),
        stream_count=spec.stream_count,
    )
    work = Path(tempfile.mkdtemp(prefix="micro-bench-telemetry-"))
    results = TelemetryResults(spec, {mode: RpcResults(spec) for mode in MODES})
    try:
        gen = generate(work / "gen")
        base = dict(
            os.environ,
            MICRO_REGISTRY="local",
            MICRO_REGISTRY_PATH=str(work / "registry.db"),
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        )
        with _otlp_sink() as endpoint:
            for round_no in range(rounds):
                shift = round_no % len(MODES)
                for mode in MODES[shift:] + MODES[:shift]:
                    log(f"  telemetry {round_no + 1}/{rounds}: {mode}")
                    run_stack(STACK, gen, _env(base, mode, endpoint), spec, results.modes[mode])
        return results
    finally:
        shutil.rmtree(work, ignore_errors=True)


def tables(res: TelemetryResults, rounds: int) -> list[str]:
    spec = res.spec
    keys = [f"unary/small/c{c}" for c in spec.concurrency]
    out = [
        f"### Telemetry cost ({STACK} stack, medians of {rounds} rounds; {spec.duration:g} s "
        f"per point; streaming: {spec.stream_count} messages)",
        "",
        "| mode | " + " | ".join(f"small c{c} req/s (p50/p99 ms)" for c in spec.concurrency)
        + " | stream msgs/s | vs off (unary, stream) |",
        "|---|" + "---|" * (len(keys) + 2),
    ]  # fmt: skip
    off = res.modes["off"]
    for mode in MODES:
        r = res.modes[mode]
        cells = [mode]
        for key in keys:
            rps, p50, p99 = (r.median(STACK, key, m) for m in ("rps", "p50_ms", "p99_ms"))
            cells.append("-" if rps is None else f"{rps:.0f} ({p50:.2f}/{p99:.2f})")
        mps = r.median(STACK, "stream", "mps")
        cells.append("-" if mps is None else f"{mps:.0f}")
        ratios = [_ratio(r.median(STACK, k, "rps"), off.median(STACK, k, "rps")) for k in keys]
        ratios.append(_ratio(mps, off.median(STACK, "stream", "mps")))
        cells.append(", ".join(ratios))
        out.append("| " + " | ".join(cells) + " |")
    metrics = res.modes["metrics"]
    checks = [(k, metrics.median(STACK, k, "rps"), off.median(STACK, k, "rps")) for k in keys] + [
        ("stream", metrics.median(STACK, "stream", "mps"), off.median(STACK, "stream", "mps"))
    ]
    out += ["", "| target (metrics vs off) | value | |", "|---|---|---|"]
    for key, a, b in checks:
        ok = None if a is None or not b else a / b >= 0.95
        out.append(f"| {key} ratio (>= 0.95x) | {_ratio(a, b)} | {_verdict(ok)} |")
    return out
