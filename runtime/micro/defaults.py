"""Process-wide defaults built from the environment (shared by Service and Client)."""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import TYPE_CHECKING

from micro import registry as _registry_mod
from micro.registry import Registry

if TYPE_CHECKING:
    from micro.broker import Broker

__all__ = ["broker", "registry", "set_broker", "set_registry"]

_lock = threading.Lock()
_registry: Registry | None = None


def registry() -> Registry:
    """The process-wide registry: ``micro.registry.from_env()`` (``MICRO_REGISTRY``), built once.

    Shared so that e.g. ``MICRO_REGISTRY=memory`` services and clients of one process see
    each other."""
    global _registry
    with _lock:
        if _registry is None:
            _registry = _registry_mod.from_env()
        return _registry


def set_registry(value: Registry | None) -> None:
    """Replace (or with ``None`` reset) the process-wide registry."""
    global _registry
    with _lock:
        _registry = value


_brokers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Broker] = weakref.WeakKeyDictionary()
_broker: Broker | None = None


def broker() -> Broker:
    """The broker of the running event loop: ``micro.broker.from_env()`` (``MICRO_BROKER``),
    built on first use (or the one given to :func:`set_broker`). One per loop: a broker
    holds connections and tasks of the loop that opened them."""
    if _broker is not None:
        return _broker
    from micro.broker import from_env

    loop = asyncio.get_running_loop()
    with _lock:
        found = _brokers.get(loop)
        if found is None:
            found = _brokers[loop] = from_env()
        return found


def set_broker(value: Broker | None) -> None:
    """Use ``value`` as the broker everywhere (``None``: back to one per loop from the env)."""
    global _broker
    with _lock:
        _broker = value
