"""The per-request :class:`Context` and its propagation to downstream calls.

While a handler runs, its Context is the *current* one (a :mod:`contextvars`
variable, so tasks the handler spawns inherit it). Calls made through
:class:`micro.Client` inside a handler then

* inherit its deadline: the effective deadline is ``min(handler deadline, now + timeout)``;
* propagate its request metadata, minus transport headers (pseudo-headers,
  ``grpc-*``, ``te``, ``content-type``, ``user-agent``); metadata passed explicitly
  to the call replaces inherited values for the same key.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from micro.metadata import Metadata, MetadataView, Pairs, is_valid, to_pairs
from micro.spec import AnyMethod

__all__ = ["Context", "current", "outgoing_deadline", "outgoing_metadata", "use"]


class Context:
    """What a handler knows about the request it is serving.

    * ``metadata``: the request metadata (read-only, multi-valued);
    * ``deadline``: absolute :func:`time.monotonic` deadline, or ``None``;
    * ``peer``: the caller's ``host:port`` (``""`` if unknown);
    * ``method``: the :class:`~micro.spec.Method` being served.

    Response metadata: :meth:`set_header` (sent before the first response message)
    and :meth:`set_trailer` (sent with the status at the end).
    """

    __slots__ = (
        "_header",
        "_header_sent",
        "_peer",
        "_trailer",
        "deadline",
        "metadata",
        "method",
    )

    def __init__(
        self,
        method: AnyMethod,
        *,
        metadata: MetadataView | Metadata | None = None,
        deadline: float | None = None,
        peer: str | Callable[[], str] = "",
    ) -> None:
        self.method = method
        if metadata is None or isinstance(metadata, MetadataView):
            self.metadata = metadata if metadata is not None else MetadataView()
        else:
            self.metadata = MetadataView(
                metadata.items() if isinstance(metadata, Mapping) else metadata
            )
        self.deadline = deadline
        self._peer = peer  # a callable is resolved on first use (servers look it up lazily)
        self._header: Pairs = []
        self._trailer: Pairs = []
        self._header_sent = False

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
        if self._header_sent:
            raise RuntimeError("response headers were already sent")
        self._header.extend(to_pairs([(key, value)]))

    def set_trailer(self, key: str, value: str | bytes) -> None:
        """Add response trailer metadata, sent with the final status (also on errors)."""
        self._trailer.extend(to_pairs([(key, value)]))

    def _take_header(self) -> Pairs:
        self._header_sent = True
        return list(self._header)

    def _take_trailer(self) -> Pairs:
        return list(self._trailer)

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


def outgoing_metadata(metadata: Metadata | None) -> Pairs:
    """Metadata for a call started now: the current request's (propagated) + ``metadata``."""
    explicit = to_pairs(metadata)
    ctx = current()
    if ctx is None:
        return explicit
    override = {k for k, _ in explicit}
    inherited = [(k, v) for k, v in ctx.metadata.pairs() if k not in override and is_valid(k, v)]
    return inherited + explicit
