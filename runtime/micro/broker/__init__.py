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

import os
import threading
from collections.abc import Callable, Mapping

from micro._backends import Backends
from micro._per_loop import PerLoop
from micro.broker._types import (
    JSON,
    PROTOBUF,
    Broker,
    BrokerError,
    Delivery,
    Handler,
    Message,
    Subscription,
    check_topic,
    run_handler,
    run_publish,
)
from micro.broker.embedded import EmbeddedBroker
from micro.tls import TLS

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
    "check_env",
    "check_topic",
    "default",
    "from_env",
    "register_backend",
    "run_handler",
    "run_publish",
    "set_default",
]

DEFAULT_BACKEND = "embedded"

#: Builds a broker from the environment mapping given to :func:`from_env`.
BrokerFactory = Callable[[Mapping[str, str]], Broker]


def _embedded(environ: Mapping[str, str]) -> Broker:
    from micro.auth import client_token

    # MICRO_TLS_* and MICRO_TOKEN(_FILE), as for any service and client
    return EmbeddedBroker(tls=TLS.from_env(environ) or False, token=client_token(environ) or "")


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
    from micro._nats import NatsOptions
    from micro.broker.nats import NatsBroker

    return NatsBroker(
        environ.get("MICRO_BROKER_ADDRESS") or None,
        options=NatsOptions.from_env(environ),
        # durable (JetStream) delivery: how long an unacknowledged message waits before
        # it is delivered again, and how long after a nack
        ack_wait=_seconds(environ, "MICRO_BROKER_ACK_WAIT", 30.0),
        nack_delay=_seconds(environ, "MICRO_BROKER_NACK_DELAY", 1.0),
    )


_BACKENDS: Backends[Broker] = Backends(
    "MICRO_BROKER", DEFAULT_BACKEND, {"embedded": _embedded, "nats": _nats}
)


def register_backend(name: str, factory: BrokerFactory) -> None:
    """Make ``MICRO_BROKER=<name>`` build a broker with ``factory(environ)``."""
    _BACKENDS.register(name, factory)


def backends() -> list[str]:
    """Names accepted in ``MICRO_BROKER``."""
    return _BACKENDS.names()


def check_env(environ: Mapping[str, str] = os.environ) -> None:
    """Raise :class:`micro.ConfigError` if ``MICRO_BROKER`` names no broker."""
    _BACKENDS.check(environ)


def from_env(environ: Mapping[str, str] = os.environ) -> Broker:
    """Build the broker named by ``MICRO_BROKER`` (default ``embedded``)."""
    return _BACKENDS.from_env(environ)


_lock = threading.Lock()
_per_loop: PerLoop[Broker] = PerLoop(from_env, lambda broker: broker.close())
_override: Broker | None = None


def default() -> Broker:
    """The broker of the running event loop: :func:`from_env`, built on first use and
    closed when the loop shuts down (or the one given to :func:`set_default`, which its
    owner closes). One per loop: a broker holds connections and tasks of the loop that
    opened them."""
    if _override is not None:
        return _override
    return _per_loop.get()


def set_default(broker: Broker | None) -> None:
    """Use ``broker`` everywhere (``None``: back to one per loop from the environment)."""
    global _override
    with _lock:
        _override = broker
