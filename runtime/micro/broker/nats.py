"""The NATS broker (``MICRO_BROKER=nats``): core pub/sub, queue groups, JetStream.

* Topics are NATS subjects; content type and metadata travel as message headers
  (``Content-Type`` and one header per metadata key).
* ``subscribe(topic, handler, queue=...)``: a core NATS subscription; subscriptions
  sharing a queue name form a NATS queue group (each message goes to one member).
  At most once: a handler that raises is logged, the message is not redelivered.
* ``durable=True`` uses JetStream. ``publish(..., durable=True)`` stores the message in
  the topic's stream (created on first use, file storage, kept ``stream_max_age``
  seconds) and returns only once the server acknowledged it; a durable subscription is a
  durable pull consumer named after its queue (replicas with the same queue share it).
  At least once: a message is redelivered after a nack (``nack_delay`` seconds after a
  handler raised), or after ``ack_wait`` seconds if the subscriber died holding it. A
  new durable consumer starts at the beginning of the stream.
* The connection reconnects forever (publishers and subscribers resume when the server
  comes back); a durable publish during the outage raises :class:`BrokerError`, so what
  the publisher saw acknowledged is what JetStream stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
from typing import TYPE_CHECKING, Any

from micro._nats import LoopConnection, NatsOptions, NatsUnavailable
from micro._tasks import stop_if_cancelled
from micro.broker._types import (
    BrokerError,
    Delivery,
    Handler,
    Message,
    check_topic,
    run_handler,
    run_publish,
)

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient
    from nats.aio.msg import Msg

__all__ = ["NatsBroker", "NatsOptions", "consumer_name", "stream_name"]

log = logging.getLogger("micro.broker")

CONTENT_TYPE = "Content-Type"
WHERE = "nats broker"


def _name(prefix: str, text: str) -> str:
    """A JetStream-safe name for ``text``: readable, plus a hash against collisions."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", text)[:48]
    return f"{prefix}{safe}_{hashlib.sha256(text.encode()).hexdigest()[:10]}"


def stream_name(topic: str) -> str:
    return _name("micro_", topic)


def consumer_name(queue: str) -> str:
    return _name("", queue)


def _headers(message: Message) -> dict[str, str]:
    headers = dict(message.metadata)
    headers[CONTENT_TYPE] = message.content_type
    return headers


def _message(msg: Msg) -> Message:
    headers = dict(msg.headers or {})
    content_type = headers.pop(CONTENT_TYPE, "")
    metadata = {k: v for k, v in headers.items() if not k.startswith("Nats-")}
    return Message(topic=msg.subject, data=msg.data, content_type=content_type, metadata=metadata)


class _JetStreamDelivery(Delivery):
    def __init__(self, msg: Msg, nack_delay: float) -> None:
        super().__init__(_message(msg), redelivered=msg.metadata.num_delivered > 1)
        self._msg = msg
        self._nack_delay = nack_delay

    async def _ack(self) -> None:
        await self._msg.ack()

    async def _nack(self, delay: float | None) -> None:
        await self._msg.nak(delay=self._nack_delay if delay is None else delay)


class _CoreSubscription:
    def __init__(self, topic: str, queue: str | None, sub: Any) -> None:
        self._topic, self._queue, self._sub = topic, queue, sub
        self._done = False

    @property
    def topic(self) -> str:
        return self._topic

    @property
    def queue(self) -> str | None:
        return self._queue

    async def unsubscribe(self) -> None:
        if not self._done:
            self._done = True
            with contextlib.suppress(Exception):
                await self._sub.drain()  # finish what was received, then stop


class _DurableSubscription:
    def __init__(self, topic: str, queue: str, psub: Any, handler: Handler, nack: float) -> None:
        self._topic, self._queue, self._psub = topic, queue, psub
        self._handler, self._nack = handler, nack
        self._active = True
        self._task = asyncio.create_task(self._pull())

    @property
    def topic(self) -> str:
        return self._topic

    @property
    def queue(self) -> str | None:
        return self._queue

    async def _pull(self) -> None:
        while self._active:
            stop_if_cancelled()
            try:
                batch = await self._psub.fetch(batch=16, timeout=1.0)
            except asyncio.CancelledError:
                raise
            except TimeoutError:
                continue
            except Exception as exc:  # disconnected: the client reconnects by itself
                log.debug("%s: fetch on %r: %s", WHERE, self._topic, exc)
                await asyncio.sleep(0.25)
                continue
            for msg in batch:
                await run_handler(self._handler, _JetStreamDelivery(msg, self._nack), WHERE)

    async def unsubscribe(self) -> None:
        if not self._active:
            return
        self._active = False  # the batch being handled finishes; unacked ones come back
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(asyncio.shield(self._task), timeout=60)
        self._task.cancel()
        with contextlib.suppress(Exception):
            await self._psub.unsubscribe()


class NatsBroker:
    """:class:`~micro.broker.Broker` on NATS. ``address``: NATS URL(s), comma separated
    (default ``nats://127.0.0.1:4222``, or ``MICRO_BROKER_ADDRESS``); ``options``: TLS
    and credentials (default: :meth:`NatsOptions.from_env`, the ``MICRO_NATS_*``
    variables)."""

    def __init__(
        self,
        address: str | None = None,
        *,
        stream_max_age: float = 7 * 24 * 3600.0,
        ack_wait: float = 30.0,
        nack_delay: float = 1.0,
        publish_timeout: float = 5.0,
        connect_timeout: float = 3.0,
        options: NatsOptions | None = None,
    ) -> None:
        self._conn = LoopConnection(
            address, name="micro.broker", connect_timeout=connect_timeout, options=options
        )
        self.stream_max_age = stream_max_age
        self.ack_wait = ack_wait
        self.nack_delay = nack_delay
        self.publish_timeout = publish_timeout
        self._streams: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subs: list[_CoreSubscription | _DurableSubscription] = []

    @property
    def address(self) -> str:
        """The URL(s), with any password or token shown as ``***``."""
        return self._conn.shown

    async def _nc(self) -> NatsClient:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._streams, self._subs = loop, set(), []
        try:
            return await self._conn.get()
        except NatsUnavailable as exc:
            raise BrokerError(str(exc)) from None

    async def _ensure_stream(self, nc: NatsClient, topic: str) -> str:
        name = stream_name(topic)
        if name in self._streams:
            return name
        from nats.js.api import RetentionPolicy, StorageType, StreamConfig

        js = nc.jetstream(timeout=self.publish_timeout)
        config = StreamConfig(
            name=name,
            subjects=[topic],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=self.stream_max_age,
        )
        try:
            await js.add_stream(config)
        except Exception as exc:
            try:
                await js.stream_info(name)  # it exists (perhaps with other limits): use it
            except Exception:
                raise BrokerError(
                    f"NATS at {self.address}: cannot create the JetStream stream for "
                    f"{topic!r} (is JetStream enabled? nats-server -js): {exc}"
                ) from None
        self._streams.add(name)
        return name

    async def publish(self, message: Message, *, durable: bool = False) -> None:
        check_topic(message.topic)
        await run_publish(message, "nats", lambda built: self._publish(built, durable))

    async def _publish(self, message: Message, durable: bool) -> None:
        nc = await self._nc()
        headers = _headers(message)
        try:
            if not durable:
                await nc.publish(message.topic, message.data, headers=headers)
                return
            stream = await self._ensure_stream(nc, message.topic)
            js = nc.jetstream(timeout=self.publish_timeout)
            await js.publish(message.topic, message.data, stream=stream, headers=headers)
        except BrokerError:
            raise
        except Exception as exc:
            what = type(exc).__name__ if not str(exc) else str(exc)
            raise BrokerError(f"publish to {message.topic!r} failed: {what}") from None

    async def subscribe(
        self,
        topic: str,
        handler: Handler,
        *,
        queue: str | None = None,
        durable: bool = False,
    ) -> _CoreSubscription | _DurableSubscription:
        check_topic(topic)
        nc = await self._nc()
        sub: _CoreSubscription | _DurableSubscription
        if durable:
            if not queue:
                raise BrokerError(f"a durable subscription to {topic!r} needs a queue name")
            sub = await self._durable(nc, topic, handler, queue)
        else:

            async def callback(msg: Msg) -> None:
                await run_handler(handler, Delivery(_message(msg)), WHERE)

            core = await nc.subscribe(topic, queue=queue or "", cb=callback)
            await nc.flush()  # the server knows the subscription when this returns
            sub = _CoreSubscription(topic, queue or None, core)
        self._subs.append(sub)
        return sub

    async def _durable(
        self, nc: NatsClient, topic: str, handler: Handler, queue: str
    ) -> _DurableSubscription:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        stream = await self._ensure_stream(nc, topic)
        js = nc.jetstream(timeout=self.publish_timeout)
        config = ConsumerConfig(
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.ack_wait,
        )
        try:
            psub = await js.pull_subscribe(
                topic, durable=consumer_name(queue), stream=stream, config=config
            )
        except Exception as exc:
            raise BrokerError(f"cannot subscribe to {topic!r} on JetStream: {exc}") from None
        return _DurableSubscription(topic, queue, psub, handler, self.nack_delay)

    async def close(self) -> None:
        subs, self._subs = self._subs, []
        for sub in subs:
            await sub.unsubscribe()
        self._streams = set()
        await self._conn.close()

    def __repr__(self) -> str:
        return f"NatsBroker({self.address!r})"
