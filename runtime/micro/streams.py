"""Client-side streaming call objects returned by :class:`micro.Stub` methods.

Both are async context managers; leaving the block (or ``aclose()``) cancels the call
if it has not completed (the server handler sees ``CancelledError``). A call also
opens lazily on first use, so plain ``async for`` works. A call its caller abandons is
cancelled too: ``break`` (or an exception) out of ``async for`` over a
:class:`ServerStream` cancels it as the loop's iterator is dropped, and a stream object
of either kind that is dropped (garbage collected) while its call runs cancels the call
on its event loop. ``async with`` does it at a known point, which is what to prefer.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from micro._requests import wrong_request
from micro.metadata import MetadataView
from micro.spec import AnyMethod
from micro.transport.base import OutboundCall

__all__ = ["BidiStream", "ServerStream"]

Req = TypeVar("Req")
Resp = TypeVar("Resp")

#: opens the call (with retries and middleware) -> (open call, first message or None)
ServerStreamOpener = Callable[[], Awaitable[tuple[OutboundCall, Any]]]
BidiOpener = Callable[[], Awaitable[OutboundCall]]


#: cancellations of dropped streams still running (a task needs a strong reference)
_abandoned: set[asyncio.Task[None]] = set()


def _cancel_abandoned(call: OutboundCall, loop: asyncio.AbstractEventLoop) -> None:
    """A stream object was dropped while its call ran: cancel the call on its loop.

    Runs from the garbage collector (any thread, any moment), so it only schedules."""

    def cancel() -> None:
        task = loop.create_task(call.aclose())
        _abandoned.add(task)
        task.add_done_callback(_abandoned.discard)

    try:
        loop.call_soon_threadsafe(cancel)
    except RuntimeError:  # the loop is closed: its connections, and the call, are gone
        pass


class _CallStream:
    """What both stream kinds share: the open call, its metadata, and ``async with``."""

    _call: OutboundCall | None = None
    _finalizer: weakref.finalize[Any, Any] | None = None

    def _opened(self, call: OutboundCall) -> OutboundCall:
        """Keep the open call; dropping this stream from now on cancels it."""
        self._call = call
        self._finalizer = weakref.finalize(
            self, _cancel_abandoned, call, asyncio.get_running_loop()
        )
        self._finalizer.atexit = False
        return call

    def _closing(self) -> None:
        finalizer, self._finalizer = self._finalizer, None
        if finalizer is not None:
            finalizer.detach()

    async def _open(self) -> OutboundCall:
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError

    @property
    def headers(self) -> MetadataView | None:
        """Response headers (after the stream was opened)."""
        return None if self._call is None else self._call.headers

    @property
    def trailers(self) -> MetadataView | None:
        """Response trailers (after the stream ended)."""
        return None if self._call is None else self._call.trailers

    async def __aenter__(self) -> Self:
        await self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class ServerStream(_CallStream, AsyncIterator[Resp], Generic[Resp]):
    """Responses of a server-streaming call: ``async for item in stream``.

    Opening (on ``__aenter__`` or the first ``__anext__``) sends the request and waits
    for the first response message, so connection failures and early errors surface
    there, and are retried on another node when possible.
    """

    def __init__(self, opener: ServerStreamOpener) -> None:
        self._opener = opener
        self._call: OutboundCall | None = None
        self._first: Any = None
        self._has_first = False
        self._done = False

    async def _open(self) -> OutboundCall:
        if self._call is None:
            if self._done:
                raise RuntimeError("stream is closed")
            call, self._first = await self._opener()
            self._has_first = True
            return self._opened(call)
        return self._call

    def __aiter__(self) -> AsyncIterator[Resp]:
        """The remaining responses; leaving the loop early (``break``, an exception)
        cancels the call, once the loop lets go of this iterator."""
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Resp]:
        if self._done:
            return
        try:
            call = await self._open()
            if self._has_first:
                self._has_first = False
                item = self._first
                self._first = None
                if item is None:
                    return
                yield item
            while True:
                item = await call.recv()
                if item is None:
                    return
                yield item
        finally:
            await self.aclose()

    async def __anext__(self) -> Resp:
        if self._done:
            raise StopAsyncIteration
        try:
            call = await self._open()
            if self._has_first:
                self._has_first = False
                item = self._first
                self._first = None
            else:
                item = await call.recv()
        except BaseException:
            await self.aclose()
            raise
        if item is None:
            await self.aclose()
            raise StopAsyncIteration
        return item  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        """Cancel the call if it is still running; idempotent."""
        self._done = True
        self._has_first = False
        self._closing()
        if self._call is not None:
            await self._call.aclose()


class BidiStream(_CallStream, Generic[Req, Resp]):
    """A bidirectional-streaming call; use as ``async with stub.chat() as stream``.

    :meth:`send` and :meth:`recv` interleave freely (also from two tasks).
    :meth:`recv` returns ``None`` once the server ended the stream with an OK status
    (an error status raises :class:`micro.errors.Error`); ``async for`` iterates the
    remaining responses. :meth:`close_send` half-closes the request side.
    """

    def __init__(self, opener: BidiOpener, *, method: AnyMethod | None = None) -> None:
        self._opener = opener
        self._method = method
        self._call: OutboundCall | None = None
        self._send_closed = False
        self._done = False
        self._closed = False

    async def _open(self) -> OutboundCall:
        if self._call is None:
            if self._done:
                raise RuntimeError("stream is closed")
            return self._opened(await self._opener())
        return self._call

    async def send(self, message: Req) -> None:
        if self._closed:
            raise RuntimeError("stream is closed")
        if self._send_closed:
            raise RuntimeError("send after close_send()")
        method = self._method
        if method is not None and not isinstance(message, method.request_type):
            raise wrong_request(method, message)
        call = await self._open()
        await call.send(message)

    async def close_send(self) -> None:
        """Half-close: tell the server no more requests follow. Idempotent."""
        if self._send_closed or self._closed:
            return
        call = await self._open()
        self._send_closed = True
        await call.end()

    async def recv(self) -> Resp | None:
        """The next response, or ``None`` when the server ended the stream."""
        if self._done:
            return None
        call = await self._open()
        item = await call.recv()
        if item is None:
            self._done = True
        return item

    def __aiter__(self) -> AsyncIterator[Resp]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Resp]:
        while True:
            item = await self.recv()
            if item is None:
                return
            yield item

    async def aclose(self) -> None:
        """Cancel the call if it is still running; idempotent."""
        self._done = True
        self._closed = True
        self._closing()
        if self._call is not None:
            await self._call.aclose()
