"""OpenTelemetry spans for calls (server, client), events (publish, process) and the gateway.

On when the environment asks for traces (``OTEL_TRACES_EXPORTER`` other than ``none``,
or ``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``; never with
``OTEL_SDK_DISABLED=true``), when the process already set an SDK tracer provider as the
global one before its first Service or Client (``opentelemetry-instrument`` does), or
when :func:`enable` is given a tracer provider. The
provider built from the environment is the SDK's: its sampler (``OTEL_TRACES_SAMPLER``),
its resource (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``; ``service.name``
defaults to the first :class:`micro.Service` made in the process), a batch processor and
the exporter ``OTEL_TRACES_EXPORTER`` names (``otlp``, the default: OTLP over gRPC to
``OTEL_EXPORTER_OTLP_ENDPOINT``; ``console``: JSON on stdout). A process that set a
global SDK provider itself keeps it.

Context travels as W3C ``traceparent`` / ``tracestate`` / ``baggage`` (or whatever
``OTEL_PROPAGATORS`` names) in gRPC metadata and in event metadata, so micro interoperates
with any instrumented gRPC peer (grpcio's ``opentelemetry-instrumentation-grpc``, Go, ...).

Spans follow the OpenTelemetry semantic conventions: RPC spans are named
``package.Service/Method`` with ``rpc.system=grpc``, ``rpc.service``, ``rpc.method``,
``rpc.grpc.status_code``, ``server.address``/``server.port`` (client) and
``network.peer.address``/``network.peer.port`` (server); a failed call has the status
``ERROR`` and the micro error's ``micro.error.id`` and ``micro.error.code``. Event spans
are ``publish <topic>`` (producer) and ``process <topic>`` (consumer, the publisher's
child) with ``messaging.system``, ``messaging.destination.name`` and
``messaging.operation.type``. The health and reflection services and the embedded
broker's hand-over are not traced (their calls are noise in a trace).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, MutableMapping
from contextlib import AbstractContextManager, asynccontextmanager
from typing import Any

from micro.status import Status

__all__ = [
    "client_middleware",
    "current_ids",
    "disable",
    "enable",
    "enabled",
    "from_env",
    "name_process",
    "server_middleware",
]

log = logging.getLogger("micro.telemetry")

#: paths whose calls get no spans (nor metrics): probes, reflection, the broker's hand-over
UNTRACED = ("/grpc.health.v1.Health/", "/grpc.reflection.", "/micro.broker.v1.Broker/")

_PROPAGATED = ("traceparent", "tracestate", "baggage")

_wanted = False  # the environment asked for traces; the provider is built on first use
_provider: Any = None  # the TracerProvider in use, once known
_tracer: Any = None
_process_name: str | None = None


def from_env(env: Mapping[str, str]) -> None:
    global _wanted
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    )
    if exporter == "none":
        return
    if not exporter and not endpoint:
        _wanted = _global_sdk_provider() is not None
        return
    try:
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        log.warning(
            "OTEL_* asks for traces, but the OpenTelemetry SDK is not installed "
            "(pip install 'micro-runtime[otel]'); tracing stays off"
        )
        return
    _wanted = True


def _global_sdk_provider() -> Any:
    """The SDK provider the process set as the global one (``opentelemetry-instrument``
    does), if the SDK is loaded at all: nothing is imported to find out."""
    if "opentelemetry.sdk.trace" not in sys.modules:
        return None
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    current = trace.get_tracer_provider()
    return current if isinstance(current, TracerProvider) else None


def enable(provider: Any) -> None:
    """Trace through ``provider`` (an OpenTelemetry ``TracerProvider``)."""
    global _provider, _tracer, _wanted
    from opentelemetry import trace

    _wanted = True
    _provider = provider
    _tracer = trace.get_tracer("micro", tracer_provider=provider)


def disable() -> None:
    global _provider, _tracer, _wanted
    _wanted, _provider, _tracer = False, None, None


def enabled() -> bool:
    return _wanted


def name_process(service: str) -> None:
    """The ``service.name`` of the provider built from the environment, unless
    ``OTEL_SERVICE_NAME`` says otherwise: the first service made in the process."""
    global _process_name
    if _process_name is None:
        _process_name = service


def resource() -> Any:
    """The OpenTelemetry SDK resource of what micro builds from the environment (traces,
    metrics): ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES``, and ``service.name``
    the first :class:`micro.Service` of the process when they do not name it."""
    import os

    from opentelemetry.sdk.resources import SERVICE_NAME, Resource

    found = Resource.create()
    named = str(found.attributes.get(SERVICE_NAME, ""))
    if "OTEL_SERVICE_NAME" not in os.environ and named.startswith("unknown_service"):
        found = found.merge(Resource({SERVICE_NAME: _process_name or "micro"}))
    return found


def _build_provider() -> Any:
    import os

    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):  # the process set one up itself: use it
        return current
    provider = TracerProvider(resource=resource())
    names = os.environ.get("OTEL_TRACES_EXPORTER", "otlp") or "otlp"
    for name in (n.strip().lower() for n in names.split(",")):
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        elif name == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        elif name != "none":
            log.warning("OTEL_TRACES_EXPORTER: unknown exporter %r ignored", name)
    trace.set_tracer_provider(provider)
    return provider


def tracer() -> Any:
    """micro's tracer (the provider is built on first use), or ``None`` when off."""
    global _tracer, _provider
    if _tracer is None and _wanted:
        from opentelemetry import trace

        _provider = _build_provider()
        _tracer = trace.get_tracer("micro", tracer_provider=_provider)
    return _tracer


# -- carriers ------------------------------------------------------------------------------


def _get_all(carrier: Any, key: str) -> list[str]:
    getter = getattr(carrier, "get_all", None)
    if getter is not None:  # a MetadataView
        return [v if isinstance(v, str) else v.decode("latin-1") for v in getter(key)]
    for k, v in carrier.items():
        if k.lower() == key:
            return [v]
    return []


_getter: Any = None


def _carrier_getter() -> Any:
    """A propagator getter for metadata views, header lists and mappings (lazily: the
    OpenTelemetry API is imported only when tracing is on)."""
    global _getter
    if _getter is None:
        from opentelemetry.propagators.textmap import Getter

        class _Getter(Getter[Any]):
            def get(self, carrier: Any, key: str) -> list[str] | None:
                return _get_all(carrier, key) or None

            def keys(self, carrier: Any) -> list[str]:
                return list(carrier.keys())

        _getter = _Getter()
    return _getter


def extract(carrier: Any) -> Any:
    """The OpenTelemetry context carried by ``carrier`` (metadata, headers, a mapping)."""
    from opentelemetry import propagate

    return propagate.extract(carrier, getter=_carrier_getter())


def inject_pairs(pairs: list[tuple[str, Any]]) -> None:
    """Put the current context into gRPC metadata ``pairs`` (replacing propagated ones)."""
    from opentelemetry import propagate

    fields: dict[str, str] = {}
    propagate.inject(fields)
    if fields:
        keep = [(k, v) for k, v in pairs if k not in _PROPAGATED and k not in fields]
        pairs[:] = keep + list(fields.items())


def inject_mapping(metadata: MutableMapping[str, str]) -> None:
    from opentelemetry import propagate

    for key in _PROPAGATED:
        metadata.pop(key, None)
    propagate.inject(metadata)


def current_ids() -> tuple[str, str] | None:
    """The current span's ``(trace_id, span_id)`` in hex, or ``None``."""
    if _tracer is None:
        return None
    from opentelemetry import trace

    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


# -- RPC spans -----------------------------------------------------------------------------


def _split(address: str) -> tuple[str, int | None]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        return address, None
    return host.strip("[]"), int(port)


def _rpc_attributes(path: str) -> dict[str, Any]:
    service, _, method = path.lstrip("/").partition("/")
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}


def _fail(span: Any, exc: BaseException) -> None:
    from opentelemetry.trace import StatusCode

    from micro.errors import Error

    if isinstance(exc, Error):
        status = exc.grpc_status
        span.set_attribute("micro.error.id", exc.id)
        span.set_attribute("micro.error.code", exc.code)
        span.set_status(StatusCode.ERROR, exc.detail)
    elif isinstance(exc, asyncio.CancelledError):
        status = Status.CANCELLED
        span.set_status(StatusCode.ERROR, "cancelled")
    else:
        from micro.codec import DecodeError

        status = Status.INVALID_ARGUMENT if isinstance(exc, DecodeError) else Status.INTERNAL
        span.set_status(StatusCode.ERROR, type(exc).__name__)
    span.set_attribute("rpc.grpc.status_code", int(status))
    span.set_attribute("error.type", status.name)


def server_middleware() -> Callable[[Any, Callable[[Any], Awaitable[Any]]], Awaitable[Any]]:
    """A server span per call, the child of the caller's context."""
    from opentelemetry.trace import SpanKind

    async def trace_server(call: Any, next: Callable[[Any], Awaitable[Any]]) -> Any:
        t = tracer()
        path: str = call.method.path
        if t is None or path.startswith(UNTRACED):
            return await next(call)
        attributes = _rpc_attributes(path)
        peer = call.context.peer
        if peer:
            host, port = _split(peer)
            attributes["network.peer.address"] = host
            if port is not None:
                attributes["network.peer.port"] = port
        with t.start_as_current_span(
            path.lstrip("/"),
            context=extract(call.context.metadata),
            kind=SpanKind.SERVER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                result = await next(call)
            except BaseException as exc:
                _fail(span, exc)
                raise
            span.set_attribute("rpc.grpc.status_code", 0)
            return result

    return trace_server


def client_middleware() -> Callable[[Any, Callable[[Any], Awaitable[Any]]], Awaitable[Any]]:
    """A client span per call, until the call ends (a stream: until it is exhausted,
    fails, or is closed or dropped before, as CANCELLED); the context goes out in the
    call's metadata."""
    from opentelemetry.trace import SpanKind, use_span

    from micro.telemetry._watch import watch

    async def trace_client(call: Any, next: Callable[[Any], Awaitable[Any]]) -> Any:
        t = tracer()
        method = call.method
        path: str = method.path
        if t is None or path.startswith(UNTRACED):
            return await next(call)
        attributes = _rpc_attributes(path)
        host, port = _split(call.address) if call.address else (call.service, None)
        attributes["server.address"] = host
        if port is not None:
            attributes["server.port"] = port
        span = t.start_span(path.lstrip("/"), kind=SpanKind.CLIENT, attributes=attributes)

        def ended(exc: BaseException | None) -> None:
            if exc is None:
                span.set_attribute("rpc.grpc.status_code", 0)
            else:
                _fail(span, exc)
            span.end()

        with use_span(span, record_exception=False, set_status_on_exception=False):
            inject_pairs(call.metadata)
            try:
                result = await next(call)
            except BaseException as exc:
                ended(exc)
                raise
        if method.kind.server_streaming:  # the stream's handle: the span lasts as it does
            return watch(result, ended)
        ended(None)
        return result

    return trace_client


# -- events --------------------------------------------------------------------------------


@asynccontextmanager
async def publishing(topic: str, system: str, metadata: dict[str, str]) -> AsyncIterator[None]:
    """A producer span around a publish; its context goes into ``metadata``."""
    t = tracer()
    if t is None:
        yield
        return
    from opentelemetry.trace import SpanKind, StatusCode

    with t.start_as_current_span(
        f"publish {topic}",
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": system,
            "messaging.destination.name": topic,
            "messaging.operation.type": "publish",
            "messaging.operation.name": "publish",
        },
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        inject_mapping(metadata)
        try:
            yield
        except BaseException as exc:
            span.set_status(StatusCode.ERROR, type(exc).__name__)
            span.set_attribute("error.type", type(exc).__name__)
            raise


@asynccontextmanager
async def processing(
    topic: str, system: str, metadata: Mapping[str, str], redelivered: bool
) -> AsyncIterator[Callable[[BaseException | None], None]]:
    """A consumer span around a subscriber, the publisher's child; yields a function that
    marks it failed."""
    t = tracer()
    if t is None:
        yield _ignore
        return
    from opentelemetry.trace import SpanKind, StatusCode

    with t.start_as_current_span(
        f"process {topic}",
        context=extract(metadata),
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": system,
            "messaging.destination.name": topic,
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "micro.redelivered": redelivered,
        },
        record_exception=False,
        set_status_on_exception=False,
    ) as span:

        def failed(exc: BaseException | None) -> None:
            name = "subscriber failed" if exc is None else type(exc).__name__
            span.set_status(StatusCode.ERROR, name)
            span.set_attribute("error.type", name)

        yield failed


def _ignore(exc: BaseException | None) -> None:
    return None


# -- HTTP (the gateway) --------------------------------------------------------------------


def http_server_span(
    method: str, headers: Iterable[tuple[str, str]], attributes: dict[str, Any]
) -> Any:
    """A server span for one gateway request, started (make it current with
    :func:`using`; the gateway ends it once the answer is done), or ``None`` when off."""
    t = tracer()
    if t is None:
        return None
    from opentelemetry.trace import SpanKind

    return t.start_span(
        method, context=extract(dict(headers)), kind=SpanKind.SERVER, attributes=attributes
    )


def using(span: Any) -> AbstractContextManager[Any]:
    """``span`` as the current span inside the block (which does not end it)."""
    from opentelemetry.trace import use_span

    return use_span(span, record_exception=False, set_status_on_exception=False)


def http_answered(span: Any, method: str, route: str | None, status: int) -> None:
    """Name the gateway's span after its route and record the HTTP status."""
    from opentelemetry.trace import StatusCode

    if route is not None:
        span.update_name(f"{method} {route}")
        span.set_attribute("http.route", route)
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(StatusCode.ERROR)
        span.set_attribute("error.type", str(status))
