"""Processes of the gateway benchmark (`bench.gateway`).

    python -m bench.gateway_worker serve NAME            # a `library` node; prints READY
    python -m bench.gateway_worker load direct NAME C DURATION WARMUP
    python -m bench.gateway_worker load http URL C DURATION WARMUP

`load` runs C concurrent callers of Library.GetBook for DURATION seconds (after WARMUP) and
prints one JSON line: requests/s and latency percentiles in milliseconds. `direct` calls
through a micro client (registry lookup, gRPC); `http` calls `GET /v1/shelves/1/books/1`
through `micro api` with httpx.
"""

from __future__ import annotations

import asyncio
import json
import signal
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

import httpx

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
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=target, timeout=30, limits=limits) as http:

            async def via_gateway() -> None:
                response = await http.get(PATH)
                if response.status_code != 200:
                    raise RuntimeError(f"{response.status_code}: {response.text}")

            result = await _drive(via_gateway, concurrency, duration, warmup)
    print(json.dumps(result), flush=True)


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
