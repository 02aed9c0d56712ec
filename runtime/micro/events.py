"""Typed events: a topic bound to a message type, published and subscribed as messages.

Declare the event once, next to your messages, and share it between publishers and
subscribers::

    ORDER_PLACED = micro.Event("shop.order.placed", OrderPlaced)            # at most once
    ORDER_PAID = micro.Event("shop.order.paid", OrderPaid, durable=True)    # JetStream

    @service.subscriber(ORDER_PLACED)
    async def reserve(order: OrderPlaced) -> None: ...

    @service.subscriber(ORDER_PAID)
    async def ship(order: OrderPaid, delivery: micro.Delivery) -> None:
        delivery.message.metadata  # headers sent with the event
        await delivery.nack(delay=5)  # optional: settle explicitly

    await service.publish(ORDER_PLACED, OrderPlaced(id="42"), metadata={"tenant": "t1"})
    await ORDER_PLACED.publish(OrderPlaced(id="43"))  # outside a service: default broker

The payload is encoded as ``application/protobuf`` (or ``application/json`` with
``content_type=micro.broker.JSON``); subscribers decode by the content type the message
carries. A payload that cannot be decoded is logged and dropped (acked: redelivering it
would fail the same way). A subscriber that raises is logged and the message nacked —
redelivered on a durable backend — and the service keeps running.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar

from micro import broker as broker_mod
from micro import codec
from micro.broker import JSON, PROTOBUF, Broker, BrokerError, Delivery, Handler, Message
from micro.broker import check_topic as _check_topic
from micro.codec import DecodeError

__all__ = ["Event", "EventHandler", "decode", "encode"]

log = logging.getLogger("micro.events")

M = TypeVar("M")

#: A subscriber: ``async def f(message)`` or ``async def f(message, delivery)``.
EventHandler: TypeAlias = Callable[[M], Awaitable[None]] | Callable[[M, Delivery], Awaitable[None]]

_PROTOBUF_TYPES = {PROTOBUF, "application/x-protobuf", "application/octet-stream", ""}


def encode(message: Any, message_type: type, content_type: str = PROTOBUF) -> bytes:
    if content_type in _PROTOBUF_TYPES:
        return codec.encode(message, message_type)
    if content_type == JSON:
        return codec.encode_json(message, message_type).encode()
    raise BrokerError(f"unsupported content type {content_type!r} (use {PROTOBUF} or {JSON})")


def decode(data: bytes, message_type: type[M], content_type: str) -> M:
    if content_type in _PROTOBUF_TYPES:
        return codec.decode(data, message_type)
    if content_type == JSON:
        return codec.decode_json(data, message_type)
    raise DecodeError(message_type, ValueError(f"unsupported content type {content_type!r}"))


@dataclass(frozen=True)
class Event(Generic[M]):
    """A topic carrying messages of one type. ``durable``: published and consumed through
    the broker's durable path (JetStream: at least once); the embedded broker stays at
    most once and says so in a warning."""

    topic: str
    message_type: type[M]
    durable: bool = False

    def __post_init__(self) -> None:
        _check_topic(self.topic)

    def message(
        self,
        message: M,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str = PROTOBUF,
    ) -> Message:
        return Message(
            topic=self.topic,
            data=encode(message, self.message_type, content_type),
            content_type=content_type,
            metadata=metadata or {},
        )

    async def publish(
        self,
        message: M,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str = PROTOBUF,
        broker: Broker | None = None,
    ) -> None:
        """Publish through ``broker`` (default: the process-wide one, ``MICRO_BROKER``)."""
        target = broker if broker is not None else broker_mod.default()
        built = self.message(message, metadata=metadata, content_type=content_type)
        await target.publish(built, durable=self.durable)  # its span: micro.broker.run_publish

    def handler(self, func: EventHandler[M]) -> Handler:
        """The broker-level handler that decodes and calls ``func``."""
        wants_delivery = _positional_count(func) >= 2
        name = getattr(func, "__qualname__", repr(func))

        async def handle(delivery: Delivery) -> None:
            try:
                message = decode(
                    delivery.message.data, self.message_type, delivery.message.content_type
                )
            except DecodeError as exc:
                log.error("%s: dropping a message on %r: %s", name, self.topic, exc)
                await delivery.ack()
                return
            if wants_delivery:
                await func(message, delivery)  # type: ignore[call-arg]
            else:
                await func(message)  # type: ignore[call-arg]

        return handle


def _positional_count(func: Callable[..., Any]) -> int:
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return 1
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
        return 2
    return sum(1 for p in params if p.kind in kinds)
