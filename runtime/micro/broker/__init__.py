"""Pub/sub: the :class:`Broker` protocol, its message types and its backends.

A broker moves :class:`Message` s (topic, bytes, content type, metadata) from
publishers to subscription handlers. Handlers get a :class:`Delivery` and may settle it
with :meth:`Delivery.ack` / :meth:`Delivery.nack`; a handler that returns without
settling is acked, one that raises is logged and nacked (redelivered where the backend
is durable). Backends:

* ``embedded`` (:class:`~micro.broker.embedded.EmbeddedBroker`, the default): no server;
  subscriptions are registered in the registry and messages delivered over gRPC.
  At most once.
* ``nats`` (:class:`~micro.broker.nats.NatsBroker`, ``pip install 'micro-runtime[nats]'``):
  core NATS pub/sub with queue groups; ``durable=True`` uses JetStream (at least once).

:func:`from_env` picks one from ``MICRO_BROKER`` (``MICRO_BROKER_ADDRESS`` for NATS);
new backends plug in with :func:`register_backend`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from micro.registry import FrozenMap

__all__ = [
    "DEFAULT_BACKEND",
    "JSON",
    "PROTOBUF",
    "Broker",
    "BrokerError",
    "BrokerFactory",
    "Delivery",
    "Handler",
    "Message",
    "Subscription",
    "backends",
    "check_topic",
    "from_env",
    "register_backend",
    "run_handler",
]

log = logging.getLogger("micro.broker")

PROTOBUF = "application/protobuf"
JSON = "application/json"
DEFAULT_BACKEND = "embedded"

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


async def run_handler(handler: Handler, delivery: Delivery, where: str) -> bool:
    """Run ``handler``; ack if it returned unsettled, log and nack if it raised.

    Returns whether the handler succeeded. Used by every backend."""
    try:
        await handler(delivery)
    except Exception:
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


#: Builds a broker from the environment mapping given to :func:`from_env`.
BrokerFactory = Callable[[Mapping[str, str]], Broker]


def _embedded(environ: Mapping[str, str]) -> Broker:
    from micro.broker.embedded import EmbeddedBroker

    return EmbeddedBroker()


def _seconds(environ: Mapping[str, str], key: str, default: float) -> float:
    raw = environ.get(key, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"{key}={raw!r} is not a positive number of seconds")
    return value


def _nats(environ: Mapping[str, str]) -> Broker:
    from micro.broker.nats import NatsBroker

    return NatsBroker(
        environ.get("MICRO_BROKER_ADDRESS") or None,
        # durable (JetStream) delivery: how long an unacknowledged message waits before
        # it is delivered again, and how long after a nack
        ack_wait=_seconds(environ, "MICRO_BROKER_ACK_WAIT", 30.0),
        nack_delay=_seconds(environ, "MICRO_BROKER_NACK_DELAY", 1.0),
    )


_BACKENDS: dict[str, BrokerFactory] = {"embedded": _embedded, "nats": _nats}


def register_backend(name: str, factory: BrokerFactory) -> None:
    """Make ``MICRO_BROKER=<name>`` build a broker with ``factory(environ)``."""
    key = name.strip().lower()
    if not key:
        raise ValueError("broker backend name must be non-empty")
    _BACKENDS[key] = factory


def backends() -> list[str]:
    """Names accepted in ``MICRO_BROKER``."""
    return sorted(_BACKENDS)


def from_env(environ: Mapping[str, str] = os.environ) -> Broker:
    """Build the broker named by ``MICRO_BROKER`` (default ``embedded``)."""
    raw = environ.get("MICRO_BROKER", "")
    name = raw.strip().lower() or DEFAULT_BACKEND
    factory = _BACKENDS.get(name)
    if factory is None:
        raise ValueError(
            f"unknown MICRO_BROKER={raw!r}; valid values: {', '.join(backends())} "
            f"(default: {DEFAULT_BACKEND})"
        )
    return factory(environ)
