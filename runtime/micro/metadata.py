"""Request/response metadata (gRPC headers): the accepted input type and a read-only view.

Keys are lower-case ASCII; values are ``str``, or ``bytes`` for keys ending in ``-bin``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TypeAlias

__all__ = [
    "TRANSPORT_KEYS",
    "Metadata",
    "MetadataView",
    "Pairs",
    "is_transport_key",
    "is_valid",
    "redacted",
    "to_pairs",
]

#: what callers may pass as metadata
Metadata: TypeAlias = Mapping[str, str | bytes] | Sequence[tuple[str, str | bytes]]
#: the normalized form: an ordered list of (lower-case key, value)
Pairs: TypeAlias = list[tuple[str, str | bytes]]

#: headers owned by the transport; never propagated nor accepted as user metadata
TRANSPORT_KEYS = frozenset({"te", "content-type", "user-agent", "grpc-timeout"})


#: metadata whose values are credentials: shown as "<redacted>" in reprs
CREDENTIAL_KEYS = frozenset({"authorization", "proxy-authorization", "cookie"})


def redacted(pairs: Iterable[tuple[str, str | bytes]]) -> list[tuple[str, str | bytes]]:
    """``pairs`` for a repr or a log line: credential values replaced."""
    return [(k, "<redacted>" if k.lower() in CREDENTIAL_KEYS else v) for k, v in pairs]


_KEY_RE = re.compile(r"[0-9a-z_.\-]+")
_VALUE_RE = re.compile(r"[ !-~]+")


def is_transport_key(key: str) -> bool:
    """Pseudo-headers (``:authority``...), ``grpc-*``, ``te``, ``content-type``, ``user-agent``."""
    return key.startswith((":", "grpc-")) or key in TRANSPORT_KEYS


def is_valid(key: str, value: str | bytes) -> bool:
    """Whether (key, value) can be sent as gRPC metadata."""
    if not _KEY_RE.fullmatch(key) or is_transport_key(key):
        return False
    if key.endswith("-bin"):
        return isinstance(value, bytes)
    return isinstance(value, str) and _VALUE_RE.fullmatch(value) is not None


def to_pairs(metadata: Metadata | None) -> Pairs:
    """Normalize user metadata to (lower-case key, value) pairs, preserving order.

    Raises ``ValueError`` / ``TypeError`` for what gRPC cannot carry: keys outside
    ``[0-9a-z_.-]`` or owned by the transport, non-ASCII or empty text values, ``str`` values
    for ``-bin`` keys (which carry ``bytes``)."""
    if metadata is None:
        return []
    items: Iterable[tuple[str, str | bytes]]
    items = metadata.items() if isinstance(metadata, Mapping) else metadata
    out: Pairs = []
    for key, value in items:
        if not isinstance(key, str) or not isinstance(value, str | bytes):
            raise TypeError(f"metadata must be str -> str | bytes, got {key!r}: {value!r}")
        key = key.lower()
        if not _KEY_RE.fullmatch(key) or is_transport_key(key):
            raise ValueError(f"invalid metadata key: {key!r}")
        if key.endswith("-bin"):
            if not isinstance(value, bytes):
                raise TypeError(f"metadata key {key!r} ends with -bin: its value must be bytes")
        elif not isinstance(value, str) or not _VALUE_RE.fullmatch(value):
            raise ValueError(
                f"metadata value for {key!r} must be printable ASCII text "
                f"(use a '-bin' key for bytes), got {value!r}"
            )
        out.append((key, value))
    return out


class MetadataView(Mapping[str, str | bytes]):
    """Read-only, multi-valued metadata.

    ``view[key]`` / ``view.get(key)`` give the first value for ``key``,
    :meth:`get_all` every value, :meth:`pairs` every (key, value) in wire order.
    Iteration yields each distinct key once.
    """

    __slots__ = ("_indexed", "_pairs")

    def __init__(self, pairs: Iterable[tuple[str, str | bytes]] = ()) -> None:
        self._pairs: tuple[tuple[str, str | bytes], ...] = tuple((k.lower(), v) for k, v in pairs)
        self._indexed: dict[str, list[str | bytes]] | None = None

    @property
    def _index(self) -> dict[str, list[str | bytes]]:
        # built on first lookup: most calls' metadata is never looked at
        index = self._indexed
        if index is None:
            index = self._indexed = {}
            for k, v in self._pairs:
                index.setdefault(k, []).append(v)
        return index

    def __getitem__(self, key: str) -> str | bytes:
        return self._index[key.lower()][0]

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._index

    def get_all(self, key: str) -> list[str | bytes]:
        """Every value sent for ``key`` (``[]`` if none)."""
        return list(self._index.get(key.lower(), ()))

    def pairs(self) -> list[tuple[str, str | bytes]]:
        return list(self._pairs)

    def __repr__(self) -> str:
        return f"MetadataView({redacted(self._pairs)!r})"
