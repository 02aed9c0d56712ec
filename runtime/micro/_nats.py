"""One NATS connection per event loop, shared helper for the NATS registry and broker.

``nats-py`` is optional (``pip install 'micro-runtime[nats]'``); it is imported only
when a NATS backend is used, and a missing install is a one-line error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient

__all__ = ["DEFAULT_URL", "LoopConnection", "NatsUnavailable"]

log = logging.getLogger("micro.nats")

DEFAULT_URL = "nats://127.0.0.1:4222"


class NatsUnavailable(Exception):
    """nats-py is missing or the server cannot be reached."""


class LoopConnection:
    """Connects lazily, reconnects forever once connected, and starts over when used
    from a different event loop (e.g. after another ``asyncio.run``)."""

    def __init__(self, url: str | None, *, name: str, connect_timeout: float = 3.0) -> None:
        self.url = url or DEFAULT_URL
        self.name = name
        self.connect_timeout = connect_timeout
        self._nc: NatsClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        self.on_reconnect: list[Callable[[], Awaitable[None]]] = []

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected and self._fresh()

    def _fresh(self) -> bool:
        try:
            return self._loop is asyncio.get_running_loop()
        except RuntimeError:
            return False

    async def get(self) -> NatsClient:
        if self._nc is not None and self._fresh():
            return self._nc
        if not self._fresh():
            self._nc, self._lock = None, None
            self._loop = asyncio.get_running_loop()
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._nc is None:
                self._nc = await self._connect()
        return self._nc

    async def _connect(self) -> NatsClient:
        try:
            from nats.aio.client import Client
        except ImportError:
            raise NatsUnavailable(
                "the NATS backends need nats-py: pip install 'micro-runtime[nats]'"
            ) from None

        async def on_error(exc: Exception) -> None:
            log.debug("%s: nats: %s", self.name, exc)

        async def on_disconnect() -> None:
            log.info("%s: disconnected from NATS at %s", self.name, self.url)

        async def on_reconnect() -> None:
            log.info("%s: reconnected to NATS at %s", self.name, self.url)
            for callback in list(self.on_reconnect):
                try:
                    await callback()
                except Exception as exc:  # e.g. re-registering: retried, so one line
                    log.warning(
                        "%s: after reconnecting: %s", self.name, str(exc) or type(exc).__name__
                    )

        nc = Client()
        try:
            await asyncio.wait_for(
                nc.connect(
                    servers=[u.strip() for u in self.url.split(",")],
                    name=self.name,
                    error_cb=on_error,
                    disconnected_cb=on_disconnect,
                    reconnected_cb=on_reconnect,
                    connect_timeout=1,
                    reconnect_time_wait=0.25,  # type: ignore[arg-type]
                    max_reconnect_attempts=-1,
                    ping_interval=5,
                ),
                timeout=self.connect_timeout,
            )
        except Exception as exc:
            try:
                await nc.close()
            except Exception:
                pass
            raise NatsUnavailable(
                f"cannot reach NATS at {self.url} within {self.connect_timeout:g}s"
                + (f": {exc}" if str(exc) else "")
            ) from None
        return nc

    async def close(self) -> None:
        nc, self._nc = self._nc, None
        if nc is not None and self._fresh() and not nc.is_closed:
            try:
                await nc.close()
            except Exception:
                log.debug("%s: closing the NATS connection failed", self.name, exc_info=True)
