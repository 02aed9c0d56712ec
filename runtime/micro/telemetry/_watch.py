"""The end of a client stream, for the spans and metrics that last as long as it does.

A streaming call's client middleware returns once the stream is open (see
:mod:`micro.client`); what it returns is the open call (an
:class:`~micro.transport.OutboundCall`) that :mod:`micro.streams` reads and closes.
:func:`watch` wraps it so that the middleware learns when the call ends, once: the
server ended it (``recv()`` returned ``None``: status OK), it failed (the error ``recv``,
``send`` or ``end`` raised), or it was closed before either (``aclose()``: the caller left
the stream early, or dropped it, and the call was cancelled).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from micro.errors import Error

__all__ = ["Ended", "WatchedCall", "watch"]

#: called once when the call ends: ``None`` for OK, else what it failed with
#: (:class:`asyncio.CancelledError` for a call closed before its end)
Ended = Callable[[BaseException | None], None]


class WatchedCall:
    """An open client stream that calls ``ended`` when the call ends (module docs)."""

    __slots__ = ("_ended", "_inner")

    def __init__(self, inner: Any, ended: Ended) -> None:
        self._inner = inner
        self._ended: Ended | None = ended

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _end(self, exc: BaseException | None) -> None:
        ended, self._ended = self._ended, None
        if ended is not None:
            ended(exc)

    async def send(self, message: Any, *, end: bool = False) -> None:
        try:
            await self._inner.send(message, end=end)
        except Error as exc:  # the call failed (an encoding mistake does not end it)
            self._end(exc)
            raise

    async def end(self) -> None:
        try:
            await self._inner.end()
        except Error as exc:
            self._end(exc)
            raise

    async def recv(self) -> Any:
        try:
            item = await self._inner.recv()
        except Exception as exc:  # the call's error, or a reply that cannot be decoded
            self._end(exc)
            raise
        if item is None:  # the server ended the call with OK
            self._end(None)
        return item

    async def aclose(self) -> None:
        if self._ended is not None:  # closed before its end: cancelled
            self._end(asyncio.CancelledError())
        await self._inner.aclose()


def watch(result: Any, ended: Ended, wrap: Callable[[Any, Ended], Any] = WatchedCall) -> Any:
    """A streaming call's middleware result, watched until the call ends: a bidi call's
    open call, or a server-streaming call's ``(call, first message)``, whose call has
    already ended (OK) when there is no first message. ``wrap`` makes the watched call
    (a :class:`WatchedCall` or a subclass of it)."""
    if isinstance(result, tuple):
        call, first = result
        if first is None:
            ended(None)
            return result
        return (wrap(call, ended), first)
    return wrap(result, ended)
