"""A bare HTTP/2 peer (h2 over asyncio streams) for probing servers the way a hostile or
broken client would: frames a gRPC library would never send."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import h2.config
import h2.connection
import h2.events


def grpc_headers(path: str, *extra: tuple[str, str]) -> list[tuple[str, str]]:
    return [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "127.0.0.1"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
        *extra,
    ]


class RawClient:
    """One HTTP/2 connection to ``127.0.0.1:port``, driven frame by frame."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.events: list[Any] = []
        self.closed = False

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer)
        client.h2.initiate_connection()
        await client.flush()
        return client

    async def flush(self) -> None:
        data = self.h2.data_to_send()
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def write_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_until(self, done: Callable[[list[Any]], bool], timeout: float = 10.0) -> None:
        """Read and process frames until ``done(self.events)`` or the connection closes."""
        async with asyncio.timeout(timeout):
            while not done(self.events):
                data = await self.reader.read(65536)
                if not data:
                    self.closed = True
                    return
                self.events.extend(self.h2.receive_data(data))
                await self.flush()

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def headers_of(self, stream_id: int) -> dict[str, str]:
        found: dict[str, str] = {}
        for event in self.events:
            if (
                isinstance(event, h2.events.ResponseReceived | h2.events.TrailersReceived)
                and event.stream_id == stream_id
            ):
                found.update({_s(k): _s(v) for k, v in event.headers})
        return found

    async def aclose(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass


def _s(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


@asynccontextmanager
async def bare_server(
    on_event: Callable[[h2.connection.H2Connection, Any], None],
    hangups: list[float] | None = None,
) -> AsyncIterator[str]:
    """A bare HTTP/2 server on 127.0.0.1 (its ``host:port`` yielded), calling
    ``on_event(connection, event)`` for each h2 event and noting in ``hangups`` when a
    peer closed its connection; on exit it waits for its peers to hang up (a few seconds
    at most)."""
    tasks: list[asyncio.Task[Any]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.append(task)
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        try:
            while data := await reader.read(65536):
                for event in conn.receive_data(data):
                    on_event(conn, event)
                writer.write(conn.data_to_send())
            if hangups is not None:
                hangups.append(time.monotonic())
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=5)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
