"""Data model, errors and protocols shared by every registry backend.

Everything here is re-exported from :mod:`micro.registry`; import it from there.
"""

from __future__ import annotations

import abc
import enum
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

__all__ = [
    "DEFAULT_TTL",
    "DEFAULT_VERSION",
    "Endpoint",
    "Event",
    "EventType",
    "FrozenMap",
    "Node",
    "NotFound",
    "Registry",
    "RegistryClosed",
    "RegistryError",
    "ServiceRecord",
    "Watcher",
    "check_ttl",
    "diff_snapshots",
    "group_records",
]

DEFAULT_VERSION = "latest"
#: seconds a node's lease lasts without a heartbeat, for services and broker subscriptions
DEFAULT_TTL = 15.0


class RegistryError(Exception):
    """The registry backend failed (unusable database path, closed registry, ...)."""


class RegistryClosed(RegistryError):
    """An operation was attempted on a registry after ``close()``."""


class NotFound(LookupError):
    """``get_service`` found no live node for the requested service name."""

    def __init__(self, service: str) -> None:
        super().__init__(f"service {service!r} not found in the registry")
        self.service = service


class FrozenMap(Mapping[str, str]):
    """An immutable, hashable ``str -> str`` mapping (compares equal to any equal Mapping)."""

    __slots__ = ("_data", "_hash")

    def __init__(self, data: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        items = dict(data)
        for k, v in items.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError(
                    f"metadata keys and values must be str, got {type(k).__name__}: "
                    f"{type(v).__name__} for key {k!r}"
                )
        self._data: dict[str, str] = dict(sorted(items.items()))
        self._hash: int | None = None

    @classmethod
    def of(cls, data: Mapping[str, str] | None) -> FrozenMap:
        if isinstance(data, FrozenMap):
            return data
        return cls(data or {})

    def __getitem__(self, key: str) -> str:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._data.items()))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenMap):
            return self._data == other._data
        if isinstance(other, Mapping):
            return self._data == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"

    def to_dict(self) -> dict[str, str]:
        return dict(self._data)


def _str_field(data: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise ValueError(f"field {key!r} must be a string, got {value!r}")
    return value


def _map_field(data: Mapping[str, Any], key: str) -> FrozenMap:
    value = data.get(key) or {}
    if not isinstance(value, Mapping):
        raise ValueError(f"field {key!r} must be an object, got {value!r}")
    try:
        return FrozenMap(value)
    except TypeError as exc:
        raise ValueError(f"field {key!r}: {exc}") from None


def _list_field(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = data.get(key) or []
    if not isinstance(value, list | tuple) or not all(isinstance(v, Mapping) for v in value):
        raise ValueError(f"field {key!r} must be a list of objects, got {value!r}")
    return list(value)


def _require_mapping(data: object, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ValueError(f"{what} must be an object, got {data!r}")
    return data


@dataclass(frozen=True)
class Node:
    """One running instance of a service: where to reach it."""

    id: str
    address: str
    metadata: Mapping[str, str] = field(default_factory=FrozenMap)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"Node.id must be a non-empty string, got {self.id!r}")
        if not isinstance(self.address, str) or not self.address:
            raise ValueError(f"Node.address must be a non-empty string, got {self.address!r}")
        object.__setattr__(self, "metadata", FrozenMap.of(self.metadata))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "address": self.address, "metadata": dict(self.metadata)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Node:
        data = _require_mapping(data, "node")
        return cls(
            id=_str_field(data, "id"),
            address=_str_field(data, "address"),
            metadata=_map_field(data, "metadata"),
        )


@dataclass(frozen=True)
class Endpoint:
    """One rpc method a service exposes (``name`` like ``"Greeter.SayHello"``)."""

    name: str
    path: str = ""
    kind: str = "unary"
    request: str = ""
    response: str = ""
    metadata: Mapping[str, str] = field(default_factory=FrozenMap)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Endpoint.name must be a non-empty string, got {self.name!r}")
        object.__setattr__(self, "metadata", FrozenMap.of(self.metadata))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "kind": self.kind,
            "request": self.request,
            "response": self.response,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Endpoint:
        data = _require_mapping(data, "endpoint")
        return cls(
            name=_str_field(data, "name"),
            path=_str_field(data, "path", ""),
            kind=_str_field(data, "kind", "unary"),
            request=_str_field(data, "request", ""),
            response=_str_field(data, "response", ""),
            metadata=_map_field(data, "metadata"),
        )


@dataclass(frozen=True)
class ServiceRecord:
    """A service name + version with its nodes, endpoints and metadata.

    ``nodes`` and ``endpoints`` are tuples and ``metadata`` a :class:`FrozenMap`, so
    records are hashable and compare by value. (Lists/dicts passed in are converted.)
    """

    name: str
    version: str = DEFAULT_VERSION
    nodes: tuple[Node, ...] = ()
    endpoints: tuple[Endpoint, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=FrozenMap)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"ServiceRecord.name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.version, str):
            raise ValueError(f"ServiceRecord.version must be a string, got {self.version!r}")
        nodes = tuple(self.nodes)
        endpoints = tuple(self.endpoints)
        if not all(isinstance(n, Node) for n in nodes):
            raise TypeError("ServiceRecord.nodes must contain Node instances")
        if not all(isinstance(e, Endpoint) for e in endpoints):
            raise TypeError("ServiceRecord.endpoints must contain Endpoint instances")
        object.__setattr__(self, "nodes", nodes)
        object.__setattr__(self, "endpoints", endpoints)
        object.__setattr__(self, "metadata", FrozenMap.of(self.metadata))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible dict (``json.dumps`` works on it)."""
        return {
            "name": self.name,
            "version": self.version,
            "nodes": [n.to_dict() for n in self.nodes],
            "endpoints": [e.to_dict() for e in self.endpoints],
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServiceRecord:
        """Inverse of :meth:`to_dict`; raises ValueError on malformed input."""
        data = _require_mapping(data, "service")
        return cls(
            name=_str_field(data, "name"),
            version=_str_field(data, "version", DEFAULT_VERSION),
            nodes=tuple(Node.from_dict(n) for n in _list_field(data, "nodes")),
            endpoints=tuple(Endpoint.from_dict(e) for e in _list_field(data, "endpoints")),
            metadata=_map_field(data, "metadata"),
        )


class EventType(enum.Enum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True)
class Event:
    """A change to one (service name, version).

    ``CREATE``: the version got its first live node; ``service`` is the full record.
    ``UPDATE``: nodes/endpoints/metadata changed; ``service`` is the full new record.
    ``DELETE``: the last node left (deregistered or expired); ``service`` is the last
    record seen before it went away.
    """

    type: EventType
    service: ServiceRecord


class Watcher(abc.ABC):
    """Async iterator of :class:`Event`; also an async context manager.

    Iteration ends (``StopAsyncIteration``) after :meth:`stop` or when the registry
    is closed. ``stop()`` is synchronous and idempotent.
    """

    def __aiter__(self) -> Self:
        return self

    @abc.abstractmethod
    async def __anext__(self) -> Event: ...

    @abc.abstractmethod
    def stop(self) -> None: ...

    @property
    @abc.abstractmethod
    def stopped(self) -> bool: ...

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@runtime_checkable
class Registry(Protocol):
    """Service discovery backend."""

    async def register(self, service: ServiceRecord, *, ttl: float | None = None) -> None:
        """Add or refresh the record's nodes; they expire ``ttl`` seconds later unless
        registered again (``None``: the backend's default TTL)."""
        ...

    async def deregister(self, service: ServiceRecord) -> None:
        """Remove the record's nodes (matched by name, version and node id)."""
        ...

    async def get_service(self, name: str) -> list[ServiceRecord]:
        """One record per live version, nodes merged; raises NotFound if none."""
        ...

    async def list_services(self) -> list[ServiceRecord]:
        """Every live (name, version), sorted."""
        ...

    def watch(self, service: str | None = None) -> Watcher:
        """Events for ``service`` (or all services) from now on."""
        ...

    async def close(self) -> None: ...


# -- helpers shared by the backends -------------------------------------------------


def check_ttl(ttl: float) -> float:
    """Validate a lease length in seconds."""
    if isinstance(ttl, bool) or not isinstance(ttl, int | float):
        raise TypeError(f"ttl must be a number of seconds or None, got {ttl!r}")
    if not math.isfinite(ttl) or ttl <= 0:
        raise ValueError(f"ttl must be a positive finite number of seconds, got {ttl!r}")
    return float(ttl)


Key = tuple[str, str]  # (service name, version)


def group_records(
    rows: Iterable[tuple[str, str, Node, tuple[Endpoint, ...], Mapping[str, str], float]],
) -> dict[Key, ServiceRecord]:
    """Merge per-node rows ``(name, version, node, endpoints, metadata, stamp)`` into one
    record per (name, version). Endpoints/metadata come from the row with the highest
    ``stamp`` (the most recent registration); nodes are sorted by id."""
    nodes: dict[Key, dict[str, Node]] = {}
    latest: dict[Key, tuple[float, tuple[Endpoint, ...], Mapping[str, str]]] = {}
    for name, version, node, endpoints, metadata, stamp in rows:
        key = (name, version)
        nodes.setdefault(key, {})[node.id] = node
        cur = latest.get(key)
        if cur is None or stamp >= cur[0]:
            latest[key] = (stamp, endpoints, metadata)
    out: dict[Key, ServiceRecord] = {}
    for key in sorted(nodes):
        _, endpoints, metadata = latest[key]
        out[key] = ServiceRecord(
            name=key[0],
            version=key[1],
            nodes=tuple(nodes[key][i] for i in sorted(nodes[key])),
            endpoints=endpoints,
            metadata=metadata,
        )
    return out


def diff_snapshots(
    old: Mapping[Key, ServiceRecord], new: Mapping[Key, ServiceRecord]
) -> list[Event]:
    """Events turning snapshot ``old`` into ``new`` (both keyed by (name, version))."""
    events: list[Event] = []
    for key in sorted(old.keys() | new.keys()):
        before, after = old.get(key), new.get(key)
        if before is None and after is not None:
            events.append(Event(EventType.CREATE, after))
        elif before is not None and after is None:
            events.append(Event(EventType.DELETE, before))
        elif before is not None and after is not None and before != after:
            events.append(Event(EventType.UPDATE, after))
    return events
