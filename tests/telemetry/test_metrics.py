"""/metrics scraped with prometheus_client's parser while calls run: the series, their
counts (ok, failed by status, streamed), in-flight calls, lookups, retries, events."""

from __future__ import annotations

import asyncio
import socket
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

import micro
from micro import telemetry
from micro.broker.embedded import EmbeddedBroker
from micro.registry import MemoryRegistry, Node, ServiceRecord
from micro.telemetry.metrics import MAX_SERIES, _Family
from tests.runtime.echo_kit import Echo, EchoClient, EchoReply, EchoRequest, serving
from tests.waiting import eventually

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(address: str) -> Samples:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def metrics_address() -> str:
    telemetry.configure(metrics_address="127.0.0.1:0")
    address = telemetry.metrics.address()
    assert address is not None
    return address


async def test_calls_are_counted_by_side_endpoint_and_status(metrics_address: str) -> None:
    registry = MemoryRegistry()
    async with (
        serving(Echo(), name="metered", registry=registry) as service,
        micro.Client(registry=registry) as client,
    ):
        assert service.record.nodes[0].metadata["metrics"] == f"http://{metrics_address}/metrics"
        echo = EchoClient("metered", client=client)
        for _ in range(3):
            await echo.echo(EchoRequest(text="ok"))
        for fail, times in (("not_found", 2), ("boom", 1)):
            for _ in range(times):
                with pytest.raises(micro.Error):
                    await echo.echo(EchoRequest(fail=fail))
        assert len([r async for r in echo.count(EchoRequest(count=4))]) == 4
        assert (await echo.collect([EchoRequest(text=t) for t in "abc"])).index == 3
        async with echo.chat() as chat:
            for text in ("x", "y"):
                await chat.send(EchoRequest(text=text))
                await chat.recv()
            await chat.close_send()
            assert [r async for r in chat] == []

        # a call in flight, seen by a scrape while it runs
        slow = asyncio.create_task(echo.echo(EchoRequest(sleep_ms=3000)))
        labels = {"side": "server", "service": "metered", "endpoint": "Echo.Echo"}

        async def in_flight() -> float:
            samples = await asyncio.to_thread(scrape, metrics_address)
            return value(samples, "micro_requests_in_flight", **labels)

        assert await eventually(in_flight, timeout=10) == 1
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        samples = await asyncio.to_thread(scrape, metrics_address)

    def count(side: str, endpoint: str, status: str) -> float:
        return value(
            samples,
            "micro_request_total",
            side=side,
            service="metered",
            endpoint=endpoint,
            status=status,
        )

    for side in ("server", "client"):
        assert count(side, "Echo.Echo", "OK") == 3
        assert count(side, "Echo.Echo", "NOT_FOUND") == 2
        assert count(side, "Echo.Echo", "INTERNAL") == 1
        assert count(side, "Echo.Count", "OK") == 1
        assert count(side, "Echo.Collect", "OK") == 1
        hist = {"side": side, "service": "metered", "endpoint": "Echo.Echo", "status": "OK"}
        assert value(samples, "micro_request_duration_seconds_count", **hist) == 3
        assert value(samples, "micro_request_duration_seconds_bucket", le="+Inf", **hist) == 3
    streamed = {"side": "server", "service": "metered"}
    assert (
        value(
            samples,
            "micro_stream_messages_total",
            **streamed,
            endpoint="Echo.Count",
            direction="sent",
        )
        == 4
    )
    assert (
        value(
            samples,
            "micro_stream_messages_total",
            **streamed,
            endpoint="Echo.Collect",
            direction="received",
        )
        == 3
    )
    for direction in ("sent", "received"):
        assert (
            value(
                samples,
                "micro_stream_messages_total",
                **streamed,
                endpoint="Echo.Chat",
                direction=direction,
            )
            == 2
        )
    client_side = {"side": "client", "service": "metered"}
    assert (
        value(
            samples,
            "micro_stream_messages_total",
            **client_side,
            endpoint="Echo.Count",
            direction="received",
        )
        == 4
    )
    for direction in ("sent", "received"):
        assert (
            value(
                samples,
                "micro_stream_messages_total",
                **client_side,
                endpoint="Echo.Chat",
                direction=direction,
            )
            == 2
        )
    # every call looked the service up; all but the first were answered from the cache
    lookups = value(samples, "micro_registry_lookups_total", service="metered")
    hits = value(samples, "micro_registry_cache_hits_total", service="metered")
    assert lookups >= 10 and 1 <= lookups - hits <= 3
    # health checks and reflection are no series of their own
    assert not any(dict(labels).get("endpoint", "").startswith("Health") for _, labels in samples)


async def test_retries_and_events_are_counted(metrics_address: str) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{closed.getsockname()[1]}"
    registry = MemoryRegistry()
    await registry.register(ServiceRecord(name="ghost", nodes=(Node(id="g", address=dead),)))
    async with micro.Client(registry=registry, retries=2, backoff=0.001) as client:
        with pytest.raises(micro.Error):
            await EchoClient("ghost", client=client).echo(EchoRequest())
    event = micro.Event("metered.echoed", EchoReply)
    broker = EmbeddedBroker(registry)
    handled: list[str] = []

    async def on_echoed(message: EchoReply) -> None:
        handled.append(message.text)
        if message.text == "bad":
            raise RuntimeError("a subscriber bug")

    subscriber = micro.Service("metered-sub", registry=registry, broker=broker)
    subscriber.subscribe(event, on_echoed)
    try:
        async with subscriber:
            for text in ("a", "b", "bad"):
                await event.publish(EchoReply(text=text), broker=broker)
            await eventually(lambda: len(handled) == 3)
    finally:
        await broker.close()
    samples = scrape(metrics_address)
    assert value(samples, "micro_retries_total", service="ghost", endpoint="Echo.Echo") == 2
    assert (
        value(
            samples,
            "micro_request_total",
            side="client",
            service="ghost",
            endpoint="Echo.Echo",
            status="UNAVAILABLE",
        )
        == 1
    )
    topic = {"topic": "metered.echoed"}
    assert value(samples, "micro_events_published_total", **topic) == 3
    assert value(samples, "micro_events_delivered_total", **topic) == 2
    assert value(samples, "micro_events_failed_total", **topic) == 1


def test_label_sets_are_bounded() -> None:
    counter = Counter("bounded_total", "a test", ("endpoint",), registry=CollectorRegistry())
    family = _Family(counter)
    for i in range(MAX_SERIES + 50):
        family.child(f"Endpoint{i}").inc()
    assert len(family._children) == MAX_SERIES + 1  # the first ones, then "other"
    assert family.child("EndpointNew") is family.child("other")
    assert family.child("Endpoint0") is not family.child("other")
