"""The client's view of the registry: cached lookups, refreshed by a watch, that outlive
a registry outage.

* A lookup is cached; while a registry watch for the service runs (started on the first
  lookup), any event for the service re-reads it at once, so the cache follows the
  registry without polling. Without a working watch, entries expire after ``ttl``.
* If the registry itself fails (unreachable server, broken database), the last nodes
  known for the service keep being used and a warning is logged once per outage;
  calls then fail only if those nodes fail too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from micro.errors import CLIENT_ID, Error
from micro.registry import Node, NotFound, Registry, RegistryError
from micro.status import Status
from micro.telemetry import metrics

__all__ = ["NodeCache"]

log = logging.getLogger("micro.client")


#: how long a watched entry stays valid without any event (a safety net for a stuck watch)
WATCHED_TTL = 30.0


@dataclass
class _Entry:
    nodes: list[Node]
    expires: float  # time.monotonic(); 0: re-read on next use


class NodeCache:
    def __init__(self, registry: Callable[[], Registry], ttl: float) -> None:
        self._registry = registry
        self._ttl = ttl
        self._entries: dict[str, _Entry] = {}
        self._watches: dict[str, asyncio.Task[None]] = {}
        self._degraded: set[str] = set()

    def cached(self, service: str) -> list[Node] | None:
        """The nodes of ``service`` if a fresh lookup is cached (no await on the hot path)."""
        entry = self._entries.get(service)
        if entry is not None and entry.expires > time.monotonic():
            if metrics.active is not None:  # a miss is counted by the lookup that follows
                metrics.active.lookup(service, hit=True)
            return entry.nodes
        return None

    async def lookup(self, service: str) -> list[Node]:
        """The live nodes of ``service``; raises 503 if there are none (or the registry is
        down and no node was ever known)."""
        entry = self._entries.get(service)
        fresh = entry is not None and entry.expires > time.monotonic()
        if metrics.active is not None:
            metrics.active.lookup(service, hit=fresh)
        if entry is not None and fresh:
            return entry.nodes
        try:
            nodes = await self._read(service)
        except (RegistryError, OSError) as exc:
            if entry is None or not entry.nodes:
                raise Error(
                    CLIENT_ID,
                    503,
                    f"service {service}: registry unavailable: {exc}",
                    grpc_status=Status.UNAVAILABLE,
                ) from None
            if service not in self._degraded:
                self._degraded.add(service)
                log.warning(
                    "registry unavailable (%s); using the %d last known node(s) of %s",
                    exc,
                    len(entry.nodes),
                    service,
                )
            entry.expires = time.monotonic() + self._ttl
            return entry.nodes
        if service in self._degraded:
            self._degraded.discard(service)
            log.info("registry reachable again; %s has %d node(s)", service, len(nodes))
        if not nodes:
            self._entries.pop(service, None)
            raise Error(
                CLIENT_ID, 503, f"service {service}: not found", grpc_status=Status.UNAVAILABLE
            )
        self._store(service, nodes)
        self._ensure_watch(service)
        return nodes

    def invalidate(self, service: str) -> None:
        """Re-read ``service`` on next use (its nodes stay as the fallback)."""
        entry = self._entries.get(service)
        if entry is not None:
            entry.expires = 0.0

    async def close(self) -> None:
        watches, self._watches = self._watches, {}
        for task in watches.values():
            task.cancel()
        for task in watches.values():
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await task
        self._entries.clear()
        self._degraded.clear()

    async def _read(self, service: str) -> list[Node]:
        try:
            records = await self._registry().get_service(service)
        except NotFound:
            return []
        return [node for record in records for node in record.nodes]

    def _store(self, service: str, nodes: list[Node]) -> None:
        watched = service in self._watches and not self._watches[service].done()
        ttl = max(self._ttl, WATCHED_TTL) if watched else self._ttl
        self._entries[service] = _Entry(nodes, time.monotonic() + ttl)

    async def _refresh(self, service: str) -> None:
        try:
            nodes = await self._read(service)
        except (RegistryError, OSError):
            self.invalidate(service)
            return
        if nodes:
            self._store(service, nodes)
        else:
            self._entries.pop(service, None)

    def _ensure_watch(self, service: str) -> None:
        task = self._watches.get(service)
        if task is None or task.done():
            self._watches[service] = asyncio.create_task(self._follow(service))

    async def _follow(self, service: str) -> None:
        try:
            async with self._registry().watch(service) as watcher:
                await self._refresh(service)  # whatever changed before the watch began
                async for _ in watcher:
                    await self._refresh(service)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the cache falls back to its ttl
            log.debug("registry watch for %s ended: %s", service, exc)
        finally:
            self.invalidate(service)
