"""Prometheus metrics, with go-micro's names (``pip install 'micro-runtime[metrics]'``).

On with ``MICRO_METRICS_ADDRESS=host:port`` (which also serves ``/metrics`` there; port 0
picks a free one) or ``micro.telemetry.configure(metrics=True)``. The series, in
prometheus_client's default registry (so the process collector's ``process_*`` come too):

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
``NOT_FOUND``, ...), ``direction`` ``sent`` or ``received`` (streaming rpcs: on the
server side every kind, on the client side server-streaming and bidi calls),
``route`` the gateway rule (``GET /v1/greet/{name}``, ``unmatched`` for no route) and
``status`` there the HTTP status. Label values are bounded: each metric keeps at most
:data:`MAX_SERIES` label sets and counts the rest under the value ``other``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from micro.status import Status

__all__ = [
    "MAX_SERIES",
    "Metrics",
    "active",
    "address",
    "client_middleware",
    "disable",
    "enable",
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


class Metrics:
    """Every micro metric (one instance per process, registered once)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        call = ("side", "service", "endpoint")
        self.requests = _Family(
            Counter("micro_request_total", "Calls, by outcome", (*call, "status"))
        )
        self.duration = _Family(
            Histogram(
                "micro_request_duration_seconds", "Call duration in seconds", (*call, "status")
            )
        )
        self.in_flight = _Family(Gauge("micro_requests_in_flight", "Calls running", call))
        self.stream_messages = _Family(
            Counter(
                "micro_stream_messages_total",
                "Messages of streaming calls",
                (*call, "direction"),
            )
        )
        self.published = _Family(
            Counter("micro_events_published_total", "Events published", ("topic",))
        )
        self.delivered = _Family(
            Counter("micro_events_delivered_total", "Events a subscriber handled", ("topic",))
        )
        self.failed = _Family(
            Counter("micro_events_failed_total", "Events a subscriber failed on", ("topic",))
        )
        self.lookups = _Family(
            Counter("micro_registry_lookups_total", "Service lookups", ("service",))
        )
        self.cache_hits = _Family(
            Counter(
                "micro_registry_cache_hits_total",
                "Service lookups answered from the cache",
                ("service",),
            )
        )
        self.retries = _Family(
            Counter("micro_retries_total", "Call attempts retried", ("service", "endpoint"))
        )
        self.gateway_requests = _Family(
            Counter("micro_gateway_requests_total", "Gateway HTTP requests", ("route", "status"))
        )
        self.gateway_duration = _Family(
            Histogram(
                "micro_gateway_request_duration_seconds",
                "Gateway HTTP request duration in seconds (until the answer starts)",
                ("route", "status"),
            )
        )

    def lookup(self, service: str, hit: bool) -> None:
        self.lookups.child(service).inc()
        if hit:
            self.cache_hits.child(service).inc()


_metrics: Metrics | None = None  # built once, kept across disable()
active: Metrics | None = None  # what the hot paths check: None when metrics are off
_server: Any = None
_address: str | None = None


def enable() -> Metrics:
    global _metrics, active
    if _metrics is None:
        _metrics = Metrics()
    active = _metrics
    return _metrics


def disable() -> None:
    global active
    active = None


def enabled() -> bool:
    return active is not None


def from_env(env: Mapping[str, str]) -> None:
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


class _CountedStream:
    """A client stream's outbound call that counts the messages sent, and those received
    when it closes (the transport counts them anyway)."""

    __slots__ = ("_closed", "_inner", "_received", "_sent")

    def __init__(self, inner: Any, sent: Any, received: Any) -> None:
        self._inner, self._sent, self._received = inner, sent, received
        self._closed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def send(self, message: Any, *, end: bool = False) -> None:
        await self._inner.send(message, end=end)
        self._sent.inc()

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._received.inc(self._inner.messages_received)
        await self._inner.aclose()


def client_middleware() -> Callable[[Any, Any], Awaitable[Any]]:
    """Counts, times and tracks in flight every call a client makes (a stream: until it
    is open)."""

    async def count_client(call: Any, next: Callable[[Any], Awaitable[Any]]) -> Any:
        m = active
        method = call.method
        if m is None or method.path.startswith(UNCOUNTED):
            return await next(call)
        service = call.service if call.service is not None else "-"
        endpoint = method.name
        gauge = m.in_flight.child("client", service, endpoint)
        gauge.inc()
        status = "OK"
        started = time.perf_counter()
        try:
            result = await next(call)
            if method.kind.server_streaming:  # the stream's handle: count what it carries
                sent = m.stream_messages.child("client", service, endpoint, "sent")
                received = m.stream_messages.child("client", service, endpoint, "received")
                if isinstance(result, tuple):  # server-streaming: (call, first message)
                    return (_CountedStream(result[0], sent, received), result[1])
                return _CountedStream(result, sent, received)
            return result
        except BaseException as exc:
            status = _status(exc)
            raise
        finally:
            elapsed = time.perf_counter() - started
            gauge.dec()
            m.requests.child("client", service, endpoint, status).inc()
            m.duration.child("client", service, endpoint, status).observe(elapsed)

    return count_client
