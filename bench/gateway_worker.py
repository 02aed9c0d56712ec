"""Processes of the gateway benchmark (`bench.gateway`).

    python -m bench.gateway_worker serve NAME            # a `library` node; prints READY
    python -m bench.gateway_worker load direct NAME C DURATION WARMUP
    python -m bench.gateway_worker load http URL C DURATION WARMUP

`load` runs C concurrent callers of Library.GetBook for DURATION seconds (after WARMUP) and
prints one JSON line: requests/s and latency percentiles in milliseconds. `direct` calls
through a micro client (registry lookup, gRPC); `http` calls `GET /v1/shelves/1/books/1`
through `micro api` over keep-alive HTTP/1.1 connections (h11).
"""

from __future__ import annotations

import asyncio
import json
import signal
import statistics
import sys
import time
import urllib.parse
from collections.abc import Awaitable, Callable

import h11

import micro
from golden.gateway.v1 import Author, Book, Genre, GetBookRequest
from golden.gateway.v1.gateway_micro import LibraryClient, LibraryHandler, register_library_handler

PATH = "/v1/shelves/1/books/1"


class Library(LibraryHandler):
    async def get_book(self, request: GetBookRequest, context: micro.Context) -> Book:
        return Book(
            name=request.name,
            title="The Analytical Engine",
            author=Author(display_name="Ada Lovelace"),
            page_count=123,
            genre=Genre.FICTION,
            tags=["classic", "math"],
        )


async def serve(name: str) -> None:
    service = micro.Service(name)
    register_library_handler(service, Library())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with service:
        print(f"READY {service.address}", flush=True)
        await stop.wait()


async def _drive(
    call: Callable[[], Awaitable[None]], concurrency: int, duration: float, warmup: float
) -> dict[str, float]:
    latencies: list[float] = []
    measuring = False

    async def worker(until: float) -> None:
        while (now := time.perf_counter()) < until:
            await call()
            if measuring:
                latencies.append(time.perf_counter() - now)

    await asyncio.gather(*(worker(time.perf_counter() + warmup) for _ in range(concurrency)))
    measuring = True
    started = time.perf_counter()
    await asyncio.gather(*(worker(started + duration) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "mean_ms": statistics.fmean(latencies) * 1000,
        "requests": float(len(latencies)),
    }


async def load(mode: str, target: str, concurrency: int, duration: float, warmup: float) -> None:
    if mode == "direct":
        async with micro.Client() as client:
            library = LibraryClient(target, client=client)
            request = GetBookRequest(name="shelves/1/books/1")

            async def direct() -> None:
                await library.get_book(request, timeout=30)

            result = await _drive(direct, concurrency, duration, warmup)
    else:
        url = urllib.parse.urlsplit(target)
        idle = [await _Http11.open(url.hostname or "", url.port or 80) for _ in range(concurrency)]
        status, body = await idle[0].get(PATH)
        if status != 200 or json.loads(body).get("title") != "The Analytical Engine":
            raise RuntimeError(f"{status}: {body[:300]!r}")

        async def via_gateway() -> None:
            http = idle.pop()  # one keep-alive connection per concurrent caller
            try:
                status, body = await http.get(PATH)
            finally:
                idle.append(http)
            if status != 200:
                raise RuntimeError(f"{status}: {body[:300]!r}")

        result = await _drive(via_gateway, concurrency, duration, warmup)
        for http in idle:
            http.close()
    print(json.dumps(result), flush=True)


class _Http11:
    """A keep-alive HTTP/1.1 connection parsed with h11. httpx, measured first, cost the
    load process more CPU than the gateway it was measuring."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        self._conn = h11.Connection(h11.CLIENT)
        self._host = "{}:{}".format(*writer.get_extra_info("peername")[:2])

    @classmethod
    async def open(cls, host: str, port: int) -> _Http11:
        return cls(*await asyncio.open_connection(host, port))

    async def get(self, path: str) -> tuple[int, bytes]:
        request = h11.Request(method="GET", target=path, headers=[("host", self._host)])
        self._writer.write(self._conn.send(request) + (self._conn.send(h11.EndOfMessage()) or b""))
        status, body = 0, bytearray()
        while True:
            event = self._conn.next_event()
            if event is h11.NEED_DATA:
                self._conn.receive_data(await self._reader.read(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                self._conn.start_next_cycle()
                return status, bytes(body)
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("the gateway closed the connection")

    def close(self) -> None:
        self._writer.close()


def main(argv: list[str]) -> None:
    if argv[:1] == ["serve"]:
        asyncio.run(serve(argv[1]))
    elif argv[:1] == ["load"]:
        mode, target, c, duration, warmup = argv[1:6]
        asyncio.run(load(mode, target, int(c), float(duration), float(warmup)))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
