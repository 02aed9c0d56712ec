"""Node selection strategies: pick one node of a service for a call.

``select(nodes, service=...)`` gets the live nodes (e.g. every node of every record
``Registry.get_service`` returned) and returns one; an empty sequence raises
:class:`NoNodes`. ``MICRO_SELECTOR`` (``random`` (default) | ``roundrobin``) picks the
strategy in :func:`from_env`.
"""

from __future__ import annotations

import collections
import os
import random
import threading
from collections.abc import Hashable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from micro._backends import Backends
from micro.registry import Node

__all__ = [
    "DEFAULT_SELECTOR",
    "NoNodes",
    "Random",
    "RoundRobin",
    "Selector",
    "check_env",
    "from_env",
    "selectors",
]

DEFAULT_SELECTOR = "random"


class NoNodes(LookupError):
    """There is no node to select from."""

    def __init__(self, service: str = "") -> None:
        what = f"service {service!r}" if service else "the service"
        super().__init__(f"no nodes available for {what}")
        self.service = service


@runtime_checkable
class Selector(Protocol):
    def select(self, nodes: Sequence[Node], *, service: str = "") -> Node:
        """Pick one of ``nodes`` (raise NoNodes if empty). ``service`` names the service
        the nodes belong to; strategies with per-service state key on it."""
        ...


class Random:
    """Uniformly random choice. ``seed`` makes it reproducible (tests)."""

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def select(self, nodes: Sequence[Node], *, service: str = "") -> Node:
        if len(nodes) < 2:
            if not nodes:
                raise NoNodes(service)
            return nodes[0]
        with self._lock:  # random.Random is not documented as thread-safe
            return nodes[self._rng.randrange(len(nodes))]

    def __repr__(self) -> str:
        return "Random()"


class RoundRobin:
    """Cycles through the nodes in the given order, one counter per service.

    The key is ``service``; without one, the sorted node ids (so unrelated services
    never share a counter). The counter advances atomically (a lock), so concurrent
    callers on any thread or task each get the next node. At most ``max_keys``
    counters are kept (least recently used are dropped).
    """

    def __init__(self, *, max_keys: int = 4096) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be >= 1, got {max_keys!r}")
        self._max_keys = max_keys
        self._counters: collections.OrderedDict[Hashable, int] = collections.OrderedDict()
        self._lock = threading.Lock()

    def select(self, nodes: Sequence[Node], *, service: str = "") -> Node:
        if not nodes:
            raise NoNodes(service)
        key: Hashable = service if service else tuple(sorted(n.id for n in nodes))
        with self._lock:
            count = self._counters.pop(key, 0)
            self._counters[key] = count + 1
            if len(self._counters) > self._max_keys:
                self._counters.popitem(last=False)
        return nodes[count % len(nodes)]

    def __repr__(self) -> str:
        return "RoundRobin()"


_SELECTORS: Backends[Selector] = Backends(
    "MICRO_SELECTOR",
    DEFAULT_SELECTOR,
    {"random": lambda environ: Random(), "roundrobin": lambda environ: RoundRobin()},
)


def selectors() -> list[str]:
    """Names accepted in ``MICRO_SELECTOR``."""
    return _SELECTORS.names()


def check_env(environ: Mapping[str, str] = os.environ) -> None:
    """Raise :class:`micro.ConfigError` if ``MICRO_SELECTOR`` names no selector."""
    _SELECTORS.check(environ)


def from_env(environ: Mapping[str, str] = os.environ) -> Selector:
    """Build the selector named by ``MICRO_SELECTOR`` (default ``random``)."""
    return _SELECTORS.from_env(environ)
