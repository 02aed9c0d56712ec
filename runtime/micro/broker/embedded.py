"""The embedded broker: pub/sub with no server, in one process or across processes.

Design (after go-micro's HTTP broker): each subscription is registered in the registry
as a node of the service ``micro.broker:<topic>`` (address: this process's broker
endpoint, metadata: its queue group), kept alive by the same lease/heartbeat as
services. ``publish`` looks the topic up (through a :class:`micro.Client`, so lookups
are cached and watch-refreshed), then hands the message to every subscription without a
queue group and to one random member of each queue group, over the internal gRPC method
``/micro.broker.v1.Broker/Deliver``. Subscriptions in the publishing process itself are
fed directly. Whatever registry the services use (``memory``, ``local``, ``nats``) works.

The broker listens on its own 127.0.0.1 port (opened with the first subscription), not
on a service's port: a process that only subscribes (a worker, a script, a test) works
too, several services in one process share it, and its lifetime is not tied to any
one service's drain/stop.

Guarantee: **at most once**. A delivery is queued in the subscriber process and the
publisher's ``publish`` returns; nothing is stored or retried afterwards. A message
published while no subscriber is up is dropped; a handler that raises is logged and the
message is not redelivered (``ack``/``nack`` are no-ops); messages queued in a process
that dies are lost. A queue-group member that refuses the hand-over (gone, shutting
down) is skipped for another member. Topics are exact names (no wildcards).

A hand-over from another process is a call like any other: a subscription made by a
:class:`micro.Service` runs that service's middleware, its auth included, on every
hand-over addressed to it (``subscribe(..., middleware=...)``), so with auth on, a
forged envelope without a valid token never reaches the subscriber. The publishing
side's broker client sends ``token`` (default ``MICRO_TOKEN``), as any client does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Sequence
from typing import Any

from micro import errors
from micro import registry as registry_mod
from micro import tls as tls_mod
from micro import transport as transport_mod
from micro._builtin.micro.broker.v1 import Delivered, Envelope
from micro._builtin.micro.broker.v1.broker_micro import BROKER_DELIVER, BROKER_SPEC
from micro._chain import chain
from micro.address import format_address
from micro.broker._types import (
    Delivery,
    Handler,
    Message,
    check_topic,
    run_handler,
    run_publish,
)
from micro.client import Client
from micro.context import Context
from micro.errors import Error
from micro.registry import DEFAULT_TTL, Node, Registry, ServiceRecord
from micro.server import Dispatcher, HandlerCall, HandlerNext, ServerMiddleware
from micro.status import Status
from micro.transport import ServerTransport, Transport

__all__ = ["BROKER_SPEC", "DELIVER", "Delivered", "EmbeddedBroker", "Envelope", "topic_service"]

log = logging.getLogger("micro.broker")

QUEUE_SIZE = 1024


# The hand-over's messages and spec, generated from runtime/protos/micro/broker/v1/.
DELIVER = BROKER_DELIVER


def topic_service(topic: str) -> str:
    """The registry name under which ``topic``'s subscriptions are registered."""
    return f"micro.broker:{topic}"


class _Subscription:
    def __init__(
        self,
        broker: EmbeddedBroker,
        topic: str,
        handler: Handler,
        queue: str | None,
        middleware: Sequence[ServerMiddleware] = (),
    ) -> None:
        self.id = f"sub-{uuid.uuid4()}"
        self.middleware = tuple(middleware)
        self._broker = broker
        self._topic = topic
        self._queue = queue
        self.handler = handler
        self.inbox: asyncio.Queue[Message | None] = asyncio.Queue(QUEUE_SIZE)
        self.worker: asyncio.Task[None] | None = None
        self.active = True

    @property
    def topic(self) -> str:
        return self._topic

    @property
    def queue(self) -> str | None:
        return self._queue

    def record(self, address: str) -> ServiceRecord:
        metadata = {"topic": self._topic, "queue": self._queue or ""}
        if self._broker._tls is not None:
            metadata[tls_mod.NODE_METADATA_KEY] = "true"
        return ServiceRecord(
            name=topic_service(self._topic),
            nodes=(Node(id=self.id, address=address, metadata=metadata),),
        )

    async def run(self) -> None:
        while (message := await self.inbox.get()) is not None:
            await run_handler(self.handler, Delivery(message), "embedded broker")

    async def unsubscribe(self) -> None:
        await self._broker._unsubscribe(self)


class _Receiver:
    def __init__(self, broker: EmbeddedBroker) -> None:
        self._broker = broker

    async def deliver(self, envelope: Envelope, context: Context) -> Delivered:
        message = Message(
            topic=envelope.topic,
            data=envelope.data,
            content_type=envelope.content_type,
            metadata=envelope.metadata,
        )
        if not await self._broker._enqueue(envelope.subscription, message):
            raise errors.unavailable("micro.broker", "no such subscription here")
        return Delivered()


class EmbeddedBroker:
    """:class:`~micro.broker.Broker` with no server (``MICRO_BROKER=embedded``, default).

    ``registry``: where subscriptions are registered (default: the process-wide one);
    ``host``: the interface the broker endpoint binds (default ``127.0.0.1``; bind a
    reachable one only if the registry spans machines); ``timeout``: per hand-over;
    ``transport``: the gRPC implementation of the hand-over, both ways (default:
    ``MICRO_TRANSPORT``); ``tls``: TLS settings of the hand-over, both ways (default: the
    ``MICRO_TLS_*`` variables, ``False``: plaintext); ``token``: the bearer token
    hand-overs carry (default: ``MICRO_TOKEN``, as for any :class:`micro.Client`)."""

    def __init__(
        self,
        registry: Registry | None = None,
        *,
        host: str = "127.0.0.1",
        ttl: float = DEFAULT_TTL,
        timeout: float = 10.0,
        transport: Transport | None = None,
        tls: tls_mod.TLSSetting = None,
        token: str | None = None,
    ) -> None:
        self._registry = registry
        self._tls = tls_mod.resolve(tls)
        self._token = token
        self._transport = transport if transport is not None else transport_mod.from_env()
        self._host = host
        self._ttl = ttl
        self._timeout = timeout
        self._subs: dict[str, _Subscription] = {}
        self._server: ServerTransport | None = None
        self._address: str | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._client: Client | None = None
        self._warned_durable = False
        self._lock: asyncio.Lock | None = None

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = registry_mod.default()
        return self._registry

    def _client_for(self) -> Client:
        if self._client is None:
            self._client = Client(
                registry=self.registry,
                retries=0,
                transport=self._transport,
                tls=self._tls if self._tls is not None else False,
                token=self._token,
            )
        return self._client

    # -- receiving ---------------------------------------------------------------------

    async def _listen(self) -> str:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._address is None:
                dispatcher = Dispatcher(name="micro.broker", middleware=[self._guard])
                dispatcher.add(BROKER_SPEC, _Receiver(self))
                routes, dispatch = dispatcher.routes, dispatcher.dispatch
                server = (
                    self._transport.server(routes, dispatch)
                    if self._tls is None
                    else self._transport.server(routes, dispatch, tls=self._tls)
                )
                host, port = await server.start(self._host, 0)
                self._server, self._address = server, format_address(host, port)
                self._heartbeat = asyncio.create_task(self._beat())
            return self._address

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self._ttl / 3)
            for sub in list(self._subs.values()):
                try:
                    await self.registry.register(sub.record(self._address or ""), ttl=self._ttl)
                except Exception as exc:  # the next beat retries: one line, no traceback
                    log.warning(
                        "embedded broker: re-registration failed: %s",
                        str(exc) or type(exc).__name__,
                    )

    async def _guard(self, call: HandlerCall, next: HandlerNext) -> Any:
        """A hand-over runs the middleware of the subscription it is addressed to."""
        sub = self._subs.get(getattr(call.request, "subscription", ""))
        if sub is None or not sub.middleware:
            return await next(call)
        return await chain(sub.middleware, next)(call)

    async def _enqueue(self, subscription: str, message: Message) -> bool:
        sub = self._subs.get(subscription)
        if sub is None or not sub.active:
            return False
        await sub.inbox.put(message)
        return True

    async def subscribe(
        self,
        topic: str,
        handler: Handler,
        *,
        queue: str | None = None,
        durable: bool = False,
        middleware: Sequence[ServerMiddleware] = (),
    ) -> _Subscription:
        """Subscribe ``handler``; ``middleware`` (a service's) runs on every hand-over
        from another process addressed to this subscription."""
        check_topic(topic)
        if durable:
            self._warn_durable()
        address = await self._listen()
        sub = _Subscription(self, topic, handler, queue or None, middleware)
        sub.worker = asyncio.create_task(sub.run())
        self._subs[sub.id] = sub
        await self.registry.register(sub.record(address), ttl=self._ttl)
        return sub

    async def _unsubscribe(self, sub: _Subscription) -> None:
        if not sub.active:
            return
        sub.active = False
        try:
            await self.registry.deregister(sub.record(self._address or ""))
        except Exception:
            log.warning("embedded broker: deregistration failed", exc_info=True)
        await sub.inbox.put(None)  # the worker finishes what is queued, then stops
        if sub.worker is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await sub.worker
        self._subs.pop(sub.id, None)

    # -- publishing --------------------------------------------------------------------

    def _warn_durable(self) -> None:
        if not self._warned_durable:
            self._warned_durable = True
            log.warning(
                "the embedded broker delivers at most once; durable delivery needs "
                "MICRO_BROKER=nats (continuing at most once)"
            )

    async def publish(self, message: Message, *, durable: bool = False) -> None:
        await self.deliver(message, durable=durable)

    async def deliver(self, message: Message, *, durable: bool = False) -> int:
        """:meth:`publish`, returning how many subscriptions (a queue group counts once)
        took the message: this broker knows, so 0 means it was dropped. A subscriber's
        service refusing the token (UNAUTHENTICATED / PERMISSION_DENIED) raises that
        error, once every other subscriber had its hand-over."""
        check_topic(message.topic)
        if durable:
            self._warn_durable()
        return await run_publish(message, "micro.embedded", self._deliver)

    async def _deliver(self, message: Message) -> int:
        client = self._client_for()
        try:
            nodes: list[Node] = await client.lookup(topic_service(message.topic))
        except Error as exc:
            if exc.grpc_status is Status.UNAVAILABLE:
                log.debug("embedded broker: no subscribers for %r", message.topic)
                return 0
            raise
        tls = self._tls is not None
        if any(tls_mod.speaks_tls(n.metadata) is not tls for n in nodes):
            log.warning(
                "embedded broker: skipping the %s subscribers of %r (this broker is %s)",
                "plaintext" if tls else "TLS",
                message.topic,
                "TLS and never downgrades" if tls else f"plaintext: set {tls_mod.ENV['ca']}",
            )
            nodes = [n for n in nodes if tls_mod.speaks_tls(n.metadata) is tls]
        groups: dict[str, list[Node]] = {}
        targets: list[list[Node]] = []
        for node in nodes:
            queue = node.metadata.get("queue", "")
            if queue:
                groups.setdefault(queue, []).append(node)
            else:
                targets.append([node])
        for members in groups.values():
            targets.append(random.sample(members, len(members)))
        taken = await asyncio.gather(
            *(self._hand_over(message, members) for members in targets), return_exceptions=True
        )
        for result in taken:  # a refused token is the publisher's to know, not a drop
            if isinstance(result, BaseException):
                raise result
        return sum(1 for result in taken if result is True)

    async def _hand_over(self, message: Message, members: list[Node]) -> bool:
        """Give ``message`` to the first of ``members`` that takes it."""
        for node in members:
            if node.address == self._address and await self._enqueue(node.id, message):
                return True
            envelope = Envelope(
                topic=message.topic,
                data=message.data,
                content_type=message.content_type,
                metadata=dict(message.metadata),
                subscription=node.id,
            )
            try:
                await self._client_for().unary(
                    DELIVER, envelope, address=node.address, timeout=self._timeout
                )
                return True
            except Error as exc:
                if exc.grpc_status in (Status.UNAUTHENTICATED, Status.PERMISSION_DENIED):
                    raise
                if exc.grpc_status is not Status.UNAVAILABLE:
                    log.warning("embedded broker: delivery to %s failed: %s", node.address, exc)
                    return False
        log.debug("embedded broker: no subscriber of %r took the message", message.topic)
        return False

    async def close(self) -> None:
        for sub in list(self._subs.values()):
            await self._unsubscribe(sub)
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        server, self._server, self._address = self._server, None, None
        if server is not None:
            await server.close()
        client, self._client = self._client, None
        if client is not None:
            await client.close()
        self._lock = None

    def __repr__(self) -> str:
        return f"EmbeddedBroker(address={self._address!r}, subscriptions={len(self._subs)})"
