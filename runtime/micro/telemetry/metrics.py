"""Metrics with go-micro's names, for Prometheus or through OpenTelemetry.

For Prometheus (``pip install 'micro-runtime[metrics]'``): on with
``MICRO_METRICS_ADDRESS=host:port`` (which also serves ``/metrics`` there; port 0 picks a
free one) or ``micro.telemetry.configure(metrics=True)``, in prometheus_client's default
registry (so the process collector's ``process_*`` come too). Through the OpenTelemetry
SDK (``[otel]``): on with ``OTEL_METRICS_EXPORTER=otlp`` (or ``console``) or
``configure(meter_provider=...)``, the same names and labels (as attributes); both can be
on at once. The series:

=====================================  =========  =========================================
``micro_request_total``                counter    ``side``, ``service``, ``endpoint``, ``status``
``micro_request_duration_seconds``     histogram  ``side``, ``service``, ``endpoint``, ``status``
``micro_requests_in_flight``           gauge      ``side``, ``service``, ``endpoint``
``micro_stream_messages_total``        counter    ``side``, ``service``, ``endpoint``, ``direction``
``micro_events_published_total``       counter    ``topic``
``micro_events_delivered_total``       counter    ``topic``
``micro_events_failed_total``          counter    ``topic``
``micro_registry_lookups_total``       counter    ``service``
``micro_registry_cache_hits_total``    counter    ``service``
``micro_retries_total``                counter    ``service``, ``endpoint``
``micro_gateway_requests_total``       counter    ``route``, ``status``
``micro_gateway_request_duration_seconds`` histogram ``route``, ``status``
=====================================  =========  =========================================

``side`` is ``server`` (calls a service answered; ``service`` is its name) or ``client``
(calls a process made; ``service`` is the name called, ``-`` for a static address).
``endpoint`` is the rpc (``Greeter.SayHello``), ``status`` the gRPC status name (``OK``,
``NOT_FOUND``, ...; a client's stream counts once it ended, ``CANCELLED`` when it was
closed before), ``direction`` ``sent`` or ``received`` (streaming rpcs, both sides),
``route`` the gateway rule (``GET /v1/greet/{name}``, ``unmatched`` for no route) and
``status`` there the HTTP status. Label values are bounded: each metric keeps at most
:data:`MAX_SERIES` label sets and counts the rest under the value ``other``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from typing import Any, overload

from micro.status import Status
from micro.telemetry._watch import Ended, WatchedCall, watch

__all__ = [
    "BUCKETS",
    "MAX_SERIES",
    "Metrics",
    "active",
    "address",
    "client_middleware",
    "disable",
    "enable",
    "enable_otel",
    "enabled",
    "from_env",
    "serve",
    "server_middleware",
    "url",
]

log = logging.getLogger("micro.telemetry")

MAX_SERIES = 2000

#: health probes and reflection are not counted (the broker's hand-over is, as a call)
UNCOUNTED = ("/grpc.health.v1.Health/", "/grpc.reflection.")


class _Family:
    """A metric and its children, looked up once per label set (prometheus_client's
    ``labels()`` is slow for a hot path), at most :data:`MAX_SERIES` of them."""

    __slots__ = ("_children", "_metric")

    def __init__(self, metric: Any) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def child(self, *values: str) -> Any:
        found = self._children.get(values)
        if found is None:
            if len(self._children) >= MAX_SERIES:
                values = tuple("other" for _ in values)
                found = self._children.get(values)
            if found is None:
                found = self._children[values] = self._metric.labels(*values)
        return found


#: the histograms' buckets, in seconds: prometheus_client's defaults, for OTel too
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)

_CALL = ("side", "service", "endpoint")

#: every metric, once: (attribute, kind, name, help, labels)
_DEFINITIONS: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    ("requests", "counter", "micro_request_total", "Calls, by outcome", (*_CALL, "status")),
    (
        "duration",
        "histogram",
        "micro_request_duration_seconds",
        "Call duration in seconds",
        (*_CALL, "status"),
    ),
    ("in_flight", "gauge", "micro_requests_in_flight", "Calls running", _CALL),
    (
        "stream_messages",
        "counter",
        "micro_stream_messages_total",
        "Messages of streaming calls",
        (*_CALL, "direction"),
    ),
    ("published", "counter", "micro_events_published_total", "Events published", ("topic",)),
    (
        "delivered",
        "counter",
        "micro_events_delivered_total",
        "Events a subscriber handled",
        ("topic",),
    ),
    (
        "failed",
        "counter",
        "micro_events_failed_total",
        "Events a subscriber failed on",
        ("topic",),
    ),
    ("lookups", "counter", "micro_registry_lookups_total", "Service lookups", ("service",)),
    (
        "cache_hits",
        "counter",
        "micro_registry_cache_hits_total",
        "Service lookups answered from the cache",
        ("service",),
    ),
    (
        "retries",
        "counter",
        "micro_retries_total",
        "Call attempts retried",
        ("service", "endpoint"),
    ),
    (
        "gateway_requests",
        "counter",
        "micro_gateway_requests_total",
        "Gateway HTTP requests",
        ("route", "status"),
    ),
    (
        "gateway_duration",
        "histogram",
        "micro_gateway_request_duration_seconds",
        "Gateway HTTP request duration in seconds (until the answer starts)",
        ("route", "status"),
    ),
)

_prometheus_metrics: dict[str, Any] = {}  # registered once per process, kept across disable()


def _prometheus(kind: str, name: str, help: str, labels: tuple[str, ...]) -> Any:
    found = _prometheus_metrics.get(name)
    if found is None:
        from prometheus_client import Counter, Gauge, Histogram

        if kind == "histogram":
            found = Histogram(name, help, labels, buckets=BUCKETS)
        else:
            found = (Counter if kind == "counter" else Gauge)(name, help, labels)
        _prometheus_metrics[name] = found
    return found


class _OtelChild:
    """One label set of an OpenTelemetry instrument, used as a prometheus_client child."""

    __slots__ = ("_attributes", "_instrument")

    def __init__(self, instrument: Any, attributes: dict[str, str]) -> None:
        self._instrument, self._attributes = instrument, attributes

    def inc(self, amount: float = 1) -> None:
        self._instrument.add(amount, self._attributes)

    def dec(self, amount: float = 1) -> None:
        self._instrument.add(-amount, self._attributes)

    def observe(self, value: float) -> None:
        self._instrument.record(value, self._attributes)


class _OtelMetric:
    """An OpenTelemetry instrument with prometheus_client's ``labels()``."""

    __slots__ = ("_instrument", "_labels")

    def __init__(self, meter: Any, kind: str, name: str, help: str, labels: tuple[str, ...]):
        self._labels = labels
        if kind == "counter":
            self._instrument = meter.create_counter(name, description=help)
        elif kind == "gauge":
            self._instrument = meter.create_up_down_counter(name, description=help)
        else:
            self._instrument = meter.create_histogram(
                name, unit="s", description=help, explicit_bucket_boundaries_advisory=BUCKETS
            )

    def labels(self, *values: str) -> _OtelChild:
        return _OtelChild(self._instrument, dict(zip(self._labels, values, strict=True)))


class _BothChild:
    __slots__ = ("_children",)

    def __init__(self, *children: Any) -> None:
        self._children = children

    def inc(self, amount: float = 1) -> None:
        for child in self._children:
            child.inc(amount)

    def dec(self, amount: float = 1) -> None:
        for child in self._children:
            child.dec(amount)

    def observe(self, value: float) -> None:
        for child in self._children:
            child.observe(value)


class _Both:
    """A metric recorded both for Prometheus and through OpenTelemetry."""

    __slots__ = ("_metrics",)

    def __init__(self, *metrics: Any) -> None:
        self._metrics = metrics

    def labels(self, *values: str) -> _BothChild:
        return _BothChild(*(m.labels(*values) for m in self._metrics))


class Metrics:
    """Every micro metric, recorded for Prometheus (``/metrics``), through an
    OpenTelemetry ``MeterProvider`` (``meter_provider``), or both."""

    requests: _Family
    duration: _Family
    in_flight: _Family
    stream_messages: _Family
    published: _Family
    delivered: _Family
    failed: _Family
    lookups: _Family
    cache_hits: _Family
    retries: _Family
    gateway_requests: _Family
    gateway_duration: _Family

    def __init__(self, *, prometheus: bool = True, meter_provider: Any = None) -> None:
        meter = None if meter_provider is None else meter_provider.get_meter("micro")
        for attribute, kind, name, help, labels in _DEFINITIONS:
            metrics = []
            if prometheus:
                metrics.append(_prometheus(kind, name, help, labels))
            if meter is not None:
                metrics.append(_OtelMetric(meter, kind, name, help, labels))
            setattr(self, attribute, _Family(metrics[0] if len(metrics) == 1 else _Both(*metrics)))

    def lookup(self, service: str, hit: bool) -> None:
        self.lookups.child(service).inc()
        if hit:
            self.cache_hits.child(service).inc()


active: Metrics | None = None  # what the hot paths check: None when metrics are off
_for_prometheus = False  # recorded for /metrics
_meter_provider: Any = None  # the OpenTelemetry MeterProvider they are exported through
_server: Any = None
_address: str | None = None


def _rebuild() -> None:
    global active
    if not _for_prometheus and _meter_provider is None:
        active = None
    else:
        active = Metrics(prometheus=_for_prometheus, meter_provider=_meter_provider)


def enable() -> Metrics:
    """Record for Prometheus (``/metrics``)."""
    global _for_prometheus
    if not _for_prometheus:
        _for_prometheus = True
        _rebuild()
    assert active is not None
    return active


def enable_otel(provider: Any) -> Metrics:
    """Export through ``provider`` (an OpenTelemetry ``MeterProvider``), with the same
    names and attributes as for Prometheus."""
    global _meter_provider
    _meter_provider = provider
    _rebuild()
    assert active is not None
    return active


def disable() -> None:
    global _for_prometheus, _meter_provider
    _for_prometheus, _meter_provider = False, None
    _rebuild()


def enabled() -> bool:
    return active is not None


def from_env(env: Mapping[str, str]) -> None:
    _otel_from_env(env)
    where = env.get("MICRO_METRICS_ADDRESS", "").strip()
    if not where:
        return
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        log.warning(
            "MICRO_METRICS_ADDRESS is set, but prometheus-client is not installed "
            "(pip install 'micro-runtime[metrics]'); metrics stay off"
        )
        return
    from micro._config import ConfigError

    enable()
    try:
        serve(where)
    except ConfigError as exc:  # recording goes on; the address is the user's to fix
        log.error("%s; /metrics is not served", exc)


def _otel_from_env(env: Mapping[str, str]) -> None:
    """``OTEL_METRICS_EXPORTER`` (``otlp``, ``console``; unset or ``none``: off) exports
    the metrics through the OpenTelemetry SDK: through the global SDK ``MeterProvider``
    the process set (``opentelemetry-instrument`` does), else one built here with the
    exporters named and the resource the traces have."""
    names = [
        n.strip().lower() for n in env.get("OTEL_METRICS_EXPORTER", "").split(",") if n.strip()
    ]
    names = [n for n in names if n != "none"]
    if not names or env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return
    try:
        from opentelemetry.sdk.metrics import MeterProvider
    except ImportError:
        log.warning(
            "OTEL_METRICS_EXPORTER is set, but the OpenTelemetry SDK is not installed "
            "(pip install 'micro-runtime[otel]'); OpenTelemetry metrics stay off"
        )
        return
    from opentelemetry import metrics as otel_metrics
    from opentelemetry.sdk.metrics.export import (
        ConsoleMetricExporter,
        MetricReader,
        PeriodicExportingMetricReader,
    )

    from micro.telemetry.tracing import resource

    current = otel_metrics.get_meter_provider()
    if isinstance(current, MeterProvider):  # the process set one up itself: use it
        enable_otel(current)
        return
    readers: list[MetricReader] = []
    for name in names:
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
                OTLPMetricExporter,
            )

            readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
        elif name == "console":
            readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter()))
        elif name == "prometheus":
            log.warning(
                "OTEL_METRICS_EXPORTER=prometheus: micro serves Prometheus itself, "
                "set MICRO_METRICS_ADDRESS=host:port instead"
            )
        else:
            log.warning("OTEL_METRICS_EXPORTER: unknown exporter %r ignored", name)
    if not readers:
        return
    provider = MeterProvider(metric_readers=readers, resource=resource())
    otel_metrics.set_meter_provider(provider)
    enable_otel(provider)


def serve(where: str) -> str:
    """Serve ``/metrics`` on ``host:port`` (in a thread); returns the address bound.
    Once per process: a second call returns the first address."""
    global _server, _address
    from micro._config import ConfigError
    from micro.address import format_address, parse_address

    enable()
    if _address is not None:
        return _address
    host, port = parse_address(where)
    from prometheus_client import start_http_server

    try:
        server, _ = start_http_server(port, host)
    except OSError as exc:
        raise ConfigError(f"MICRO_METRICS_ADDRESS {where}: cannot listen: {exc.strerror}") from None
    _server = server
    bound_host, bound_port = server.server_address[:2]
    _address = format_address(str(bound_host), int(bound_port))
    log.info("metrics on http://%s/metrics", _address)
    return _address


def address() -> str | None:
    """The ``host:port`` ``/metrics`` is served on, if it is."""
    return _address


def url() -> str | None:
    """Where this process is scraped (``http://host:port/metrics``): an address others
    can reach when it listens on every interface."""
    if _address is None:
        return None
    from micro.address import advertised_host, format_address, parse_address

    host, port = parse_address(_address)
    return f"http://{format_address(advertised_host(host), port)}/metrics"


def _status(exc: BaseException) -> str:
    from micro.codec import DecodeError
    from micro.errors import Error

    if isinstance(exc, Error):
        return exc.grpc_status.name
    if isinstance(exc, asyncio.CancelledError):
        return "CANCELLED"
    if isinstance(exc, DecodeError):
        return "INVALID_ARGUMENT"
    return Status.INTERNAL.name


def server_middleware(service: str) -> Callable[[Any, Any], Awaitable[Any]]:
    """Counts, times and tracks in flight every call ``service`` answers."""

    async def count_server(call: Any, next: Callable[[Any], Awaitable[Any]]) -> Any:
        m = active
        method = call.method
        if m is None or method.path.startswith(UNCOUNTED):
            return await next(call)
        endpoint = method.name
        kind = method.kind
        if kind.server_streaming:
            sent = m.stream_messages.child("server", service, endpoint, "sent")
            send = call._send

            async def counted_send(item: Any) -> None:
                await send(item)
                sent.inc()

            call._send = counted_send
        if kind.client_streaming:
            received = m.stream_messages.child("server", service, endpoint, "received")
            call.request = _counted(call.request, received)
        gauge = m.in_flight.child("server", service, endpoint)
        gauge.inc()
        status = "OK"
        started = time.perf_counter()
        try:
            return await next(call)
        except BaseException as exc:
            status = _status(exc)
            raise
        finally:
            elapsed = time.perf_counter() - started
            gauge.dec()
            m.requests.child("server", service, endpoint, status).inc()
            m.duration.child("server", service, endpoint, status).observe(elapsed)

    return count_server


async def _counted(requests: AsyncIterator[Any], counter: Any) -> AsyncIterator[Any]:
    async for item in requests:
        counter.inc()
        yield item


class _CountedSequence(Sequence[Any]):
    """A client-streaming call's requests that are a ``Sequence`` (replayed on a retry,
    and still one), counting each message as the call sends it: when it comes back for
    the next one, so every attempt counts what it sent."""

    __slots__ = ("_counter", "_inner")

    def __init__(self, inner: Sequence[Any], counter: Any) -> None:
        self._inner, self._counter = inner, counter

    def __len__(self) -> int:
        return len(self._inner)

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Any]: ...
    def __getitem__(self, index: int | slice) -> Any:
        return self._inner[index]

    def __iter__(self) -> Iterator[Any]:
        return _counted_iter(self._inner, self._counter)


class _CountedIterable:
    """:class:`_CountedSequence` for any other iterable: iterated again (a retry before
    its first item was taken) it iterates the original again."""

    __slots__ = ("_counter", "_inner")

    def __init__(self, inner: Iterable[Any], counter: Any) -> None:
        self._inner, self._counter = inner, counter

    def __iter__(self) -> Iterator[Any]:
        return _counted_iter(self._inner, self._counter)


class _CountedAsyncIterable:
    """:class:`_CountedIterable` for an async iterable."""

    __slots__ = ("_counter", "_inner")

    def __init__(self, inner: AsyncIterable[Any], counter: Any) -> None:
        self._inner, self._counter = inner, counter

    def __aiter__(self) -> AsyncIterator[Any]:
        return _counted_aiter(self._inner, self._counter)


def _counted_iter(items: Iterable[Any], counter: Any) -> Iterator[Any]:
    for item in items:
        yield item
        counter.inc()  # asked for the next one: this one was sent


async def _counted_aiter(items: AsyncIterable[Any], counter: Any) -> AsyncIterator[Any]:
    async for item in items:
        yield item
        counter.inc()


def _counted_requests(requests: Any, counter: Any) -> Any:
    """A client-streaming call's requests, counted as they are sent, of the same kind
    (a ``Sequence`` stays one: the client replays it on a retry)."""
    if isinstance(requests, AsyncIterable):
        return _CountedAsyncIterable(requests, counter)
    if isinstance(requests, Sequence):
        return _CountedSequence(requests, counter)
    return _CountedIterable(requests, counter)


class _CountedCall(WatchedCall):
    """A client stream's open call that counts the messages sent."""

    __slots__ = ("_sent",)

    def __init__(self, inner: Any, ended: Ended, sent: Any) -> None:
        super().__init__(inner, ended)
        self._sent = sent

    async def send(self, message: Any, *, end: bool = False) -> None:
        await super().send(message, end=end)
        self._sent.inc()


def client_middleware() -> Callable[[Any, Any], Awaitable[Any]]:
    """Counts, times and tracks in flight every call a client makes, until it ends (a
    stream: until it is exhausted, fails, or is closed or dropped before, as
    ``CANCELLED``), and the messages of its streams."""

    async def count_client(call: Any, next: Callable[[Any], Awaitable[Any]]) -> Any:
        m = active
        method = call.method
        if m is None or method.path.startswith(UNCOUNTED):
            return await next(call)
        service = call.service if call.service is not None else "-"
        endpoint = method.name
        kind = method.kind
        gauge = m.in_flight.child("client", service, endpoint)
        gauge.inc()
        started = time.perf_counter()
        if kind.client_streaming:
            sent = m.stream_messages.child("client", service, endpoint, "sent")
            if not kind.server_streaming:
                call.request = _counted_requests(call.request, sent)
        opened: list[Any] = []  # a stream's open call, whose received messages count

        def ended(exc: BaseException | None) -> None:
            elapsed = time.perf_counter() - started
            status = "OK" if exc is None else _status(exc)
            gauge.dec()
            m.requests.child("client", service, endpoint, status).inc()
            m.duration.child("client", service, endpoint, status).observe(elapsed)
            if opened:
                received = m.stream_messages.child("client", service, endpoint, "received")
                received.inc(opened[0].messages_received)

        try:
            result = await next(call)
        except BaseException as exc:
            ended(exc)
            raise
        if not kind.server_streaming:
            ended(None)
            return result
        # the stream's handle: counted until it ends
        opened.append(result[0] if isinstance(result, tuple) else result)
        if kind.client_streaming:  # bidi
            return watch(result, ended, lambda inner, end: _CountedCall(inner, end, sent))
        return watch(result, ended)

    return count_client
