"""``Service``: serve handlers over gRPC, register in the registry, shut down gracefully.

Lifecycle of :meth:`Service.start`: bind (``port 0``: a free port), mark health
``SERVING``, register the node (with one endpoint per method; HTTP rules go into the
endpoint metadata as JSON under ``"http"``), re-register every ``register_interval``
seconds to keep the ``register_ttl`` lease, and run the ``on_start`` hooks (the service
is reachable and discoverable by then, ``service.address`` is known).

:meth:`Service.stop` deregisters *first*, then drains: health turns ``NOT_SERVING``,
new calls are refused with 503/``UNAVAILABLE`` (so clients retry on another node) and
in-flight calls get up to ``grace`` seconds to finish; then the server closes
(cancelling what is left) and ``on_stop`` hooks run.

Event subscribers (:meth:`Service.subscribe`, see :mod:`micro.events`) are subscribed
after registration and unsubscribed right after deregistration, before the drain;
running event handlers finish first.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import os
import signal
import sys
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

from micro import auth as auth_mod
from micro import broker as broker_mod
from micro import registry as registry_mod
from micro import selector as selector_mod
from micro import telemetry
from micro import tls as tls_mod
from micro import transport as transport_mod
from micro._config import ConfigError
from micro._tasks import stop_if_cancelled
from micro.address import advertised_host, format_address, parse_address
from micro.broker import Broker, BrokerError, Subscription
from micro.broker.embedded import EmbeddedBroker
from micro.events import Event, EventHandler
from micro.health import HEALTH_SPEC, HealthHandler, ServingStatus
from micro.reflection import REFLECTION_SPEC, REFLECTION_V1ALPHA_SPEC, ReflectionHandler
from micro.registry import DEFAULT_TTL, Endpoint, Node, Registry, RegistryError, ServiceRecord
from micro.server import Dispatcher, ServerMiddleware, stray_methods
from micro.spec import AnyMethod, ServiceSpec
from micro.tls import TLSSetting
from micro.transport import ServerTransport, Transport, TransportOptions, wire_settings

__all__ = ["Hook", "Service", "StartError"]

log = logging.getLogger(__name__)

#: an ``on_start`` / ``on_stop`` hook: a plain or async callable taking the service
Hook = Callable[["Service"], Awaitable[None] | None]

M = TypeVar("M")
F = TypeVar("F", bound=Callable[..., Awaitable[None]])


def _type_name(tp: type) -> str:
    return tp.__qualname__


def _endpoint(method: AnyMethod) -> Endpoint:
    metadata: dict[str, str] = {}
    if method.http_rules:
        metadata["http"] = json.dumps(
            [
                {
                    "method": rule.method,
                    "path": rule.path,
                    "body": rule.body,
                    "response_body": rule.response_body,
                    "custom": rule.custom,
                }
                for rule in method.http_rules
            ],
            separators=(",", ":"),
        )
    if method.deprecated:
        metadata["deprecated"] = "true"
    return Endpoint(
        name=method.name,
        path=method.path,
        kind=method.kind.value,
        request=method.request_name or _type_name(method.request_type),
        response=method.response_name or _type_name(method.response_type),
        metadata=metadata,
    )


async def _run_hooks(hooks: Sequence[Hook], service: Service) -> None:
    for hook in hooks:
        result = hook(service)
        if inspect.isawaitable(result):
            await result


class StartError(Exception):
    """The service could not start: its address is taken, or the registry refused it."""


class Service:
    """A named service: ``handle()`` handlers, then ``async with`` / ``run()`` it.

    ``registry`` and ``broker`` default to the process's (``MICRO_REGISTRY``,
    ``MICRO_BROKER``), ``transport`` to ``MICRO_TRANSPORT`` (grpcio), ``tls`` (a
    :class:`micro.tls.TLS`; ``False``: plaintext) to the ``MICRO_TLS_*`` variables; given
    here, it holds for the service's events too (on the embedded broker, unless ``broker``
    is given). A TLS node says so in its registry node metadata (``"tls": "true"``). ``auth``
    (:class:`micro.auth.Auth`) defaults to what ``MICRO_AUTH_*`` configure, read at
    start (none: no auth); ``auth=False`` turns it off whatever the environment says."""

    def __init__(
        self,
        name: str,
        *,
        version: str = "latest",
        metadata: Mapping[str, str] | None = None,
        address: str = "127.0.0.1:0",
        registry: Registry | None = None,
        middleware: Sequence[ServerMiddleware] = (),
        on_start: Sequence[Hook] = (),
        on_stop: Sequence[Hook] = (),
        register_ttl: float = DEFAULT_TTL,
        register_interval: float | None = None,
        advertise: str | None = None,
        broker: Broker | None = None,
        transport: Transport | None = None,
        tls: TLSSetting = None,
        auth: auth_mod.Auth | bool | None = None,
        transport_options: TransportOptions | None = None,
    ) -> None:
        if not name:
            raise ValueError("a service needs a name")
        self._tls_setting = tls
        self._serving_tls = False
        self.name = name
        self.version = version
        self.metadata = dict(metadata or {})
        self._bind = parse_address(address)
        self._advertise = advertise
        self._registry = registry
        self._broker = broker
        self._own_broker: EmbeddedBroker | None = None  # made by the service, closed with it
        self._wire = transport if transport is not None else transport_mod.from_env()
        if auth is True:
            raise TypeError("auth takes a micro.auth.Auth, None (from the environment) or False")
        self._auth_setting = auth
        self.auth: auth_mod.Auth | None = None  # resolved at start
        self._wire_options = transport_options  # limits, compression: docs/hardening.md
        self._subscribers: list[tuple[Event[Any], EventHandler[Any], str | None]] = []
        self._subscriptions: list[Subscription] = []
        self._on_start = list(on_start)
        self._on_stop = list(on_stop)
        self._ttl = register_ttl
        self._interval = register_interval if register_interval is not None else register_ttl / 3
        self.id = f"{name}-{uuid.uuid4()}"
        self._specs: list[ServiceSpec] = []
        self._handlers: list[tuple[ServiceSpec, object]] = []
        # read now, before the handlers' clients are made: it also names the process for
        # tracing when OTEL_SERVICE_NAME does not
        self._telemetry = telemetry.server_middleware(name)
        self._dispatcher = Dispatcher(name=name, middleware=middleware)
        self._dispatcher.accepting = self._accepting
        self._dispatcher.on_call_start = self._call_started
        self._dispatcher.on_call_end = self._call_ended
        self.health = HealthHandler()
        self._dispatcher.add(HEALTH_SPEC, self.health)
        builtin = (HEALTH_SPEC, REFLECTION_SPEC, REFLECTION_V1ALPHA_SPEC)
        self.reflection = ReflectionHandler(builtin)
        self._dispatcher.add(REFLECTION_SPEC, self.reflection)
        self._dispatcher.add(REFLECTION_V1ALPHA_SPEC, self.reflection.v1alpha)
        self._transport: ServerTransport | None = None
        self._address: str | None = None
        self._record: ServiceRecord | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._draining = False
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping: asyncio.Task[None] | None = None

    # -- configuration -----------------------------------------------------------------

    def handle(self, spec: ServiceSpec, handler: object) -> None:
        """Serve ``spec``'s methods with ``handler`` (before :meth:`start`)."""
        if self._transport is not None:
            raise RuntimeError("handlers must be registered before the service starts")
        self._dispatcher.add(spec, handler)
        self._specs.append(spec)
        self._handlers.append((spec, handler))
        self.reflection.add(spec)

    def on_start(self, hook: Hook) -> Hook:
        """Add a hook run at the end of :meth:`start` (usable as a decorator)."""
        self._on_start.append(hook)
        return hook

    def on_stop(self, hook: Hook) -> Hook:
        """Add a hook run at the end of :meth:`stop` (usable as a decorator)."""
        self._on_stop.append(hook)
        return hook

    def subscribe(
        self,
        event: Event[M],
        handler: EventHandler[M],
        *,
        queue: str | None = None,
        broadcast: bool = False,
    ) -> None:
        """Call ``handler`` for each message of ``event`` while the service runs.

        The replicas of a service share the messages (queue group ``queue``, by default
        the service name); ``broadcast=True`` gives every replica every message."""
        if self._transport is not None:
            raise RuntimeError("subscribers must be registered before the service starts")
        if broadcast and event.durable:
            raise ValueError(f"{event.topic}: a durable event cannot be broadcast")
        self._subscribers.append((event, handler, None if broadcast else queue or self.name))

    def subscriber(
        self, event: Event[M], *, queue: str | None = None, broadcast: bool = False
    ) -> Callable[[F], F]:
        """Decorator form of :meth:`subscribe`."""

        def register(func: F) -> F:
            self.subscribe(event, func, queue=queue, broadcast=broadcast)
            return func

        return register

    async def publish(
        self, event: Event[M], message: M, *, metadata: Mapping[str, str] | None = None
    ) -> None:
        """Publish ``message`` on ``event``'s topic through this service's broker."""
        await event.publish(message, metadata=metadata, broker=self.broker)

    @property
    def broker(self) -> Broker:
        if self._broker is None:
            self._broker = broker_mod.default()
            if self._tls_setting is not None and isinstance(self._broker, EmbeddedBroker):
                # the process's embedded broker reads MICRO_TLS_*; this service's events
                # are handed over with the TLS settings it was given (NATS has its own)
                self._broker = self._own_broker = EmbeddedBroker(
                    self.registry, transport=self._wire, tls=self._tls_setting
                )
        return self._broker

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = registry_mod.default()
        return self._registry

    @property
    def address(self) -> str:
        """The advertised ``host:port`` (the actual port once started)."""
        if self._address is None:
            raise RuntimeError("the service is not started")
        return self._address

    @property
    def record(self) -> ServiceRecord:
        """What is registered for this node."""
        node_metadata = {**self.metadata, **telemetry.node_metadata()}  # where /metrics is
        if self._serving_tls:
            node_metadata[tls_mod.NODE_METADATA_KEY] = "true"
        return ServiceRecord(
            name=self.name,
            version=self.version,
            nodes=(Node(id=self.id, address=self.address, metadata=node_metadata),),
            endpoints=tuple(_endpoint(m) for spec in self._specs for m in spec.methods),
            metadata=self.metadata,
        )

    # -- in-flight accounting ----------------------------------------------------------

    def _accepting(self, method: AnyMethod) -> bool:
        return not self._draining or method.path.startswith("/grpc.health.v1.Health/")

    def _counted(self, method: AnyMethod) -> bool:
        # health and reflection streams stay open as long as a client likes: not in-flight work
        return not method.path.startswith(("/grpc.health.v1.Health/", "/grpc.reflection."))

    def _call_started(self, method: AnyMethod) -> None:
        if self._counted(method):
            self._in_flight += 1
            self._idle.clear()

    def _call_ended(self, method: AnyMethod) -> None:
        if self._counted(method):
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    # -- lifecycle ---------------------------------------------------------------------

    def _check_config(self) -> None:
        """The backends the environment names exist, before anything binds: a bad name is
        one :class:`ConfigError` naming the service, not a failure in the first call."""
        try:
            selector_mod.check_env()  # the clients its handlers make
            if self._broker is None:
                broker_mod.check_env()
            self.registry  # noqa: B018 - builds the registry from MICRO_REGISTRY
            setting = self._auth_setting
            self.auth = (
                auth_mod.from_env()
                if setting is None
                else setting
                if isinstance(setting, auth_mod.Auth)
                else None
            )
        except ConfigError as exc:
            raise ConfigError(f"{self.name}: {exc}") from None
        except ImportError as exc:  # an optional backend's extra is not installed
            raise ConfigError(f"{self.name}: backend unavailable: {exc}") from None

    def _builtin_middleware(self) -> list[ServerMiddleware]:
        """The service's own server middleware, outermost first and outside the user's:
        telemetry (none when it is off), then auth, when on. The one place where built-in
        middleware is installed (at start, after the settings are read)."""
        builtin: list[ServerMiddleware] = list(self._telemetry)
        if self.auth is not None:
            builtin.append(auth_mod.middleware(self.auth, self.name))
        return builtin

    def _warn_stray_methods(self) -> None:
        """A handler method with a typo (``ecoh``) would leave its rpc answering
        UNIMPLEMENTED without a word: warn once per method, at start."""
        served: dict[int, tuple[object, set[str], list[str]]] = {}
        for spec, handler in self._handlers:
            _, attrs, names = served.setdefault(id(handler), (handler, set(), []))
            attrs.update(m.handler_attr for m in spec.methods)
            names.append(spec.name)
        for handler, attrs, names in served.values():
            for name, close in stray_methods(handler, attrs):
                hint = f"; did you mean {close!r}?" if close else ""
                log.warning(
                    "%s: %s.%s is not an rpc of %s%s (an rpc without its method answers "
                    "UNIMPLEMENTED; a helper that is no handler can start with _)",
                    self.name,
                    type(handler).__qualname__,
                    name,
                    " or ".join(names),
                    hint,
                )

    async def start(self) -> None:
        """Bind, register and subscribe. :class:`StartError` when the address is taken or
        the registry refuses; :class:`ConfigError` for a bad setting."""
        if self._transport is not None:
            raise RuntimeError("the service is already started")
        self._check_config()
        self._dispatcher.set_builtin(self._builtin_middleware())
        self._warn_stray_methods()
        try:
            tls = tls_mod.resolve(self._tls_setting)
            transport = self._wire.server(
                self._dispatcher.routes,
                self._dispatcher.dispatch,
                **wire_settings(tls, self._wire_options),
            )
        except ConfigError as exc:
            raise ConfigError(f"{self.name}: {exc}") from None
        try:
            host, port = await transport.start(*self._bind)
        except OSError as exc:
            where = format_address(*self._bind)
            raise StartError(
                f"{self.name}: cannot listen on {where}: {os.strerror(exc.errno or 0)}"
            ) from exc
        self._transport = transport
        self._draining = False
        self._address = format_address(self._advertise or advertised_host(host), port)
        self._serving_tls = tls is not None
        self.health.set("", ServingStatus.SERVING)
        for spec in self._specs:
            self.health.set(spec.name, ServingStatus.SERVING)
        self._record = self.record
        try:
            await self.registry.register(self._record, ttl=self._ttl)
        except BaseException as exc:
            self._transport = None
            await transport.close()
            if isinstance(exc, RegistryError):
                raise StartError(f"{self.name}: cannot register: {exc}") from exc
            raise
        self._heartbeat = asyncio.create_task(self._beat(self._record))
        log.info("%s (%s) serving on %s", self.name, self.id, self._address)
        try:
            await self._subscribe_all()
            await _run_hooks(self._on_start, self)
        except BaseException:
            await self.stop(grace=0)
            raise

    async def _subscribe_all(self) -> None:
        for event, handler, queue in self._subscribers:
            broker = self.broker
            handle = event.handler(handler)
            if self._telemetry:  # its log records name this service
                handle = telemetry.logs.ServiceHandler(self.name, handle)
            try:
                if isinstance(broker, EmbeddedBroker):  # hand-overs are calls
                    subscription: Subscription = await broker.subscribe(
                        event.topic,
                        handle,
                        queue=queue,
                        durable=event.durable,
                        middleware=self._dispatcher.middleware,
                    )
                else:
                    subscription = await broker.subscribe(
                        event.topic, handle, queue=queue, durable=event.durable
                    )
            except BrokerError as exc:
                raise StartError(f"{self.name}: cannot subscribe to {event.topic}: {exc}") from exc
            self._subscriptions.append(subscription)

    async def _unsubscribe_all(self) -> None:
        subscriptions, self._subscriptions = self._subscriptions, []
        results = await asyncio.gather(
            *(s.unsubscribe() for s in subscriptions), return_exceptions=True
        )
        for result in results:
            if isinstance(result, Exception):
                log.warning("%s: unsubscribe failed: %s", self.name, result)

    async def _beat(self, record: ServiceRecord) -> None:
        while True:
            stop_if_cancelled()  # a cancel a registry call swallowed still stops the beat
            await asyncio.sleep(self._interval)
            try:
                await self.registry.register(record, ttl=self._ttl)
            except Exception as exc:  # the next beat retries: one line, no traceback
                log.warning(
                    "%s: re-registration failed (retrying in %gs): %s",
                    self.name,
                    self._interval,
                    str(exc) or type(exc).__name__,
                )

    async def stop(self, grace: float = 10.0) -> None:
        """Deregister, drain in-flight calls (up to ``grace`` seconds), close. Idempotent."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop(grace))
        await asyncio.shield(self._stopping)

    async def _stop(self, grace: float) -> None:
        transport = self._transport
        if transport is None:
            return
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        if self._record is not None:
            try:
                await self.registry.deregister(self._record)
            except Exception:
                log.warning("%s: deregistration failed", self.name, exc_info=True)
        self._draining = True
        self.health.set_all(ServingStatus.NOT_SERVING)
        await self._unsubscribe_all()  # running event handlers finish first
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=grace)
        except TimeoutError:
            log.warning(
                "%s: %d call(s) still running after %.1fs; cancelling",
                self.name,
                self._in_flight,
                grace,
            )
        self._transport = None
        await transport.close()
        if self._own_broker is not None:
            await self._own_broker.close()
        self._stopping = None
        await _run_hooks(self._on_stop, self)
        log.info("%s (%s) stopped", self.name, self.id)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def serve(self, grace: float = 10.0) -> None:
        """Start, run until SIGINT/SIGTERM (or cancellation), then stop gracefully."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        installed: list[signal.Signals] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
                installed.append(sig)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - non-main thread
                pass
        try:
            await self.start()
            try:
                await stop.wait()
            finally:
                await self.stop(grace)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    def run(self, grace: float = 10.0) -> None:
        """Blocking: ``asyncio.run(self.serve())``. A service that cannot start exits with
        a one-line ``micro: ...`` message on stderr instead of a traceback: exit code 2 for
        a bad setting (:class:`ConfigError`), 1 when it cannot listen or register."""
        try:
            asyncio.run(self.serve(grace))
        except ConfigError as exc:
            print(f"micro: {exc}", file=sys.stderr)
            sys.exit(2)
        except StartError as exc:
            sys.exit(f"micro: {exc}")

    def __repr__(self) -> str:
        return f"Service({self.name!r}, id={self.id!r}, address={self._address!r})"
