"""Registry on a NATS JetStream key-value bucket, for services on several machines.

One key per node (``<name>.<version>.<node id>``, each part base64url-encoded) holds the
node's record and its lease deadline (wall clock) as JSON. ``register`` puts the key,
``deregister`` deletes it.

Every :class:`NatsRegistry` mirrors the bucket into an in-process
:class:`~micro.registry.MemoryRegistry` by watching the bucket, so lookups are local
reads and watchers get CREATE/UPDATE/DELETE events. nats-server 2.9 sends no event when
a key expires, so expiry is client-side: each mirrored node gets a timer at its lease
deadline (the :class:`MemoryRegistry` timers); a node killed with SIGKILL stops
renewing and drops out of every mirror when its lease ends. The mirror is rebuilt from
scratch after a reconnect and every ``resync_interval`` seconds (catching anything a
broken watch missed), and expired keys are deleted from the bucket then.

The mirror lags the bucket by one message delivery. So that a node registered by
another process a moment ago is found anyway, a lookup that misses in the mirror reads
that service's keys from the bucket before answering "not found". Lookups never answer
from a mirror whose first snapshot has not arrived: they raise :class:`RegistryError`.

Lease deadlines are wall-clock times compared across machines: keep clocks in sync
(NTP) to well within the TTL. While the NATS server is unreachable, lookups raise
:class:`RegistryError` (the client keeps using the last nodes it knew).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from micro._aclosing import AsyncClosing
from micro._nats import LoopConnection, NatsUnavailable
from micro._tasks import stop_if_cancelled
from micro.registry._types import (
    DEFAULT_TTL,
    Event,
    NotFound,
    RegistryClosed,
    RegistryError,
    ServiceRecord,
    Watcher,
    check_ttl,
)
from micro.registry.memory import MemoryRegistry

if TYPE_CHECKING:
    from nats.js.kv import KeyValue

__all__ = ["DEFAULT_BUCKET", "DEFAULT_TTL", "NatsRegistry"]

log = logging.getLogger("micro.registry")

DEFAULT_BUCKET = "micro_registry"
#: how long a lookup waits for the mirror's first snapshot, or for a read-through
SYNC_TIMEOUT = 5.0
#: the server drops a watch's consumer this long after nobody listens (nats-py's
#: default, 5 min, would keep one per lookup miss and per resync)
WATCH_IDLE = 2.0


def _seg(text: str) -> str:
    return "k" + base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def node_key(name: str, version: str, node_id: str) -> str:
    return f"{_seg(name)}.{_seg(version)}.{_seg(node_id)}"


@dataclass
class _State:
    """Everything bound to one event loop."""

    loop: asyncio.AbstractEventLoop
    kv: KeyValue
    view: MemoryRegistry = field(default_factory=MemoryRegistry)
    keys: dict[str, ServiceRecord] = field(default_factory=dict)
    #: the newest bucket revision mirrored per key (values and deletes), so a
    #: read-through never replaces what the watch already delivered with older data
    revisions: dict[str, int] = field(default_factory=dict)
    error: str = ""  # why the last watch attempt failed, for "not synced" errors
    synced: asyncio.Event = field(default_factory=asyncio.Event)
    resync: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    stopped: bool = False


class _LazyWatcher(Watcher):
    """Connects on first iteration, then relays the mirror's events."""

    def __init__(self, registry: NatsRegistry, service: str | None) -> None:
        self._registry = registry
        self._service = service
        self._inner: Watcher | None = None
        self._stopped = False
        state = registry._state
        with contextlib.suppress(RuntimeError):
            if state is not None and state.loop is asyncio.get_running_loop():
                self._inner = state.view.watch(service)  # events from now on

    async def __anext__(self) -> Event:
        if self._stopped:
            raise StopAsyncIteration
        if self._inner is None:
            state = await self._registry._synced()
            self._inner = state.view.watch(self._service)
            if self._stopped:
                self._inner.stop()
        return await self._inner.__anext__()

    def stop(self) -> None:
        self._stopped = True
        if self._inner is not None:
            self._inner.stop()

    @property
    def stopped(self) -> bool:
        return self._stopped


class NatsRegistry(AsyncClosing):
    """:class:`~micro.registry.Registry` on NATS JetStream KV (``MICRO_REGISTRY=nats``).

    ``address``: NATS URL(s), comma separated (default ``nats://127.0.0.1:4222``);
    ``bucket``: the KV bucket (created if missing); ``default_ttl``: lease for
    ``register(ttl=None)``; ``resync_interval``: how often the mirror is rebuilt."""

    def __init__(
        self,
        address: str | None = None,
        *,
        bucket: str = DEFAULT_BUCKET,
        default_ttl: float = DEFAULT_TTL,
        resync_interval: float = 30.0,
        connect_timeout: float = 3.0,
    ) -> None:
        self.default_ttl = check_ttl(default_ttl)
        self.bucket = bucket
        self.resync_interval = resync_interval
        self._conn = LoopConnection(address, name="micro.registry", connect_timeout=connect_timeout)
        self._conn.on_reconnect.append(self._on_reconnect)
        self._state: _State | None = None
        self._state_lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    @property
    def address(self) -> str:
        return self._conn.url

    # -- connection and mirror ---------------------------------------------------------

    async def _synced(self) -> _State:
        """The state, once the mirror holds a full snapshot of the bucket."""
        state = await self._state_ready()
        if not state.synced.is_set():
            try:
                await asyncio.wait_for(state.synced.wait(), timeout=SYNC_TIMEOUT)
            except TimeoutError:
                why = f": {state.error}" if state.error else ""
                raise RegistryError(
                    f"NATS registry at {self.address}: no snapshot of bucket "
                    f"{self.bucket!r} within {SYNC_TIMEOUT:g} s{why}"
                ) from None
        return state

    async def _state_ready(self) -> _State:
        """The state of the running loop, connected (the mirror may still be filling)."""
        if self._closed:
            raise RegistryClosed("registry is closed")
        loop = asyncio.get_running_loop()
        state = self._state
        if state is None or state.loop is not loop:
            if self._state_lock is None or self._lock_loop is not loop:
                self._state_lock, self._lock_loop = asyncio.Lock(), loop
            async with self._state_lock:
                if self._state is None or self._state.loop is not loop:
                    self._state = await self._open(loop)
            state = self._state
        return state

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _State:
        try:
            nc = await self._conn.get()
        except NatsUnavailable as exc:
            raise RegistryError(str(exc)) from None
        js = nc.jetstream()
        try:
            from nats.js.api import KeyValueConfig

            kv = await js.create_key_value(KeyValueConfig(bucket=self.bucket, history=1))
        except Exception:
            try:
                kv = await js.key_value(self.bucket)
            except Exception as exc:
                raise RegistryError(
                    f"NATS registry at {self.address}: cannot open bucket {self.bucket!r} "
                    f"(is JetStream enabled? nats-server -js): {exc}"
                ) from None
        state = _State(loop=loop, kv=kv)
        state.task = asyncio.create_task(self._follow(state))
        return state

    async def _on_reconnect(self) -> None:
        if self._state is not None:
            self._state.resync.set()

    async def _follow(self, state: _State) -> None:
        """Mirror the bucket: a full snapshot, then changes; start over on resync."""
        while not state.stopped:  # (a flag too: nats-py's wait_for may swallow a cancel)
            stop_if_cancelled()
            watcher = None
            try:
                state.resync.clear()
                watcher = await state.kv.watchall(inactive_threshold=WATCH_IDLE)
                snapshot: dict[str, Any] = {}
                initial = True
                deadline = time.monotonic() + self.resync_interval
                while (
                    not state.stopped and not state.resync.is_set() and time.monotonic() < deadline
                ):
                    stop_if_cancelled()
                    try:
                        entry = await watcher.updates(timeout=0.5)  # type: ignore[no-untyped-call]
                    except Exception as exc:
                        if type(exc).__name__ == "TimeoutError":
                            continue
                        raise
                    if entry is None:
                        if initial:
                            await self._replace(state, snapshot)
                            initial = False
                            state.error = ""
                            state.synced.set()
                        continue
                    if initial:
                        snapshot[entry.key] = entry
                    else:
                        await self._apply(state, entry)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                state.error = str(exc) or type(exc).__name__
                log.debug("NATS registry watch: %s", state.error)
                await asyncio.sleep(0.25)
            finally:
                if watcher is not None:
                    with contextlib.suppress(Exception):
                        await watcher.stop()  # type: ignore[no-untyped-call]

    async def _replace(self, state: _State, snapshot: dict[str, Any]) -> None:
        live = {k: e for k, e in snapshot.items() if e.operation not in ("DEL", "PURGE")}
        for key in list(state.keys):
            if key not in live:
                await state.view.deregister(state.keys.pop(key))
        for entry in live.values():
            if not await self._apply(state, entry):
                with contextlib.suppress(Exception):  # garbage-collect the dead key
                    await state.kv.delete(entry.key, last=entry.revision)

    async def _apply(self, state: _State, entry: Any) -> bool:
        """Mirror one KV entry; False if it is a delete or an expired lease."""
        key: str = entry.key
        state.revisions[key] = max(state.revisions.get(key, 0), entry.revision or 0)
        if entry.operation in ("DEL", "PURGE") or not entry.value:
            old = state.keys.pop(key, None)
            if old is not None:
                await state.view.deregister(old)
            return False
        try:
            data = json.loads(entry.value)
            record = ServiceRecord.from_dict(data["service"])
            remaining = float(data["expires"]) - time.time()
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("NATS registry: ignoring malformed key %s: %s", key, exc)
            return False
        if remaining <= 0:
            old = state.keys.pop(key, None)
            if old is not None:
                await state.view.deregister(old)
            return False
        state.keys[key] = record
        await state.view.register(record, ttl=remaining)
        return True

    async def _read_through(self, state: _State, name: str) -> None:
        """Mirror the bucket's current keys of service ``name`` (newer ones only)."""
        try:
            watcher = await state.kv.watch(f"{_seg(name)}.>", inactive_threshold=WATCH_IDLE)
        except Exception as exc:
            raise self._failed(exc) from None
        try:
            deadline = time.monotonic() + SYNC_TIMEOUT
            entries = []
            while (left := deadline - time.monotonic()) > 0:
                stop_if_cancelled()
                try:
                    entry = await watcher.updates(timeout=left)  # type: ignore[no-untyped-call]
                except Exception as exc:
                    raise self._failed(exc) from None
                if entry is None:
                    break
                entries.append(entry)
            else:
                raise RegistryError(
                    f"NATS registry at {self.address}: reading {name!r} took over "
                    f"{SYNC_TIMEOUT:g} s"
                )
        finally:
            with contextlib.suppress(Exception):
                await watcher.stop()  # type: ignore[no-untyped-call]
        for entry in entries:
            if (entry.revision or 0) > state.revisions.get(entry.key, 0):
                await self._apply(state, entry)

    def _failed(self, exc: Exception) -> RegistryError:
        return RegistryError(f"NATS registry at {self.address}: {exc or type(exc).__name__}")

    def _check_reachable(self) -> None:
        if not self._conn.connected:
            raise RegistryError(f"NATS registry at {self.address} is unreachable")

    # -- Registry ----------------------------------------------------------------------

    async def register(self, service: ServiceRecord, *, ttl: float | None = None) -> None:
        lease = self.default_ttl if ttl is None else check_ttl(ttl)
        if not service.nodes:
            raise ValueError(f"cannot register service {service.name!r}: the record has no nodes")
        state = await self._state_ready()
        for node in service.nodes:
            one = ServiceRecord(
                name=service.name,
                version=service.version,
                nodes=(node,),
                endpoints=service.endpoints,
                metadata=service.metadata,
            )
            body = {"service": one.to_dict(), "expires": time.time() + lease}
            key = node_key(service.name, service.version, node.id)
            try:
                revision = await state.kv.put(key, json.dumps(body, separators=(",", ":")).encode())
            except Exception as exc:
                raise RegistryError(
                    f"NATS registry at {self.address}: {exc or 'timeout'}"
                ) from None
            state.keys[key] = one
            state.revisions[key] = max(state.revisions.get(key, 0), revision)
            await state.view.register(one, ttl=lease)

    async def deregister(self, service: ServiceRecord) -> None:
        state = await self._state_ready()
        for node in service.nodes:
            key = node_key(service.name, service.version, node.id)
            try:
                await state.kv.delete(key)
            except Exception as exc:
                raise RegistryError(
                    f"NATS registry at {self.address}: {exc or 'timeout'}"
                ) from None
            old = state.keys.pop(key, None)
            if old is not None:
                await state.view.deregister(old)

    async def get_service(self, name: str) -> list[ServiceRecord]:
        state = await self._synced()
        self._check_reachable()
        try:
            return await state.view.get_service(name)
        except NotFound:
            await self._read_through(state, name)
        return await state.view.get_service(name)

    async def list_services(self) -> list[ServiceRecord]:
        state = await self._synced()
        self._check_reachable()
        return await state.view.list_services()

    def watch(self, service: str | None = None) -> Watcher:
        if self._closed:
            raise RegistryClosed("registry is closed")
        return _LazyWatcher(self, service)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        state, self._state = self._state, None
        if state is not None and state.loop is asyncio.get_running_loop():
            state.stopped = True
            if state.task is not None:
                state.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(state.task, timeout=2.0)
            await state.view.close()
        await self._conn.close()

    def __repr__(self) -> str:
        return f"NatsRegistry({self.address!r}, bucket={self.bucket!r})"
