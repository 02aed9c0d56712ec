"""The per-request :class:`Context` and its propagation to downstream calls.

While a handler runs, its Context is the *current* one (a :mod:`contextvars`
variable, so tasks the handler spawns inherit it). Calls made through
:class:`micro.Client` inside a handler then

* inherit its deadline: the effective deadline is ``min(handler deadline, now + timeout)``;
* propagate its request metadata, minus transport headers (pseudo-headers,
  ``grpc-*``, ``te``, ``content-type``, ``user-agent``) and minus ``authorization``
  unless the client forwards tokens (``micro.Client(forward_token=True)``, see
  :mod:`micro.auth`); metadata passed explicitly to the call replaces inherited values
  for the same key.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from micro.metadata import Metadata, MetadataView, Pairs, is_valid, to_pairs
from micro.spec import AnyMethod

if TYPE_CHECKING:
    from micro.auth._types import Account

__all__ = [
    "Context",
    "ResponseMetadata",
    "current",
    "outgoing_deadline",
    "outgoing_metadata",
    "use",
]


class ResponseMetadata:
    """The metadata a call answers with: headers, sent once before the first response
    message (or with an error status, if no message was sent), and trailers, sent with
    the final status. The server side sends it; handlers add to it through their
    :class:`Context` (``set_header`` / ``set_trailer``) or ``context.response``."""

    __slots__ = ("_headers", "_headers_sent", "_trailers", "compression")

    def __init__(self) -> None:
        self._headers: Pairs = []
        self._trailers: Pairs = []
        self._headers_sent = False
        #: this reply's encoding (``"gzip"`` / ``"identity"``), ``None``: the service's
        self.compression: str | None = None

    @property
    def headers_sent(self) -> bool:
        return self._headers_sent

    def add_header(self, key: str, value: str | bytes) -> None:
        """Add a header; only before the headers are sent."""
        if self._headers_sent:
            raise RuntimeError("response headers were already sent")
        self._headers.extend(to_pairs([(key, value)]))

    def add_trailer(self, key: str, value: str | bytes) -> None:
        self._trailers.extend(to_pairs([(key, value)]))

    def send_headers(self) -> Pairs:
        """The headers, now marked as sent (what the server sends with the first message)."""
        self._headers_sent = True
        return list(self._headers)

    @property
    def trailers(self) -> Pairs:
        return list(self._trailers)


class Context:
    """What a handler knows about the request it is serving.

    * ``metadata``: the request metadata (read-only, multi-valued);
    * ``deadline``: absolute :func:`time.monotonic` deadline, or ``None``;
    * ``peer``: the caller's ``host:port`` (``""`` if unknown);
    * ``method``: the :class:`~micro.spec.Method` being served;
    * ``account``: the :class:`micro.auth.Account` the call's token proved, on a service
      with auth (``None`` without auth, or on a public endpoint called without a token).

    Response metadata (``response``, a :class:`ResponseMetadata`): :meth:`set_header`
    (sent before the first response message) and :meth:`set_trailer` (sent with the
    status at the end).
    """

    __slots__ = ("_metadata", "_peer", "account", "deadline", "method", "response")

    def __init__(
        self,
        method: AnyMethod,
        *,
        metadata: MetadataView | Metadata | Callable[[], MetadataView] | None = None,
        deadline: float | None = None,
        peer: str | Callable[[], str] = "",
    ) -> None:
        self.method = method
        self._metadata: MetadataView | Callable[[], MetadataView]
        if metadata is None or isinstance(metadata, MetadataView) or callable(metadata):
            # a callable is resolved on first use: most handlers never read the metadata
            self._metadata = metadata if metadata is not None else MetadataView()
        else:
            self._metadata = MetadataView(
                metadata.items() if isinstance(metadata, Mapping) else metadata
            )
        self.deadline = deadline
        self._peer = peer  # a callable is resolved on first use (servers look it up lazily)
        self.response = ResponseMetadata()
        self.account: Account | None = None

    @property
    def metadata(self) -> MetadataView:
        metadata = self._metadata
        if not isinstance(metadata, MetadataView):
            metadata = self._metadata = metadata()
        return metadata

    @property
    def peer(self) -> str:
        peer = self._peer
        if not isinstance(peer, str):
            peer = self._peer = peer()
        return peer

    def time_remaining(self) -> float | None:
        """Seconds left until the deadline (>= 0), or ``None`` without a deadline."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())

    def set_header(self, key: str, value: str | bytes) -> None:
        """Add response header metadata; only before the first response message is sent."""
        self.response.add_header(key, value)

    def set_trailer(self, key: str, value: str | bytes) -> None:
        """Add response trailer metadata, sent with the final status (also on errors)."""
        self.response.add_trailer(key, value)

    def set_compression(self, encoding: str) -> None:
        """Compress this call's replies with ``encoding`` (``"gzip"`` or ``"identity"``)
        instead of the service's default, where the client accepts it; only before the
        first response message is sent."""
        if encoding not in ("gzip", "identity"):
            raise ValueError(f"compression must be gzip or identity, not {encoding!r}")
        if self.response.headers_sent:
            raise RuntimeError("response headers were already sent")
        self.response.compression = encoding

    def __repr__(self) -> str:
        return (
            f"Context(method={self.method.name!r}, peer={self.peer!r}, "
            f"deadline={self.deadline!r}, metadata={self.metadata!r})"
        )


_current: contextvars.ContextVar[Context | None] = contextvars.ContextVar(
    "micro_context", default=None
)


def current() -> Context | None:
    """The Context of the handler currently running in this task, if any."""
    return _current.get()


@contextmanager
def use(ctx: Context | None) -> Iterator[None]:
    """Make ``ctx`` the current Context for the duration of the block."""
    token = set_current(ctx)
    try:
        yield
    finally:
        reset_current(token)


def set_current(ctx: Context | None) -> contextvars.Token[Context | None]:
    return _current.set(ctx)


def reset_current(token: contextvars.Token[Context | None]) -> None:
    _current.reset(token)


def outgoing_deadline(timeout: float | None) -> float | None:
    """Absolute deadline for a call started now: ``min(current deadline, now + timeout)``."""
    deadline = None if timeout is None else time.monotonic() + timeout
    ctx = current()
    if ctx is not None and ctx.deadline is not None:
        deadline = ctx.deadline if deadline is None else min(deadline, ctx.deadline)
    return deadline


#: the request metadata a handler's calls pass on only when told to (a bearer token)
CREDENTIAL_KEYS = frozenset({"authorization"})


def outgoing_metadata(metadata: Metadata | None, *, forward_token: bool = False) -> Pairs:
    """Metadata for a call started now: the current request's (propagated) + ``metadata``.
    The request's ``authorization`` is propagated only with ``forward_token``."""
    explicit = to_pairs(metadata)
    ctx = current()
    if ctx is None:
        return explicit
    override = {k for k, _ in explicit}
    if not forward_token:
        override |= CREDENTIAL_KEYS
    inherited = [(k, v) for k, v in ctx.metadata.pairs() if k not in override and is_valid(k, v)]
    return inherited + explicit
