"""In-process registry: a dict guarded by the event loop, with TTL expiry and watch.

Useful for tests and single-process setups; it is not visible to other processes
(use :class:`micro.registry.local.LocalRegistry` for that).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass

from micro._aclosing import AsyncClosing
from micro.registry._types import (
    Endpoint,
    Event,
    Key,
    Node,
    NotFound,
    RegistryClosed,
    ServiceRecord,
    Watcher,
    check_ttl,
    diff_snapshots,
    group_records,
)

__all__ = ["MemoryRegistry"]

_RowKey = tuple[str, str, str]  # (name, version, node id)


@dataclass(frozen=True)
class _Row:
    node: Node
    endpoints: tuple[Endpoint, ...]
    metadata: Mapping[str, str]
    stamp: int  # registration sequence number: the latest row wins for endpoints/metadata
    expires_at: float | None  # time.monotonic() deadline, None = never


class _QueueWatcher(Watcher):
    def __init__(self, registry: MemoryRegistry, service: str | None) -> None:
        self._registry = registry
        self.service = service
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._stopped = False

    def _offer(self, event: Event) -> None:
        if not self._stopped and (self.service is None or event.service.name == self.service):
            self._queue.put_nowait(event)

    async def __anext__(self) -> Event:
        if self._stopped:
            raise StopAsyncIteration
        event = await self._queue.get()
        if event is None or self._stopped:
            raise StopAsyncIteration
        return event

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            self._registry._watchers.discard(self)
            self._queue.put_nowait(None)  # wake a pending __anext__

    @property
    def stopped(self) -> bool:
        return self._stopped


class MemoryRegistry(AsyncClosing):
    """In-process :class:`~micro.registry.Registry`.

    ``default_ttl`` applies when ``register`` gets ``ttl=None``; ``None`` (the default)
    means nodes registered without a TTL never expire. Expired nodes vanish from
    lookups immediately and watchers get the corresponding UPDATE/DELETE (a timer
    fires at the deadline, so this happens even if nobody calls the registry).
    """

    def __init__(self, *, default_ttl: float | None = None) -> None:
        self.default_ttl = None if default_ttl is None else check_ttl(default_ttl)
        self._rows: dict[_RowKey, _Row] = {}
        self._timers: dict[_RowKey, asyncio.TimerHandle] = {}
        self._watchers: set[_QueueWatcher] = set()
        self._seq = 0
        self._closed = False

    # -- internals --------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RegistryClosed("registry is closed")

    def _snapshot(self, now: float | None = None) -> dict[Key, ServiceRecord]:
        now = time.monotonic() if now is None else now
        return group_records(
            (k[0], k[1], r.node, r.endpoints, r.metadata, float(r.stamp))
            for k, r in self._rows.items()
            if r.expires_at is None or r.expires_at > now
        )

    def _emit(self, before: Mapping[Key, ServiceRecord]) -> None:
        events = diff_snapshots(before, self._snapshot())
        for watcher in list(self._watchers):
            for event in events:
                watcher._offer(event)

    def _purge_expired(self) -> None:
        """Drop expired rows and notify watchers (also called by the expiry timers)."""
        now = time.monotonic()
        expired = [
            k for k, r in self._rows.items() if r.expires_at is not None and r.expires_at <= now
        ]
        if not expired:
            return
        # Include the expired rows in "before" so watchers see the DELETE/UPDATE.
        before = group_records(
            (k[0], k[1], r.node, r.endpoints, r.metadata, float(r.stamp))
            for k, r in self._rows.items()
        )
        for k in expired:
            del self._rows[k]
            timer = self._timers.pop(k, None)
            if timer is not None:
                timer.cancel()
        self._emit(before)

    def _on_timer(self, key: _RowKey) -> None:
        self._timers.pop(key, None)
        if not self._closed:
            self._purge_expired()

    # -- Registry ---------------------------------------------------------------

    async def register(self, service: ServiceRecord, *, ttl: float | None = None) -> None:
        self._check_open()
        ttl = self.default_ttl if ttl is None else check_ttl(ttl)
        if not service.nodes:
            raise ValueError(f"cannot register service {service.name!r}: the record has no nodes")
        self._purge_expired()
        loop = asyncio.get_running_loop()
        before = self._snapshot()
        now = time.monotonic()
        for node in service.nodes:
            key = (service.name, service.version, node.id)
            self._seq += 1
            self._rows[key] = _Row(
                node=node,
                endpoints=service.endpoints,
                metadata=service.metadata,
                stamp=self._seq,
                expires_at=None if ttl is None else now + ttl,
            )
            old = self._timers.pop(key, None)
            if old is not None:
                old.cancel()
            if ttl is not None:
                # A hair after the deadline so the row is definitely expired when it fires.
                self._timers[key] = loop.call_later(ttl + 0.001, self._on_timer, key)
        self._emit(before)

    async def deregister(self, service: ServiceRecord) -> None:
        self._check_open()
        self._purge_expired()
        before = self._snapshot()
        for node in service.nodes:
            key = (service.name, service.version, node.id)
            self._rows.pop(key, None)
            timer = self._timers.pop(key, None)
            if timer is not None:
                timer.cancel()
        self._emit(before)

    async def get_service(self, name: str) -> list[ServiceRecord]:
        self._check_open()
        self._purge_expired()
        records = [r for (n, _), r in self._snapshot().items() if n == name]
        if not records:
            raise NotFound(name)
        return records

    async def list_services(self) -> list[ServiceRecord]:
        self._check_open()
        self._purge_expired()
        return list(self._snapshot().values())

    def watch(self, service: str | None = None) -> Watcher:
        self._check_open()
        watcher = _QueueWatcher(self, service)
        self._watchers.add(watcher)
        return watcher

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for watcher in list(self._watchers):
            watcher.stop()
        self._rows.clear()

    def __repr__(self) -> str:
        return f"MemoryRegistry(nodes={len(self._rows)}, default_ttl={self.default_ttl})"
