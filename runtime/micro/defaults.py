"""Process-wide defaults built from the environment (shared by Service and Client)."""

from __future__ import annotations

import threading

from micro import registry as _registry_mod
from micro.registry import Registry

__all__ = ["registry", "set_registry"]

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
