"""Service discovery: the data model, the :class:`Registry` protocol and its backends.

Backends: ``memory`` (:class:`MemoryRegistry`, in-process), ``local``
(:class:`LocalRegistry`, SQLite shared by the processes of one machine; the default) and
``nats`` (:class:`~micro.registry.nats.NatsRegistry`, JetStream KV for several machines;
``MICRO_REGISTRY_ADDRESS`` is its URL; needs ``pip install 'micro-runtime[nats]'``).
:func:`from_env` picks one from ``MICRO_REGISTRY``; new backends plug in with
:func:`register_backend`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping

from micro._backends import Backends
from micro.registry._types import (
    DEFAULT_TTL,
    DEFAULT_VERSION,
    Endpoint,
    Event,
    EventType,
    FrozenMap,
    Node,
    NotFound,
    Registry,
    RegistryClosed,
    RegistryError,
    ServiceRecord,
    Watcher,
)
from micro.registry.local import LocalRegistry, RegistryBusy, RegistryCorrupt, default_path
from micro.registry.memory import MemoryRegistry

__all__ = [
    "DEFAULT_BACKEND",
    "DEFAULT_TTL",
    "DEFAULT_VERSION",
    "Endpoint",
    "Event",
    "EventType",
    "FrozenMap",
    "LocalRegistry",
    "MemoryRegistry",
    "Node",
    "NotFound",
    "Registry",
    "RegistryBusy",
    "RegistryClosed",
    "RegistryCorrupt",
    "RegistryError",
    "RegistryFactory",
    "ServiceRecord",
    "Watcher",
    "backends",
    "default",
    "default_path",
    "from_env",
    "heartbeat_interval",
    "register_backend",
    "set_default",
]

DEFAULT_BACKEND = "local"

#: Builds a registry from the environment mapping given to :func:`from_env`.
RegistryFactory = Callable[[Mapping[str, str]], Registry]


def _memory(environ: Mapping[str, str]) -> Registry:
    return MemoryRegistry()


def _local(environ: Mapping[str, str]) -> Registry:
    return LocalRegistry(environ.get("MICRO_REGISTRY_PATH") or None)


def _nats(environ: Mapping[str, str]) -> Registry:
    from micro._nats import NatsOptions
    from micro.registry.nats import NatsRegistry, signing_key_from_env

    return NatsRegistry(
        environ.get("MICRO_REGISTRY_ADDRESS") or None,
        options=NatsOptions.from_env(environ),
        signing_key=signing_key_from_env(environ) or b"",
    )


_BACKENDS: Backends[Registry] = Backends(
    "MICRO_REGISTRY", DEFAULT_BACKEND, {"memory": _memory, "local": _local, "nats": _nats}
)


def register_backend(name: str, factory: RegistryFactory) -> None:
    """Make ``MICRO_REGISTRY=<name>`` build a registry with ``factory(environ)``."""
    _BACKENDS.register(name, factory)


def backends() -> list[str]:
    """Names accepted in ``MICRO_REGISTRY``."""
    return _BACKENDS.names()


def from_env(environ: Mapping[str, str] = os.environ) -> Registry:
    """Build the registry named by ``MICRO_REGISTRY`` (default ``local``).

    ``MICRO_REGISTRY_PATH`` overrides the database path of the ``local`` backend.
    """
    return _BACKENDS.from_env(environ)


_lock = threading.Lock()
_default: Registry | None = None


def default() -> Registry:
    """The process-wide registry: :func:`from_env`, built on first use.

    One per process, not per event loop (unlike brokers and clients): every backend binds
    its connections to the running loop itself, and sharing it is what lets the services
    and clients of one process (``MICRO_REGISTRY=memory``, a sync client's loop) see
    each other."""
    global _default
    with _lock:
        if _default is None:
            _default = from_env()
        return _default


def set_default(registry: Registry | None) -> None:
    """Replace (or with ``None`` reset) the process-wide registry."""
    global _default
    with _lock:
        _default = registry


def heartbeat_interval(ttl: float = DEFAULT_TTL) -> float:
    """How often a service should re-register to keep a ``ttl``-second lease: ttl / 3."""
    return ttl / 3.0
