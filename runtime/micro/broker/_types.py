"""The broker's types: :class:`Broker`, :class:`Message`, :class:`Delivery`, ...

Backends import these from here; :mod:`micro.broker` re-exports them with the backend
table.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, runtime_checkable

from micro.registry import FrozenMap
from micro.telemetry import logs, metrics, tracing

__all__ = [
    "JSON",
    "PROTOBUF",
    "Broker",
    "BrokerError",
    "Delivery",
    "Handler",
    "Message",
    "Subscription",
    "check_topic",
    "run_handler",
    "run_publish",
]

log = logging.getLogger("micro.broker")

PROTOBUF = "application/protobuf"
JSON = "application/json"

_TOPIC = re.compile(r"[^\s.*>]+(\.[^\s.*>]+)*")


class BrokerError(Exception):
    """The broker cannot do what was asked (unreachable server, bad topic, ...)."""


def check_topic(topic: str) -> str:
    """A topic is dot-separated tokens without whitespace or the wildcards ``*`` ``>``."""
    if not isinstance(topic, str) or not _TOPIC.fullmatch(topic):
        raise BrokerError(
            f"invalid topic {topic!r}: use dot-separated words without spaces or wildcards"
        )
    return topic


@dataclass(frozen=True)
class Message:
    """What travels on a topic: payload bytes, how they are encoded, and metadata."""

    topic: str
    data: bytes
    content_type: str = PROTOBUF
    metadata: Mapping[str, str] = field(default_factory=FrozenMap)

    def __post_init__(self) -> None:
        object.__setattr__(self, "metadata", FrozenMap.of(self.metadata))


class Delivery:
    """One message handed to one subscription handler.

    ``ack()`` / ``nack()`` settle it; only the first call counts. On an at-most-once
    backend both are no-ops. ``redelivered`` is true when a durable backend delivers the
    message again (after a nack, a crash or an ack timeout)."""

    def __init__(self, message: Message, *, redelivered: bool = False) -> None:
        self.message = message
        self.redelivered = redelivered
        self.settled = False

    async def ack(self) -> None:
        if not self.settled:
            self.settled = True
            await self._ack()

    async def nack(self, delay: float | None = None) -> None:
        """Ask for redelivery (after ``delay`` seconds, or the backend's default)."""
        if not self.settled:
            self.settled = True
            await self._nack(delay)

    async def _ack(self) -> None:
        return None

    async def _nack(self, delay: float | None) -> None:
        return None


#: A subscription handler.
Handler = Callable[[Delivery], Awaitable[None]]

R = TypeVar("R")


async def run_publish(message: Message, system: str, send: Callable[[Message], Awaitable[R]]) -> R:
    """Publish ``message`` with ``send`` (the backend's own sending), returning what it
    returns. Every backend's ``publish`` goes through here, so a message published any
    way (:meth:`micro.Event.publish`, :meth:`micro.Service.publish`, or ``Broker.publish``
    itself) gets one producer span, ``publish <topic>`` with ``messaging.system`` =
    ``system``, whose context travels in the message's metadata, and is counted as
    published; with telemetry off, ``send(message)`` and nothing else."""
    if not tracing.enabled() and metrics.active is None:
        return await send(message)
    carried = dict(message.metadata)
    async with tracing.publishing(message.topic, system, carried):
        result = await send(
            Message(message.topic, message.data, message.content_type, carried)
            if carried != message.metadata
            else message
        )
    if metrics.active is not None:
        metrics.active.published.child(message.topic).inc()
    return result


async def run_handler(handler: Handler, delivery: Delivery, where: str) -> bool:
    """Run ``handler``; ack if it returned unsettled, log and nack if it raised.

    Returns whether the handler succeeded. Used by every backend; with telemetry on, the
    handler runs in a consumer span (the publisher's child) and is counted, and what is
    logged meanwhile names the subscribing service (of a
    :class:`micro.telemetry.logs.ServiceHandler`)."""
    if tracing.enabled() or metrics.active is not None or logs.enabled():
        return await _run_observed(handler, delivery, where)
    return await _run(handler, delivery, where, None)


async def _run(
    handler: Handler,
    delivery: Delivery,
    where: str,
    failed: Callable[[BaseException | None], None] | None,
) -> bool:
    try:
        await handler(delivery)
    except Exception as exc:
        if failed is not None:
            failed(exc)
        log.exception("%s: subscriber for %r failed", where, delivery.message.topic)
        try:
            await delivery.nack()
        except Exception:
            log.warning("%s: nack failed", where, exc_info=True)
        return False
    try:
        await delivery.ack()
    except Exception:
        log.warning("%s: ack failed", where, exc_info=True)
    return True


async def _run_observed(handler: Handler, delivery: Delivery, where: str) -> bool:
    if isinstance(handler, logs.ServiceHandler):
        with logs.serving(handler.service):
            return await _run_traced(handler, delivery, where)
    return await _run_traced(handler, delivery, where)


async def _run_traced(handler: Handler, delivery: Delivery, where: str) -> bool:
    message = delivery.message
    system = "nats" if where.startswith("nats") else "micro.embedded"
    async with tracing.processing(
        message.topic, system, message.metadata, delivery.redelivered
    ) as failed:
        ok = await _run(handler, delivery, where, failed)
    if metrics.active is not None:
        (metrics.active.delivered if ok else metrics.active.failed).child(message.topic).inc()
    return ok


@runtime_checkable
class Subscription(Protocol):
    @property
    def topic(self) -> str: ...

    @property
    def queue(self) -> str | None: ...

    async def unsubscribe(self) -> None:
        """Stop receiving; handlers already running finish first. Idempotent."""
        ...


@runtime_checkable
class Broker(Protocol):
    """A broker backend. Its ``publish`` sends through :func:`run_publish`, and its
    subscriptions run handlers through :func:`run_handler`: that is where events get
    their spans and counts."""

    async def publish(self, message: Message, *, durable: bool = False) -> None:
        """Send ``message`` to its topic. ``durable``: return only once the backend has
        stored it (durable backends); others deliver at most once and ignore it."""
        ...

    async def subscribe(
        self,
        topic: str,
        handler: Handler,
        *,
        queue: str | None = None,
        durable: bool = False,
    ) -> Subscription:
        """Call ``handler`` for each message on ``topic``. Subscriptions sharing a
        ``queue`` name split the messages (each goes to one of them); without a queue
        every subscription gets every message. ``durable`` (needs a queue): messages are
        kept until a member of the queue acks them."""
        ...

    async def close(self) -> None:
        """Unsubscribe everything and disconnect. The broker reconnects if used again."""
        ...
