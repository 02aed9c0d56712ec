"""One trace across real processes: HTTP -> gateway -> front -> back -> event -> front.

Every process exports through the OpenTelemetry SDK, configured only by the standard
OTEL_* variables, over OTLP/gRPC to a receiver in the test process. The gateway serves
/metrics too (MICRO_METRICS_ADDRESS), scraped at the end."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway.procs import Procs
from tests.telemetry.otlp import Receiver, Span, receiver
from tests.waiting import eventually_sync

SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5  # OTLP's SpanKind values


def http_get(url: str) -> httpx.Response:
    with httpx.Client(timeout=10) as http:
        return http.get(url)


def metrics_url(output: list[str]) -> str:
    """Where a process serves /metrics, from its JSON log line saying so."""
    for line in output:
        if line.startswith("{") and json.loads(line)["message"].startswith("metrics on "):
            return str(json.loads(line)["message"].removeprefix("metrics on "))
    raise AssertionError(f"no metrics address logged:\n{''.join(output)}")


def scrape(url: str) -> dict[tuple[str, ...], float]:
    text = http_get(url).text
    return {
        (s.name, *s.labels.values()): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
def otlp() -> Iterator[Receiver]:
    with receiver() as got:
        yield got


def test_one_trace_from_http_through_two_services_and_an_event(
    otlp: Receiver, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.endpoint)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    monkeypatch.setenv("MICRO_LOG_FORMAT", "json")
    monkeypatch.setenv("MICRO_METRICS_ADDRESS", "127.0.0.1:0")
    procs = Procs(tmp_path_factory.mktemp("chain") / "registry.db")
    try:
        procs.service("back", "b", app="tests.telemetry.chain")
        front = procs.service("front", "f", app="tests.telemetry.chain")
        gateway = procs.gateway()
        trace_id, caller = secrets.token_hex(16), secrets.token_hex(8)
        with gateway.client() as http:
            response = http.get(
                "/v1/shelves/s1/books/b1", headers={"traceparent": f"00-{trace_id}-{caller}-01"}
            )
        assert response.status_code == 200, response.text
        assert response.json()["title"] == "Hello, shelves/s1/books/b1!"
        eventually_sync(lambda: any(line.startswith("GREETED ") for line in front.output))

        def spans() -> dict[str, Span]:
            return {f"{s.service} {s.name}": s for s in otlp.spans() if s.trace_id == trace_id}

        expected = {
            "micro.api GET /v1/{name=shelves/*/books/*}",
            "micro.api gateway.v1.Library/GetBook",
            "front gateway.v1.Library/GetBook",
            "front helloworld.v1.Greeter/SayHello",
            "back helloworld.v1.Greeter/SayHello",
            "back publish telemetry.greeted",
            "front process telemetry.greeted",
        }
        eventually_sync(lambda: expected <= set(spans()), timeout=30)
        got = spans()
        chain = [
            ("micro.api GET /v1/{name=shelves/*/books/*}", SERVER),
            ("micro.api gateway.v1.Library/GetBook", CLIENT),
            ("front gateway.v1.Library/GetBook", SERVER),
            ("front helloworld.v1.Greeter/SayHello", CLIENT),
            ("back helloworld.v1.Greeter/SayHello", SERVER),
            ("back publish telemetry.greeted", PRODUCER),
            ("front process telemetry.greeted", CONSUMER),
        ]
        parent = caller
        for key, kind in chain:  # each hop is the child of the one before
            span = got[key]
            assert (span.kind, span.parent_id) == (kind, parent), key
            parent = span.span_id
        # nothing else in the trace: no health, reflection or broker hand-over spans
        assert set(got) == expected, sorted(got)
        gateway_span = got["micro.api GET /v1/{name=shelves/*/books/*}"]
        assert gateway_span.attributes["http.route"] == "/v1/{name=shelves/*/books/*}"
        assert gateway_span.attributes["http.response.status_code"] == 200
        server = got["back helloworld.v1.Greeter/SayHello"]
        assert server.attributes["rpc.system"] == "grpc"
        assert server.attributes["rpc.service"] == "helloworld.v1.Greeter"
        assert server.attributes["rpc.method"] == "SayHello"
        assert server.attributes["rpc.grpc.status_code"] == 0
        assert server.attributes["network.peer.address"] == "127.0.0.1"
        client = got["front helloworld.v1.Greeter/SayHello"]
        assert client.attributes["server.address"] == "back"
        published = got["back publish telemetry.greeted"]
        assert published.attributes["messaging.destination.name"] == "telemetry.greeted"
        assert published.attributes["messaging.operation.type"] == "publish"
        assert got["front process telemetry.greeted"].attributes["messaging.system"] == (
            "micro.embedded"
        )
        # the handler's log record carries the call's fields (MICRO_LOG_FORMAT=json)
        records = [json.loads(line) for line in front.output if line.startswith("{")]
        (record,) = [r for r in records if r["message"].startswith("front: get_book")]
        assert record["trace_id"] == trace_id
        assert record["span_id"] == got["front gateway.v1.Library/GetBook"].span_id
        assert (record["service"], record["endpoint"]) == ("front", "Library.GetBook")
        # the gateway's own metrics: requests by route and status, unmatched ones as one
        assert http_get(gateway.url + "/no/such/path").status_code == 404
        samples = scrape(metrics_url(gateway.proc.output))
        route = "GET /v1/{name=shelves/*/books/*}"
        assert samples[("micro_gateway_requests_total", route, "200")] == 1
        assert samples[("micro_gateway_requests_total", "unmatched", "404")] == 1
        assert gateway.proc.terminate() == 0
    finally:
        procs.stop_all()
