"""Synchronous clients, for WSGI apps, scripts and notebooks.

A sync client drives the async runtime on one background event loop per process (a
daemon thread), so it shares everything with the async client: discovery, selector,
retries, deadlines, metadata propagation and error mapping. Each call is one hop to
that loop and back. Sync clients may be used from any number of threads at once.

The requests of a client-streaming call are iterated on the background loop: pass a
list or a generator that does not block for long.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading
from collections.abc import Coroutine, Iterable, Iterator
from concurrent.futures import Future
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from micro.client import Client
from micro.metadata import Metadata
from micro.spec import Method, Req, Resp
from micro.streams import BidiStream, ServerStream
from micro.stub import Stub

__all__ = ["SyncBidiStream", "SyncServerStream", "SyncStub", "run"]

T = TypeVar("T")


class _BackgroundLoop:
    """The process's one event loop for sync clients, started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Client | None = None

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                threading.Thread(target=run, name="micro-sync", daemon=True).start()
                ready.wait()
                self._loop = loop
            return self._loop

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        loop = self.loop()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            coro.close()
            raise RuntimeError("a sync micro client was called from its own background loop")
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # KeyboardInterrupt in the caller cancels the call
            raise

    def client(self) -> Client:
        """The sync clients' default client; it lives on the background loop."""
        with self._lock:
            if self._client is None:
                self._client = Client()
                atexit.register(self._shutdown)
            return self._client

    def _shutdown(self) -> None:
        loop, client = self._loop, self._client
        if loop is None or client is None or loop.is_closed():
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(client.close(), loop).result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)


_BACKGROUND = _BackgroundLoop()


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on the sync clients' background loop, e.g. ``run(client.close())``
    for a :class:`micro.Client` you passed to sync clients."""
    return _BACKGROUND.run(coro)


class SyncStub:
    """Base of generated sync clients: ``GreeterSyncClient("helloworld")``, or
    ``address="host:port"``. Like :class:`micro.Stub`, all its own names start with ``_``."""

    __slots__ = ("_stub",)

    def __init__(
        self,
        service: str | None = None,
        /,
        *,
        address: str | None = None,
        client: Client | None = None,
    ) -> None:
        self._stub = Stub(service, address=address, client=client or _BACKGROUND.client())

    def _unary(
        self,
        method: Method[Req, Resp],
        request: Req,
        /,
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> Resp:
        return _BACKGROUND.run(
            self._stub._unary(method, request, timeout=timeout, metadata=metadata)
        )

    def _server_stream(
        self,
        method: Method[Req, Resp],
        request: Req,
        /,
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> SyncServerStream[Resp]:
        async def open_stream() -> ServerStream[Resp]:
            return self._stub._server_stream(method, request, timeout=timeout, metadata=metadata)

        return SyncServerStream(_BACKGROUND.run(open_stream()))

    def _client_stream(
        self,
        method: Method[Req, Resp],
        requests: Iterable[Req],
        /,
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> Resp:
        return _BACKGROUND.run(
            self._stub._client_stream(method, requests, timeout=timeout, metadata=metadata)
        )

    def _bidi_stream(
        self,
        method: Method[Req, Resp],
        /,
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> SyncBidiStream[Req, Resp]:
        async def open_stream() -> BidiStream[Req, Resp]:
            return self._stub._bidi_stream(method, timeout=timeout, metadata=metadata)

        return SyncBidiStream(_BACKGROUND.run(open_stream()))

    def __repr__(self) -> str:
        return repr(self._stub).replace(type(self._stub).__name__, type(self).__name__, 1)


class _SyncCall:
    """``with`` support shared by both sync stream kinds: leaving cancels the call."""

    def _async_call(self) -> ServerStream[Any] | BidiStream[Any, Any]:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Cancel the call if it is still running; idempotent."""
        _BACKGROUND.run(self._async_call().aclose())


class SyncServerStream(_SyncCall, Iterator[Resp], Generic[Resp]):
    """Responses of a server-streaming call: ``for item in stream``."""

    def __init__(self, stream: ServerStream[Resp]) -> None:
        self._stream = stream

    def _async_call(self) -> ServerStream[Resp]:
        return self._stream

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> Resp:
        async def step() -> tuple[bool, Resp | None]:
            try:
                return True, await self._stream.__anext__()
            except StopAsyncIteration:
                return False, None

        more, item = _BACKGROUND.run(step())
        if not more:
            raise StopIteration
        return item  # type: ignore[return-value]  # set whenever ``more`` is true


class SyncBidiStream(_SyncCall, Generic[Req, Resp]):
    """A bidi call: ``send``/``recv`` interleave (also from two threads); ``recv`` returns
    ``None`` once the server ended the stream; ``close_send`` half-closes."""

    def __init__(self, stream: BidiStream[Req, Resp]) -> None:
        self._stream = stream

    def _async_call(self) -> BidiStream[Req, Resp]:
        return self._stream

    def __enter__(self) -> Self:
        _BACKGROUND.run(self._stream.__aenter__())
        return self

    def send(self, message: Req) -> None:
        _BACKGROUND.run(self._stream.send(message))

    def recv(self) -> Resp | None:
        return _BACKGROUND.run(self._stream.recv())

    def close_send(self) -> None:
        _BACKGROUND.run(self._stream.close_send())

    def __iter__(self) -> Iterator[Resp]:
        while (item := self.recv()) is not None:
            yield item
