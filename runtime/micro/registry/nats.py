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

A lease is bounded by the server's clock: a reader counts a record alive until the
earlier of its claimed deadline and the moment the server stored it plus ``max_lease``
(default 60 s), so a planted far-future deadline cannot pin a dead node.

Records can be signed (``signing_key``, or ``MICRO_REGISTRY_KEY`` /
``MICRO_REGISTRY_KEY_FILE``): the writer adds an HMAC-SHA256 over a canonical encoding
of the key, the record and its deadline; a reader holding the key ignores records that
are unsigned or badly signed (logged once per key), so a client with write access to the
bucket but without the deployment's key cannot take over a service name.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from micro._aclosing import AsyncClosing
from micro._nats import LoopConnection, NatsOptions, NatsPermissionDenied, NatsUnavailable
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

__all__ = [
    "DEFAULT_BUCKET",
    "DEFAULT_MAX_LEASE",
    "DEFAULT_TTL",
    "NatsOptions",
    "NatsRegistry",
    "signing_key_from_env",
]

log = logging.getLogger("micro.registry")

DEFAULT_BUCKET = "micro_registry"
#: how long a lookup waits for the mirror's first snapshot, or for a read-through
SYNC_TIMEOUT = 5.0
#: the server drops a watch's consumer this long after nobody listens (nats-py's
#: default, 5 min, would keep one per lookup miss and per resync)
WATCH_IDLE = 2.0
#: the longest lease a reader believes, counted from the server's timestamp of the record
DEFAULT_MAX_LEASE = 60.0
#: a signing key shorter than this is refused (HMAC-SHA256 wants at least 128 bits)
MIN_KEY_BYTES = 16
_SIG_PREFIX = "hmac-sha256:"
#: how many distinct rejected keys are remembered so each is logged only once
_REJECTED_MEMORY = 1024


def signing_key_from_env(environ: Mapping[str, str] = os.environ) -> bytes | None:
    """The deployment's record-signing key: ``MICRO_REGISTRY_KEY_FILE`` (the file's
    content, stripped) or ``MICRO_REGISTRY_KEY``; ``None`` if neither is set."""
    path = environ.get("MICRO_REGISTRY_KEY_FILE")
    if path:
        try:
            with open(path, "rb") as f:
                return f.read().strip()
        except OSError as exc:
            raise RegistryError(
                f"cannot read the registry key file {path!r} (MICRO_REGISTRY_KEY_FILE): "
                f"{exc.strerror}"
            ) from None
    value = environ.get("MICRO_REGISTRY_KEY")
    return value.encode() if value else None


def _signed_bytes(key: str, service: Any, expires: Any) -> bytes:
    """The canonical encoding a signature covers: the bucket key binds the record to
    its name, version and node id (a signed record cannot be copied under another)."""
    return json.dumps(
        {"expires": expires, "key": key, "service": service},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    ).encode()


def _sign(secret: bytes, key: str, service: Any, expires: Any) -> str:
    digest = hmac.new(secret, _signed_bytes(key, service, expires), hashlib.sha256)
    return _SIG_PREFIX + digest.hexdigest()


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
    ``register(ttl=None)``; ``resync_interval``: how often the mirror is rebuilt;
    ``options``: TLS and credentials (default :meth:`NatsOptions.from_env`);
    ``signing_key``: sign records and ignore unsigned ones (default
    :func:`signing_key_from_env`; ``b""`` turns signing off); ``max_lease``: the longest
    lease believed, from the server's timestamp of a record."""

    def __init__(
        self,
        address: str | None = None,
        *,
        bucket: str = DEFAULT_BUCKET,
        default_ttl: float = DEFAULT_TTL,
        resync_interval: float = 30.0,
        connect_timeout: float = 3.0,
        options: NatsOptions | None = None,
        signing_key: bytes | str | None = None,
        max_lease: float = DEFAULT_MAX_LEASE,
    ) -> None:
        self.max_lease = check_ttl(max_lease)
        self.default_ttl = check_ttl(default_ttl)
        if self.default_ttl > self.max_lease:
            raise ValueError(
                f"default_ttl {default_ttl:g} s is longer than max_lease {max_lease:g} s"
            )
        self.bucket = bucket
        self.resync_interval = resync_interval
        secret = signing_key_from_env() if signing_key is None else signing_key
        if isinstance(secret, str):
            secret = secret.encode()
        if secret and len(secret) < MIN_KEY_BYTES:
            raise ValueError(
                f"the registry signing key must be at least {MIN_KEY_BYTES} bytes "
                "(e.g. openssl rand -hex 32)"
            )
        self._secret: bytes | None = secret or None
        self._rejected: set[tuple[str, str]] = set()
        self._read_only = False  # set when the server refuses this client's writes
        self._conn = LoopConnection(
            address, name="micro.registry", connect_timeout=connect_timeout, options=options
        )
        self._conn.on_reconnect.append(self._on_reconnect)
        self._state: _State | None = None
        self._state_lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    @property
    def address(self) -> str:
        """The URL(s), with any password or token shown as ``***``."""
        return self._conn.shown

    @property
    def signed(self) -> bool:
        """Whether records are signed and unsigned ones ignored."""
        return self._secret is not None

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
        # Open first, create only if missing: a client allowed to read the bucket but not
        # to manage streams (docs/security.md) needs only STREAM.INFO.
        stream_api = f"$JS.API.STREAM.INFO.KV_{self.bucket}"
        try:
            kv = await self._conn.unless_denied(js.key_value(self.bucket), stream_api)
        except Exception as first:
            if isinstance(first, NatsPermissionDenied):
                raise self._denied(first, f"open bucket {self.bucket!r}") from None
            try:
                from nats.js.api import KeyValueConfig

                create = js.create_key_value(KeyValueConfig(bucket=self.bucket, history=1))
                kv = await self._conn.unless_denied(create, "$JS.API.STREAM.CREATE")
            except NatsPermissionDenied as exc:
                raise self._denied(exc, f"create bucket {self.bucket!r}") from None
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
            if not await self._apply(state, entry) and not self._read_only:
                try:  # garbage-collect the dead key
                    await self._conn.unless_denied(
                        state.kv.delete(entry.key, last=entry.revision), self._subject(entry.key)
                    )
                except NatsPermissionDenied:
                    self._read_only = True  # a reader: leave collection to the writers
                except Exception:
                    pass

    async def _apply(self, state: _State, entry: Any) -> bool:
        """Mirror one KV entry; False if it is a delete or an expired lease (a record
        ignored for its signature counts as neither: it is not collected)."""
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
            deadline = float(data["expires"])
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("NATS registry: ignoring malformed key %s: %s", key, exc)
            return False
        if self._secret is not None:
            problem = self._signature_problem(key, data)
            if problem:
                self._reject(key, record, problem)
                old = state.keys.pop(key, None)
                if old is not None:
                    await state.view.deregister(old)
                return True
        # Bounded lease: the server's timestamp of this revision + max_lease at most.
        created: Any = getattr(entry, "created", None)
        stored = float(created.timestamp()) if created is not None else time.time()
        remaining = min(deadline, stored + self.max_lease) - time.time()
        if remaining <= 0:
            old = state.keys.pop(key, None)
            if old is not None:
                await state.view.deregister(old)
            return False
        state.keys[key] = record
        await state.view.register(record, ttl=remaining)
        return True

    def _signature_problem(self, key: str, data: Mapping[str, Any]) -> str:
        assert self._secret is not None
        sig = data.get("sig")
        if not isinstance(sig, str) or not sig:
            return "unsigned record"
        expected = _sign(self._secret, key, data["service"], data["expires"])
        if not hmac.compare_digest(sig.encode(), expected.encode()):
            return "bad signature"
        return ""

    def _reject(self, key: str, record: ServiceRecord, problem: str) -> None:
        if (key, problem) in self._rejected:
            return
        if len(self._rejected) >= _REJECTED_MEMORY:
            self._rejected.clear()
        self._rejected.add((key, problem))
        nodes = ", ".join(n.id for n in record.nodes)
        log.warning(
            "NATS registry: ignoring %s for service %r node %s: only records signed with "
            "this deployment's registry key count",
            problem,
            record.name,
            nodes,
        )

    def _subject(self, key: str) -> str:
        return f"$KV.{self.bucket}.{key}"

    def _denied(self, exc: NatsPermissionDenied, what: str) -> RegistryError:
        return RegistryError(
            f"NATS registry at {self.address}: not permitted to {what}: the server says "
            f"{exc}; this NATS user needs publish permission on $KV.{self.bucket}.> to "
            "register (docs/security.md, Discovery)"
        )

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
        if lease > self.max_lease:
            raise ValueError(
                f"ttl {lease:g} s is longer than this registry's max_lease "
                f"{self.max_lease:g} s: readers would drop the node early"
            )
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
            body: dict[str, Any] = {"service": one.to_dict(), "expires": time.time() + lease}
            key = node_key(service.name, service.version, node.id)
            if self._secret is not None:
                body["sig"] = _sign(self._secret, key, body["service"], body["expires"])
            payload = json.dumps(body, separators=(",", ":")).encode()
            try:
                revision = await self._conn.unless_denied(
                    state.kv.put(key, payload), self._subject(key)
                )
            except NatsPermissionDenied as exc:
                raise self._denied(exc, f"register {service.name!r}") from None
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
                await self._conn.unless_denied(state.kv.delete(key), self._subject(key))
            except NatsPermissionDenied as exc:
                raise self._denied(exc, f"deregister {service.name!r}") from None
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
