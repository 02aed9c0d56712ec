"""Log records inside a call carry trace_id, span_id, service and endpoint; JSON lines."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import micro
from micro import telemetry
from micro.broker.embedded import EmbeddedBroker
from micro.telemetry.logs import CallFilter, JsonFormatter, fields
from tests.runtime.echo_kit import ECHO_SPEC, Echo, EchoClient, EchoReply, EchoRequest
from tests.waiting import eventually

log = logging.getLogger("micro.test.logs")


class Logging(Echo):
    async def echo(self, request: EchoRequest, context: micro.Context) -> EchoReply:
        log.warning("inside %s", request.text)
        return EchoReply(text=request.text)


@pytest.fixture
def records() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(CallFilter())
    handler.setFormatter(JsonFormatter())
    log.addHandler(handler)
    yield out
    log.removeHandler(handler)


async def _call(text: str) -> None:
    service = micro.Service("logged", registry=micro.registry.MemoryRegistry())
    service.handle(ECHO_SPEC, Logging())
    async with service:
        await EchoClient(address=service.address).echo(EchoRequest(text=text))


async def test_a_record_inside_a_call_has_the_call_fields(
    spans: InMemorySpanExporter, records: io.StringIO
) -> None:
    await _call("traced")
    log.warning("outside")
    inside, outside = (json.loads(line) for line in records.getvalue().splitlines())
    (server,) = [s for s in spans.get_finished_spans() if s.kind.name == "SERVER"]
    assert server.context is not None
    assert inside == {
        "time": inside["time"],
        "level": "WARNING",
        "logger": "micro.test.logs",
        "message": "inside traced",
        "service": "logged",
        "endpoint": "Echo.Echo",
        "trace_id": format(server.context.trace_id, "032x"),
        "span_id": format(server.context.span_id, "016x"),
    }
    assert set(outside) == {"time", "level", "logger", "message"}  # empty fields left out


async def test_without_tracing_the_log_switch_still_names_service_and_endpoint(
    records: io.StringIO,
) -> None:
    telemetry.configure(log_format="text")
    try:
        await _call("plain")
    finally:
        telemetry.reset()
    (inside,) = (json.loads(line) for line in records.getvalue().splitlines())
    assert (inside["service"], inside["endpoint"]) == ("logged", "Echo.Echo")
    assert "trace_id" not in inside
    assert fields() == {"trace_id": "", "span_id": "", "service": "", "endpoint": ""}


def test_json_lines_carry_the_traceback_and_a_bad_format_is_one_line() -> None:
    try:
        raise ValueError("bad")
    except ValueError:
        record = logging.LogRecord("micro.x", logging.ERROR, __file__, 1, "failed %d", (3,), None)
        record.exc_info = sys.exc_info()
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "failed 3" and "ValueError: bad" in line["exception"]
    with pytest.raises(micro.ConfigError, match="MICRO_LOG_FORMAT='xml': use json or text"):
        telemetry.configure(log_format="xml")


GREETED = micro.Event("telemetry.logged", EchoReply)


@pytest.fixture
def micro_records() -> Iterator[io.StringIO]:
    """What every ``micro.*`` logger writes (the test's and the broker's), as JSON."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(CallFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("micro")
    root.addHandler(handler)
    yield out
    root.removeHandler(handler)


async def test_a_subscriber_s_records_name_its_service(
    spans: InMemorySpanExporter, micro_records: io.StringIO
) -> None:
    registry = micro.registry.MemoryRegistry()
    broker = EmbeddedBroker(registry)
    handled: list[str] = []

    async def on_logged(message: EchoReply) -> None:
        log.warning("handling %s", message.text)
        handled.append(message.text)
        if message.text == "bad":
            raise RuntimeError("a subscriber bug")

    subscriber = micro.Service("listener", registry=registry, broker=broker)
    subscriber.subscribe(GREETED, on_logged)
    try:
        async with subscriber:
            for text in ("good", "bad"):
                await GREETED.publish(EchoReply(text=text), broker=broker)
            await eventually(lambda: len(handled) == 2)
            await eventually(lambda: "subscriber for" in micro_records.getvalue())
    finally:
        await broker.close()
    lines = [json.loads(line) for line in micro_records.getvalue().splitlines()]
    mine = [line for line in lines if line["logger"] == "micro.test.logs"]
    assert [line["message"] for line in mine] == ["handling good", "handling bad"]
    (failed,) = [line for line in lines if line["message"].endswith("failed")]
    processes = [s for s in spans.get_finished_spans() if s.name == "process telemetry.logged"]
    ids = {format(s.context.trace_id, "032x") for s in processes if s.context}
    for line in (*mine, failed):  # the handler's own records, and micro's about it
        assert line["service"] == "listener", line
        assert line["trace_id"] in ids, line
