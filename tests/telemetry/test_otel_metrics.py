"""OTEL_METRICS_EXPORTER=otlp exports micro's metrics through the OpenTelemetry SDK, over
OTLP to a receiver, with the Prometheus names and labels; unset, nothing is loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from prometheus_client import REGISTRY

from micro import telemetry
from micro.telemetry.metrics import BUCKETS
from tests.cluster import ROOT
from tests.runtime.echo_kit import EchoClient, EchoRequest, serving
from tests.telemetry.otlp import Point, receiver

PROBE = textwrap.dedent(
    """
    import asyncio, json, sys
    import micro
    from micro.registry import MemoryRegistry
    from tests.runtime.echo_kit import ECHO_SPEC, Echo, EchoClient, EchoRequest

    async def main():
        registry = MemoryRegistry()
        service = micro.Service("probe", registry=registry)
        service.handle(ECHO_SPEC, Echo())
        async with service, micro.Client(registry=registry) as client:
            echo = EchoClient("probe", client=client)
            for _ in range(3):
                await echo.echo(EchoRequest(text="x"))
            try:
                await echo.echo(EchoRequest(fail="not_found"))
            except micro.Error:
                pass
            assert len([r async for r in echo.count(EchoRequest(count=3))]) == 3
            await echo.collect([EchoRequest(text="a"), EchoRequest(text="b")])

    asyncio.run(main())
    from micro.telemetry import metrics, tracing
    loaded = sorted(m for m in ("prometheus_client", "opentelemetry.sdk.metrics") if m in sys.modules)
    print("RESULT", json.dumps([metrics.enabled(), tracing.enabled(), loaded]), flush=True)
    """  # noqa: E501
)


def probe(**env: str) -> list[object]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MICRO_"))}
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        timeout=60,
    )
    (line,) = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
    result: list[object] = json.loads(line.removeprefix("RESULT "))
    return result


def test_unset_means_no_metrics_and_nothing_loaded() -> None:
    assert probe() == [False, False, []]
    assert probe(OTEL_METRICS_EXPORTER="none") == [False, False, []]


def test_otlp_exports_the_same_series_through_the_sdk() -> None:
    with receiver() as otlp:
        result = probe(
            OTEL_METRICS_EXPORTER="otlp",
            # the metrics' own endpoint: traces stay off
            OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=otlp.endpoint,
            OTEL_METRIC_EXPORT_INTERVAL="200",
        )
        # the SDK alone, without prometheus_client; the last export came at exit
        assert result == [True, False, ["opentelemetry.sdk.metrics"]]
        points = otlp.points()

    def find(name: str, **attributes: str) -> Point:
        (found,) = [p for p in points if p.name == name and p.attributes == attributes]
        return found

    assert {p.service for p in points} == {"probe"}
    for side in ("server", "client"):
        call = {"side": side, "service": "probe", "endpoint": "Echo.Echo"}
        ok = find("micro_request_total", **call, status="OK")
        assert (ok.value, ok.monotonic) == (3, True)
        assert find("micro_request_total", **call, status="NOT_FOUND").value == 1
        duration = find("micro_request_duration_seconds", **call, status="OK")
        assert (duration.value, duration.bounds, duration.unit) == (3, BUCKETS, "s")
        in_flight = find("micro_requests_in_flight", **call)
        assert (in_flight.value, in_flight.monotonic) == (0, False)
    client = {"side": "client", "service": "probe"}
    streamed = "micro_stream_messages_total"
    assert find(streamed, **client, endpoint="Echo.Count", direction="received").value == 3
    assert find(streamed, **client, endpoint="Echo.Collect", direction="sent").value == 2
    assert find("micro_registry_lookups_total", service="probe").value >= 6


async def test_a_meter_provider_in_code_gets_them_beside_prometheus() -> None:
    reader = InMemoryMetricReader()
    telemetry.configure(meter_provider=MeterProvider(metric_readers=[reader]), metrics=True)
    async with serving(name="both") as service:
        await EchoClient(address=service.address).echo(EchoRequest(text="x"))
    labels = {"side": "server", "service": "both", "endpoint": "Echo.Echo", "status": "OK"}
    data = reader.get_metrics_data()
    assert data is not None
    (requests,) = [
        m
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "micro_request_total"
    ]
    (point,) = [p for p in requests.data.data_points if dict(p.attributes or {}) == labels]
    assert isinstance(point, NumberDataPoint) and point.value == 1
    assert REGISTRY.get_sample_value("micro_request_total", labels) == 1
