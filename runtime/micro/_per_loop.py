"""Objects kept one per event loop (the default client and broker), closed with the loop.

A default is built on first use in a loop. It holds that loop's connections and tasks
(grpcio channels and servers, NATS connections), which must be closed while the loop
still runs: left to the garbage collector or to interpreter exit, they are torn down
after the loop and the libraries under them are gone. So each default is closed when its
loop shuts down: ``asyncio.run`` (and ``asyncio.Runner``) close the async generators
still open as their last step, before they close the loop, and each default has one.
A loop closed without ``loop.shutdown_asyncgens()`` leaves its defaults as before.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["PerLoop"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class PerLoop(Generic[T]):
    """One ``T`` per running event loop: ``build()`` on first use, ``close(item)`` when
    that loop shuts down."""

    def __init__(self, build: Callable[[], T], close: Callable[[T], Awaitable[None]]) -> None:
        self._build = build
        self._close = close
        self._lock = threading.Lock()
        # the loop's async generator holds the item; the loop holds the generator weakly
        self._items: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[T, AsyncGenerator[None, None]]
        ] = weakref.WeakKeyDictionary()

    def get(self) -> T:
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._items.get(loop)
            if entry is None:
                item = self._build()
                entry = self._items[loop] = (item, self._closed_with(loop, item))
            return entry[0]

    def _closed_with(self, loop: asyncio.AbstractEventLoop, item: T) -> AsyncGenerator[None, None]:
        async def until_shutdown() -> AsyncGenerator[None, None]:
            try:
                yield
            finally:
                with self._lock:
                    if self._items.get(loop, (None,))[0] is item:
                        del self._items[loop]
                try:
                    await self._close(item)
                except Exception as exc:  # the loop is ending: one line, not a traceback
                    log.warning("closing %r as its event loop ended failed: %s", item, exc)

        closer = until_shutdown()
        # Its first step registers it with the running loop (asyncio's first-iteration
        # hook) and stops at the yield: no await is in between, so it runs here, at once.
        step = closer.__anext__()
        try:
            step.send(None)
        except StopIteration:
            pass
        return closer
