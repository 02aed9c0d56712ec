"""Embedded, serverless registry shared by every process of one user on one machine.

Storage is one SQLite database (WAL mode, busy timeout), by default
``<tempfile.gettempdir()>/micro-<uid>/registry.db``. Schema (``PRAGMA user_version = 1``)::

    CREATE TABLE nodes (
        service          TEXT NOT NULL,   -- service name
        version          TEXT NOT NULL,
        node_id          TEXT NOT NULL,
        address          TEXT NOT NULL,   -- host:port
        node_metadata    TEXT NOT NULL,   -- JSON object
        endpoints        TEXT NOT NULL,   -- JSON list of Endpoint.to_dict()
        service_metadata TEXT NOT NULL,   -- JSON object
        registered_at    REAL NOT NULL,   -- wall clock (time.time()) of the last register
        expires_at       REAL NOT NULL,   -- wall clock deadline: registered_at + ttl
        PRIMARY KEY (service, version, node_id)
    ) WITHOUT ROWID;

Liveness is a lease: ``register`` upserts the node rows with ``expires_at = now + ttl``
and services call it again every ``ttl / 3`` (a heartbeat). A process that dies stops
heartbeating and its nodes drop out of every lookup once the lease passes: reads filter
``expires_at > now`` and opportunistically delete expired rows; writes always purge them.
The wall clock is used (not a monotonic clock) because deadlines are compared across
processes.

Safety: the directory and the file are checked with ``lstat`` (never following a
symbolic link) before use. The default directory must be owned by this user, mode 0700,
and not a link; the file (created 0600) must be a regular file owned by this user and not
writable by group or others. Anything else is refused with an error that says what to
fix (or to set ``MICRO_REGISTRY_PATH``).

Healing: the file's identity is checked on every operation. A database deleted or
replaced while processes run is recreated (or reopened) by the next operation, so running
services re-register on their next heartbeat; a corrupted one is moved aside to
``registry.db.corrupt`` and recreated, with one warning. A file without write permission
is opened read-only: lookups and watches work, ``register`` is one clear error.

A service version's endpoints and metadata are taken from its most recently registered
node row. ``watch`` polls (default every 0.25 s) and diffs snapshots, so it also reports
expiries (DELETE, or UPDATE if other nodes of the version remain); a poll reads the rows
only when another connection committed or a lease ran out since the last read.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import math
import os
import sqlite3
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from micro._aclosing import AsyncClosing
from micro.registry._types import (
    DEFAULT_TTL,
    Endpoint,
    Event,
    FrozenMap,
    Key,
    Node,
    NotFound,
    RegistryClosed,
    RegistryError,
    ServiceRecord,
    Watcher,
    check_ttl,
    diff_snapshots,
    group_records,
)

__all__ = [
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_TTL",
    "LocalRegistry",
    "RegistryBusy",
    "RegistryCorrupt",
    "default_path",
]

log = logging.getLogger("micro.registry")

DEFAULT_POLL_INTERVAL = 0.25
DEFAULT_BUSY_TIMEOUT = 5.0
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nodes (
    service          TEXT NOT NULL,
    version          TEXT NOT NULL,
    node_id          TEXT NOT NULL,
    address          TEXT NOT NULL,
    node_metadata    TEXT NOT NULL,
    endpoints        TEXT NOT NULL,
    service_metadata TEXT NOT NULL,
    registered_at    REAL NOT NULL,
    expires_at       REAL NOT NULL,
    PRIMARY KEY (service, version, node_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS nodes_expires_at ON nodes (expires_at);
"""

_COLUMNS = (
    "service, version, node_id, address, node_metadata, endpoints, service_metadata, registered_at"
)

_T = TypeVar("_T")
_Row = tuple[str, str, Node, tuple[Endpoint, ...], Mapping[str, str], float]


class RegistryBusy(RegistryError):
    """The database stayed locked by other writers for longer than the busy timeout."""


class RegistryCorrupt(RegistryError):
    """The database file is not a (readable) SQLite database."""


_POSIX = hasattr(os, "getuid") and hasattr(os, "lstat")


def _uid() -> str:
    getuid = getattr(os, "getuid", None)
    if getuid is not None:
        return str(getuid())
    import getpass  # Windows: no uids

    return getpass.getuser()


def default_path() -> Path:
    """``<tempfile.gettempdir()>/micro-<uid>/registry.db``."""
    return Path(tempfile.gettempdir()) / f"micro-{_uid()}" / "registry.db"


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


#: a watcher re-reads the rows at least this often even when nothing seems to change
#: (it then also reopens its connection, in case the database file was replaced)
FULL_READ_INTERVAL = 5.0


class _PollWatcher(Watcher):
    """Polls the database and diffs consecutive snapshots.

    A poll re-reads the rows only if something can have changed since the last read:
    another connection committed (``PRAGMA data_version`` on the watcher's connection
    moved) or a lease in the snapshot ran out. Otherwise it costs one pragma, not a
    query plus JSON parsing (which, four times a second, showed in clients' tail latency).
    """

    def __init__(
        self,
        registry: LocalRegistry,
        service: str | None,
        interval: float,
        baseline: dict[Key, ServiceRecord] | None,
    ) -> None:
        self._registry = registry
        self.service = service
        self._interval = interval
        self._last = baseline
        self._pending: collections.deque[Event] = collections.deque()
        self._stopped = False
        self._wake = asyncio.Event()
        # The connection is used by _probe in a worker thread, under _conn_lock; whoever
        # holds the lock once the watcher is stopped closes it (a cancelled poll's thread
        # runs on, so stop() cannot always do it).
        self._conn_lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._data_version = -1
        self._next_expiry = 0.0  # wall clock: the earliest lease in the last snapshot
        self._read_at = -FULL_READ_INTERVAL  # time.monotonic() of the last full read

    async def __anext__(self) -> Event:
        while True:
            if self._stopped:
                raise StopAsyncIteration
            if self._pending:
                return self._pending.popleft()
            if self._last is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._interval)
                if self._stopped:
                    continue
            try:
                snapshot = await asyncio.to_thread(self._probe)
            except RegistryBusy as exc:  # transient: other processes are writing
                log.debug("registry watch poll skipped: %s", exc)
                continue
            if snapshot is None:
                continue
            if self._last is not None:
                self._pending.extend(diff_snapshots(self._last, snapshot))
            self._last = snapshot

    def _probe(self) -> dict[Key, ServiceRecord] | None:
        with self._conn_lock:
            try:
                return self._probe_locked()
            finally:
                if self._stopped:
                    self._close()

    def _probe_locked(self) -> dict[Key, ServiceRecord] | None:
        """A new snapshot, or ``None`` if nothing can have changed since the last one."""
        registry = self._registry
        now = time.monotonic()
        try:
            if self._conn is not None and now - self._read_at < FULL_READ_INTERVAL:
                version = self._conn.execute("PRAGMA data_version").fetchone()[0]
                if version == self._data_version and time.time() < self._next_expiry:
                    return None
            self._close()
            registry._ensure_schema()
            conn = self._conn = registry._open()
            self._data_version = conn.execute("PRAGMA data_version").fetchone()[0]
            snapshot = registry._read(conn, self.service)
            self._next_expiry = registry._next_expiry(conn, self.service)
        except sqlite3.Error as exc:
            self._close()
            error = registry._error(exc)
            if isinstance(error, RegistryCorrupt) and registry._quarantine(error):
                return None  # recreated: the next poll reads the new database
            raise error from exc
        except RegistryCorrupt as exc:
            self._close()
            if registry._quarantine(exc):
                return None
            raise
        self._read_at = now
        return snapshot

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            self._registry._watchers.discard(self)
            self._wake.set()
            if self._conn_lock.acquire(blocking=False):  # else the running poll closes it
                try:
                    self._close()
                finally:
                    self._conn_lock.release()

    @property
    def stopped(self) -> bool:
        return self._stopped


class LocalRegistry(AsyncClosing):
    """Cross-process registry backed by SQLite; see the module docstring.

    ``path``: database file (or a directory, which gets ``registry.db`` inside);
    default :func:`default_path`. ``default_ttl``: lease used when ``register`` gets
    ``ttl=None``. ``poll_interval``: watch polling period. ``busy_timeout``: how long a
    write waits for other processes' writes before failing with :class:`RegistryBusy`.

    Every operation runs in a worker thread (``asyncio.to_thread``) with its own
    short-lived connection: SQLite calls are usually sub-millisecond, but a write may
    wait up to ``busy_timeout`` for another process's transaction, and a slow disk or
    fsync must not stall the event loop. Per-operation connections keep threads and
    forked processes from ever sharing a connection.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        default_ttl: float = DEFAULT_TTL,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    ) -> None:
        ttl = check_ttl(default_ttl)  # never None: dead processes must expire
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be positive, got {poll_interval!r}")
        if busy_timeout < 0:
            raise ValueError(f"busy_timeout must be >= 0, got {busy_timeout!r}")
        self._is_default_path = path is None
        p = default_path() if path is None else Path(os.fspath(path)).expanduser()
        with contextlib.suppress(OSError):  # unreadable (another user's): reported on use
            if p.is_dir():
                p = p / "registry.db"
        self.path: Path = p
        self.default_ttl: float = ttl
        self.poll_interval = float(poll_interval)
        self.busy_timeout = float(busy_timeout)
        self._init_lock = threading.Lock()
        self._initialized = False
        #: (st_dev, st_ino) of the database file the schema was checked on
        self._identity: tuple[int, int] | None = None
        self._read_only = False
        #: time.monotonic() when this process found the database deleted, replaced or
        #: corrupted and started over (0: never)
        self._healed_at = 0.0
        self._closed = False
        self._watchers: set[_PollWatcher] = set()

    def __repr__(self) -> str:
        return f"LocalRegistry({str(self.path)!r}, default_ttl={self.default_ttl})"

    # -- database plumbing (runs in worker threads) -----------------------------

    def _error(self, exc: BaseException) -> RegistryError:
        msg = str(exc)
        low = msg.lower()
        where = f"registry database {str(self.path)!r}"
        hint = "set MICRO_REGISTRY_PATH (or pass path=) to use another file"
        if "locked" in low or "busy" in low:
            return RegistryBusy(
                f"{where} stayed locked by other processes for more than "
                f"{self.busy_timeout:g}s ({msg})"
            )
        if "not a database" in low or "malformed" in low or "corrupt" in low:
            return RegistryCorrupt(
                f"{where} is corrupted or is not a SQLite database ({msg}); "
                f"delete it (it only holds leases that services re-create) or {hint}"
            )
        if "readonly" in low or "read-only" in low:
            return RegistryError(f"{where} is read-only ({msg}); {hint}")
        if "unable to open" in low or isinstance(exc, OSError):
            return RegistryError(
                f"cannot open {where} ({msg}); check that its directory exists and is "
                f"writable, or {hint}"
            )
        return RegistryError(f"{where}: {msg}")

    def _prepare_dir(self) -> None:
        directory = self.path.parent
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            st = os.lstat(directory)
        except OSError as exc:
            raise self._error(exc) from exc
        if not self._is_default_path or not _POSIX:
            return  # a path of the user's choosing: its directory is theirs to secure
        # The default lives in a shared temp dir, where another user can plant a directory
        # (or a link to one of theirs) before we create ours: refuse anything unexpected.
        where = f"registry directory {str(directory)!r}"
        workaround = "or set MICRO_REGISTRY_PATH to a file in a directory of your own"
        if stat.S_ISLNK(st.st_mode):
            raise RegistryError(
                f"{where} is a symbolic link (to {os.readlink(directory)!r}), which another "
                f"user may have planted; remove it (rm {str(directory)!r}) {workaround}"
            )
        if not stat.S_ISDIR(st.st_mode):
            raise RegistryError(f"{where} is not a directory; remove it {workaround}")
        if st.st_uid != os.getuid():
            raise RegistryError(
                f"{where} is owned by uid {st.st_uid}, not by this user ({os.getuid()}); "
                f"remove it (as its owner or root) {workaround}"
            )
        if stat.S_IMODE(st.st_mode) & 0o077:
            raise RegistryError(
                f"{where} has mode {stat.S_IMODE(st.st_mode):04o}, open to other users; "
                f"make it private (chmod 700 {str(directory)!r}) {workaround}"
            )

    def _check_file(self) -> tuple[int, int] | None:
        """lstat the database file: ``(st_dev, st_ino)``, or ``None`` if it is missing.
        Refuses a link, a non-file, another user's file or one others may write; notes
        whether it is read-only for us."""
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._error(exc) from exc
        where = f"registry database {str(self.path)!r}"
        hint = "or set MICRO_REGISTRY_PATH to use another file"
        if stat.S_ISLNK(st.st_mode):
            raise RegistryError(
                f"{where} is a symbolic link (to {os.readlink(self.path)!r}); "
                f"remove it (it only holds leases that services re-create) {hint}"
            )
        if not stat.S_ISREG(st.st_mode):
            raise RegistryError(f"{where} is not a regular file; remove it {hint}")
        if _POSIX:
            if st.st_uid != os.getuid():
                raise RegistryError(
                    f"{where} is owned by uid {st.st_uid}, not by this user ({os.getuid()}); "
                    f"remove it {hint}"
                )
            if stat.S_IMODE(st.st_mode) & 0o022:
                raise RegistryError(
                    f"{where} has mode {stat.S_IMODE(st.st_mode):04o}: other users may "
                    f"write it; chmod 600 {str(self.path)!r} {hint}"
                )
            self._read_only = not (st.st_mode & stat.S_IWUSR)
        else:
            self._read_only = not os.access(self.path, os.W_OK)
        return (st.st_dev, st.st_ino)

    def _create_file(self) -> None:
        """Create the database file private (0600), never through a link."""
        flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0)
        try:
            os.close(os.open(self.path, flags, 0o600))
        except FileExistsError:
            pass  # another process was first: _check_file judges it
        except OSError as exc:
            raise self._error(exc) from exc

    def _quarantine(self, error: RegistryError) -> bool:
        """Move a corrupted database aside (``<name>.corrupt``) so the next operation
        creates a new one; False if it cannot (read-only, or another user's)."""
        with self._init_lock:
            try:
                identity = self._check_file()
            except RegistryError:
                return False
            if identity is None:
                self._initialized = False  # already moved (another process): recreate
                return True
            if self._read_only:
                return False
            try:  # still corrupt? another process may have recreated it meanwhile
                conn = sqlite3.connect(self.path, timeout=self.busy_timeout)
                try:
                    conn.execute("PRAGMA user_version").fetchone()
                    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                finally:
                    conn.close()
                self._initialized = False
                return True
            except sqlite3.DatabaseError:
                pass
            aside = self.path.with_name(self.path.name + ".corrupt")
            try:
                os.replace(self.path, aside)
                for suffix in ("-wal", "-shm"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(f"{self.path}{suffix}")
            except OSError:
                return False
            self._initialized = False
            self._healed_at = time.monotonic()
            log.warning(
                "%s; moved it to %s and started a new one (running services re-register "
                "on their next heartbeat)",
                str(error).split(";")[0],
                aside,
            )
            return True

    def _open(self, busy_timeout: float | None = None) -> sqlite3.Connection:
        timeout = self.busy_timeout if busy_timeout is None else busy_timeout
        # isolation_level=None: autocommit; transactions are explicit BEGIN IMMEDIATE.
        if self._read_only:
            return sqlite3.connect(
                self.path.absolute().as_uri() + "?mode=ro",
                uri=True,
                timeout=timeout,
                isolation_level=None,
                check_same_thread=False,
            )
        return sqlite3.connect(
            self.path, timeout=timeout, isolation_level=None, check_same_thread=False
        )

    @contextlib.contextmanager
    def _connect(self, busy_timeout: float | None = None) -> Iterator[sqlite3.Connection]:
        try:
            conn = self._open(busy_timeout)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        try:
            yield conn
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        finally:
            conn.close()

    def _enable_wal(self, conn: sqlite3.Connection) -> None:
        """Switch the database to WAL (persistent; the first process to open it wins).

        Changing the journal mode does not go through SQLite's busy handler, so when
        several processes create the database at once the switch can fail with
        "database is locked"; retry until it is WAL or busy_timeout has passed.
        """
        deadline = time.monotonic() + max(self.busy_timeout, 0.1)
        delay = 0.005
        while True:
            try:
                mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
                if mode != "wal":
                    mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc).lower() or time.monotonic() >= deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
                continue
            if mode != "wal":  # e.g. a filesystem without shared-memory support
                log.warning("registry %s: journal_mode is %s, not wal", self.path, mode)
            return

    def _ensure_schema(self) -> None:
        if self._initialized:
            identity = self._check_file()  # one lstat per operation: deleted? replaced?
            if identity is not None and identity == self._identity:
                return
        with self._init_lock:
            if self._initialized:
                identity = self._check_file()
                if identity is not None and identity == self._identity:
                    return
                log.warning(
                    "registry database %s was %s while in use; %s it (running services "
                    "re-register on their next heartbeat)",
                    self.path,
                    "deleted" if identity is None else "replaced",
                    "recreating" if identity is None else "reopening",
                )
                self._initialized = False
                self._healed_at = time.monotonic()
            self._prepare_dir()
            if self._check_file() is None:
                self._create_file()
            identity = self._check_file()
            if self._read_only:
                with self._connect() as conn:
                    version = conn.execute("PRAGMA user_version").fetchone()[0]
                self._check_version(version)
                self._identity, self._initialized = identity, True
                return
            with self._connect() as conn:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                self._check_version(version)
                self._enable_wal(conn)
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for stmt in _SCHEMA.split(";"):
                        if stmt.strip():
                            conn.execute(stmt)
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            self._identity, self._initialized = identity, True

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise RegistryError(
                f"registry database {str(self.path)!r} has schema version {version}, "
                f"newer than this runtime supports ({SCHEMA_VERSION})"
            )

    def _run(
        self,
        fn: Callable[[sqlite3.Connection], _T],
        busy_timeout: float | None = None,
        *,
        write: bool = False,
    ) -> _T:
        if self._closed:
            raise RegistryClosed("registry is closed")
        for attempt in range(2):
            try:
                self._ensure_schema()
                if write and self._read_only:
                    raise RegistryError(
                        f"registry database {str(self.path)!r} is read-only for this user: "
                        "lookups work but services cannot register; make it writable "
                        f"(chmod 600 {str(self.path)!r}) or set MICRO_REGISTRY_PATH to "
                        "use another file"
                    )
                with self._connect(busy_timeout) as conn:
                    if not self._read_only:
                        conn.execute("PRAGMA synchronous = NORMAL")  # durable enough in WAL
                    return fn(conn)
            except RegistryCorrupt as exc:
                if attempt or not self._quarantine(exc):
                    raise
        raise AssertionError("unreachable")

    async def _call(self, fn: Callable[[sqlite3.Connection], _T], *, write: bool = False) -> _T:
        if self._closed:
            raise RegistryClosed("registry is closed")
        return await asyncio.to_thread(self._run, fn, write=write)

    @staticmethod
    def _purge(conn: sqlite3.Connection, now: float) -> None:
        conn.execute("DELETE FROM nodes WHERE expires_at <= ?", (now,))

    def _parse(self, row: tuple[Any, ...]) -> _Row | None:
        service, version, node_id, address, node_md, endpoints, service_md, stamp = row
        try:
            node = Node(id=node_id, address=address, metadata=FrozenMap(json.loads(node_md)))
            eps = tuple(Endpoint.from_dict(e) for e in json.loads(endpoints))
            md = FrozenMap(json.loads(service_md))
        except (ValueError, TypeError) as exc:
            log.warning(
                "registry %s: skipping unreadable row for %s/%s: %s",
                self.path,
                service,
                node_id,
                exc,
            )
            return None
        return (service, version, node, eps, md, float(stamp))

    def _read(self, conn: sqlite3.Connection, service: str | None) -> dict[Key, ServiceRecord]:
        now = time.time()
        if service is None:
            cur = conn.execute(f"SELECT {_COLUMNS} FROM nodes WHERE expires_at > ?", (now,))
        else:
            cur = conn.execute(
                f"SELECT {_COLUMNS} FROM nodes WHERE service = ? AND expires_at > ?",
                (service, now),
            )
        rows = [p for p in map(self._parse, cur.fetchall()) if p is not None]
        return group_records(rows)

    @staticmethod
    def _next_expiry(conn: sqlite3.Connection, service: str | None) -> float:
        """Wall clock of the earliest lease still running (``inf`` if none)."""
        now = time.time()
        if service is None:
            cur = conn.execute("SELECT MIN(expires_at) FROM nodes WHERE expires_at > ?", (now,))
        else:
            cur = conn.execute(
                "SELECT MIN(expires_at) FROM nodes WHERE service = ? AND expires_at > ?",
                (service, now),
            )
        earliest = cur.fetchone()[0]
        return math.inf if earliest is None else float(earliest)

    def _read_and_purge(
        self, conn: sqlite3.Connection, service: str | None
    ) -> dict[Key, ServiceRecord]:
        snapshot = self._read(conn, service)
        now = time.time()
        if conn.execute(
            "SELECT EXISTS (SELECT 1 FROM nodes WHERE expires_at <= ?)", (now,)
        ).fetchone()[0]:
            # Opportunistic: never wait for other writers just to garbage-collect.
            conn.execute("PRAGMA busy_timeout = 0")
            try:
                self._purge(conn, now)
            except sqlite3.OperationalError:
                pass
        return snapshot

    # -- Registry ---------------------------------------------------------------

    async def register(self, service: ServiceRecord, *, ttl: float | None = None) -> None:
        lease = self.default_ttl if ttl is None else check_ttl(ttl)
        if not service.nodes:
            raise ValueError(f"cannot register service {service.name!r}: the record has no nodes")
        endpoints = _dumps([e.to_dict() for e in service.endpoints])
        service_md = _dumps(dict(service.metadata))

        def do(conn: sqlite3.Connection) -> None:
            now = time.time()
            params = [
                (
                    service.name,
                    service.version,
                    n.id,
                    n.address,
                    _dumps(dict(n.metadata)),
                    endpoints,
                    service_md,
                    now,
                    now + lease,
                )
                for n in service.nodes
            ]
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._purge(conn, now)
                conn.executemany(
                    "INSERT INTO nodes (service, version, node_id, address, node_metadata, "
                    "endpoints, service_metadata, registered_at, expires_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (service, version, node_id) DO UPDATE SET "
                    "address = excluded.address, node_metadata = excluded.node_metadata, "
                    "endpoints = excluded.endpoints, "
                    "service_metadata = excluded.service_metadata, "
                    "registered_at = excluded.registered_at, expires_at = excluded.expires_at",
                    params,
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        await self._call(do, write=True)

    async def deregister(self, service: ServiceRecord) -> None:
        def do(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(
                    "DELETE FROM nodes WHERE service = ? AND version = ? AND node_id = ?",
                    [(service.name, service.version, n.id) for n in service.nodes],
                )
                self._purge(conn, time.time())
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        await self._call(do, write=True)

    @property
    def heal_grace(self) -> float:
        """How long after starting a database over a missing service is "not yet
        re-registered" rather than "not found": two heartbeats of the default TTL."""
        return 2 * self.default_ttl / 3

    async def get_service(self, name: str) -> list[ServiceRecord]:
        snapshot = await self._call(lambda conn: self._read_and_purge(conn, name))
        if not snapshot:
            since = time.monotonic() - self._healed_at
            if self._healed_at and since < self.heal_grace:
                # A RegistryError, not NotFound: clients keep the nodes they knew until
                # the services' next heartbeat re-registers them.
                raise RegistryError(
                    f"registry database {str(self.path)!r} was started over {since:.1f}s "
                    f"ago; {name!r} has not re-registered yet (services do on their next "
                    "heartbeat)"
                )
            raise NotFound(name)
        return list(snapshot.values())

    async def list_services(self) -> list[ServiceRecord]:
        snapshot = await self._call(lambda conn: self._read_and_purge(conn, None))
        return list(snapshot.values())

    def _quick_baseline(self, service: str | None) -> dict[Key, ServiceRecord] | None:
        try:
            uri = self.path.resolve().as_uri() + "?mode=ro"
            if not self.path.exists():
                return {}
        except OSError:  # e.g. another user's directory: the first real read reports it
            return None
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=0.05, check_same_thread=False)
        except sqlite3.Error:
            return None
        try:
            return self._read(conn, service)
        except sqlite3.OperationalError as exc:
            return {} if "no such table" in str(exc) else None
        except sqlite3.Error:
            return None
        finally:
            conn.close()

    def watch(self, service: str | None = None) -> Watcher:
        """Poll-based watcher. The baseline snapshot is read synchronously here so that
        changes made right after ``watch()`` returns are reported: it is one indexed
        SELECT on a local file, and WAL readers do not wait for writers. If it cannot
        be read quickly the baseline is taken on the first poll instead."""
        if self._closed:
            raise RegistryClosed("registry is closed")
        baseline = self._quick_baseline(service)
        watcher = _PollWatcher(self, service, self.poll_interval, baseline)
        self._watchers.add(watcher)
        return watcher

    async def close(self) -> None:
        """Stops watchers; further calls raise RegistryClosed. Registered nodes stay
        until deregistered or expired (the database is shared with other processes)."""
        self._closed = True
        for watcher in list(self._watchers):
            watcher.stop()
