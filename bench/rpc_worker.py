"""One side of an RPC benchmark, in its own process.

    python -m bench.rpc_worker serve STACK GEN_DIR
        prints ``READY <target>`` (an address, or micro's registry name), serves until SIGTERM
    python -m bench.rpc_worker load STACK GEN_DIR TARGET --duration S --warmup S ...
        prints one JSON line of results

``GEN_DIR`` holds the code generated from bench/protos (see :mod:`bench.gen`): ``bp/bpgen``
(betterproto2 + micro) and ``pb/`` (``_pb2`` + micro, grpcio's ``_pb2_grpc``, grpclib's
``_grpc``).
Every stack serves the same three rpcs with the same handler logic.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# micro stacks run on grpcio (the default transport) unless named -grpclib
STACKS = (
    "micro",
    "micro-pb2",
    "micro-grpclib",
    "micro-grpclib-pb2",
    "grpclib-bp2",
    "grpclib-pb2",
    "grpcio-bp2",
    "grpcio-pb2",
)


def transport_options() -> Any:
    """``Service`` / ``Client`` ``transport_options`` for the bench's hardening modes
    (``BENCH_TRANSPORT_OPTIONS``): ``unbounded`` (no message limit, streams and resets as
    good as unlimited), ``gzip``, or unset (None: the library's defaults)."""
    mode = os.environ.get("BENCH_TRANSPORT_OPTIONS", "")
    if not mode:
        return None
    from micro.transport import TransportOptions

    if mode == "gzip":
        return TransportOptions(compression="gzip")
    if mode == "unbounded":
        many = 2**31 - 1
        return TransportOptions(
            max_receive_message_length=None, max_concurrent_streams=many,
            max_resets_per_connection=many,
        )  # fmt: skip
    raise SystemExit(f"BENCH_TRANSPORT_OPTIONS={mode!r}: unbounded or gzip")


def use_transport(stack: str) -> None:
    """A micro stack's transport, for every micro object this process builds."""
    if stack.startswith("micro"):
        os.environ["MICRO_TRANSPORT"] = "grpclib" if "grpclib" in stack else "grpcio"


SERVICE = "benchpb.v1.Bench"
PATHS = {name: f"/{SERVICE}/{name}" for name in ("Small", "Medium", "Stream")}

Call = Callable[[Any], Awaitable[Any]]
StreamCall = Callable[[Any], AsyncIterator[Any]]


@dataclass
class Messages:
    small: type[Any]
    medium: type[Any]
    stream_request: type[Any]
    item: type[Any]
    address: type[Any]
    package: str  # where the messages and their micro module (``bench_micro``) live


def load_messages(gen: Path, stack: str) -> Messages:
    if stack.endswith("pb2"):
        sys.path.insert(0, str(gen / "pb"))
        pb = importlib.import_module("benchpb.v1.bench_pb2")
        medium = pb.MediumMessage
        return Messages(
            pb.SmallMessage, medium, pb.StreamRequest, medium.Item, medium.Address, "benchpb.v1"
        )
    sys.path.insert(0, str(gen / "bp"))
    bp = importlib.import_module("bpgen.benchpb.v1")
    return Messages(
        bp.SmallMessage, bp.MediumMessage, bp.StreamRequest, bp.MediumMessageItem,
        bp.MediumMessageAddress, "bpgen.benchpb.v1",
    )  # fmt: skip


def medium_message(m: Messages) -> Any:
    """About 1 KB on the wire."""
    return m.medium(
        id="order-0123456789",
        created_at=1_700_000_000_000,
        active=True,
        address=m.address(street="1 Long Street Name", city="Somewhere", country="NL", zip=1234),
        items=[
            m.item(sku=f"SKU-{i:06d}", quantity=i, price=i * 1.25, tags=["red", "large", "sale"])
            for i in range(8)
        ],
        labels={f"label-{i}": f"value-{i}" for i in range(12)},
        counters=list(range(0, 4000, 97)),
        blob=bytes(range(256)),
    )


# -- servers --------------------------------------------------------------------------


class Logic:
    """The handler logic every stack runs."""

    def __init__(self, m: Messages) -> None:
        self.m = m

    def small(self, request: Any) -> Any:
        return self.m.small(name=request.name, id=request.id + 1)

    def medium(self, request: Any) -> Any:
        return request

    def stream_item(self, i: int) -> Any:
        return self.m.small(name="item", id=i)


async def serve_micro(gen: Path, logic: Logic, ready: Callable[[str], None]) -> None:
    import micro

    bench_micro = importlib.import_module(f"{logic.m.package}.bench_micro")

    class Handler(bench_micro.BenchHandler):  # type: ignore[misc,name-defined]
        async def small(self, request: Any, context: micro.Context) -> Any:
            return logic.small(request)

        async def medium(self, request: Any, context: micro.Context) -> Any:
            return logic.medium(request)

        async def stream(self, request: Any, context: micro.Context) -> AsyncIterator[Any]:
            for i in range(request.count):
                yield logic.stream_item(i)

    name = f"bench-{uuid.uuid4().hex[:8]}"
    service = micro.Service(name, transport_options=transport_options())
    bench_micro.register_bench_handler(service, Handler())
    async with service:
        ready(name)
        await _until_signal()


async def serve_grpclib(gen: Path, logic: Logic, ready: Callable[[str], None]) -> None:
    from grpclib.const import Cardinality, Handler
    from grpclib.server import Server, Stream

    m = logic.m

    async def small(stream: Stream[Any, Any]) -> None:
        request = await stream.recv_message()
        await stream.send_message(logic.small(request))

    async def medium(stream: Stream[Any, Any]) -> None:
        request = await stream.recv_message()
        await stream.send_message(logic.medium(request))

    async def streaming(stream: Stream[Any, Any]) -> None:
        request: Any = await stream.recv_message()
        for i in range(request.count):
            await stream.send_message(logic.stream_item(i))

    class Mapping:
        def __mapping__(self) -> dict[str, Handler]:
            return {
                PATHS["Small"]: Handler(small, Cardinality.UNARY_UNARY, m.small, m.small),
                PATHS["Medium"]: Handler(medium, Cardinality.UNARY_UNARY, m.medium, m.medium),
                PATHS["Stream"]: Handler(
                    streaming, Cardinality.UNARY_STREAM, m.stream_request, m.small
                ),
            }

    server = Server([Mapping()])
    await server.start("127.0.0.1", 0)
    port = server._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    ready(f"127.0.0.1:{port}")
    await _until_signal()
    server.close()
    await server.wait_closed()


async def serve_grpcio(gen: Path, logic: Logic, ready: Callable[[str], None]) -> None:
    import grpc

    m = logic.m

    async def small(request: Any, context: Any) -> Any:
        return logic.small(request)

    async def medium(request: Any, context: Any) -> Any:
        return logic.medium(request)

    async def streaming(request: Any, context: Any) -> AsyncIterator[Any]:
        for i in range(request.count):
            yield logic.stream_item(i)

    def unary(fn: Any, tp: type[Any]) -> Any:
        return grpc.unary_unary_rpc_method_handler(
            fn, request_deserializer=tp.FromString, response_serializer=tp.SerializeToString
        )

    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Small": unary(small, m.small),
            "Medium": unary(medium, m.medium),
            "Stream": grpc.unary_stream_rpc_method_handler(
                streaming,
                request_deserializer=m.stream_request.FromString,
                response_serializer=m.small.SerializeToString,
            ),
        },
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    ready(f"127.0.0.1:{port}")
    await _until_signal()
    await server.stop(0)


async def _until_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def serve(stack: str, gen: Path) -> None:
    use_transport(stack)
    logic = Logic(load_messages(gen, stack))

    def ready(target: str) -> None:
        print(f"READY {target}", flush=True)

    runner = {"micro": serve_micro, "grpclib": serve_grpclib, "grpcio": serve_grpcio}
    asyncio.run(runner[stack.split("-")[0]](gen, logic, ready))


# -- clients --------------------------------------------------------------------------


@dataclass
class Client:
    small: Call
    medium: Call
    stream: StreamCall
    close: Callable[[], Awaitable[None]]


async def micro_client(target: str, m: Messages) -> Client:
    import micro

    bench_micro = importlib.import_module(f"{m.package}.bench_micro")
    client = micro.Client(transport_options=transport_options())
    stub = bench_micro.BenchClient(target, client=client)
    return Client(stub.small, stub.medium, stub.stream, client.close)


async def grpclib_client(target: str, m: Messages) -> Client:
    from grpclib.client import Channel, UnaryStreamMethod, UnaryUnaryMethod

    host, port = target.rsplit(":", 1)
    channel = Channel(host, int(port))
    small: UnaryUnaryMethod[Any, Any] = UnaryUnaryMethod(channel, PATHS["Small"], m.small, m.small)
    medium: UnaryUnaryMethod[Any, Any] = UnaryUnaryMethod(
        channel, PATHS["Medium"], m.medium, m.medium
    )
    streaming: UnaryStreamMethod[Any, Any] = UnaryStreamMethod(
        channel, PATHS["Stream"], m.stream_request, m.small
    )

    async def stream(request: Any) -> AsyncIterator[Any]:
        async with streaming.open() as call:
            await call.send_message(request, end=True)
            async for reply in call:
                yield reply

    async def close() -> None:
        channel.close()

    return Client(small, medium, stream, close)


async def grpcio_client(target: str, m: Messages) -> Client:
    import grpc

    channel = grpc.aio.insecure_channel(target)

    def unary(name: str, tp: type[Any]) -> Call:
        return channel.unary_unary(  # type: ignore[no-any-return]
            PATHS[name],
            request_serializer=tp.SerializeToString,
            response_deserializer=tp.FromString,
        )

    streaming = channel.unary_stream(
        PATHS["Stream"],
        request_serializer=m.stream_request.SerializeToString,
        response_deserializer=m.small.FromString,
    )

    async def stream(request: Any) -> AsyncIterator[Any]:
        async for reply in streaming(request):
            yield reply

    async def close() -> None:
        await channel.close()

    return Client(unary("Small", m.small), unary("Medium", m.medium), stream, close)


async def closed_loop(
    call: Call, request: Any, concurrency: int, warmup: float, duration: float
) -> dict[str, float]:
    """``concurrency`` workers each call back to back; latencies after the warm-up count."""
    latencies: list[float] = []
    start = time.perf_counter()
    measure_from = start + warmup
    end = measure_from + duration
    clock = time.perf_counter

    async def worker() -> None:
        while True:
            t0 = clock()
            if t0 >= end:
                return
            await call(request)
            if t0 >= measure_from:
                latencies.append(clock() - t0)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = clock() - measure_from
    latencies.sort()
    n = len(latencies)
    return {
        "rps": n / elapsed,
        "p50_ms": latencies[n // 2] * 1000 if n else 0.0,
        "p99_ms": latencies[min(n - 1, (n * 99) // 100)] * 1000 if n else 0.0,
        "calls": n,
    }


async def load(args: argparse.Namespace) -> dict[str, Any]:
    use_transport(args.stack)
    m = load_messages(args.gen, args.stack)
    factory = {"micro": micro_client, "grpclib": grpclib_client, "grpcio": grpcio_client}
    client = await factory[args.stack.split("-")[0]](args.target, m)
    results: dict[str, Any] = {}
    payloads = {"small": (client.small, m.small(name="bench", id=42)), "medium": None}
    payloads["medium"] = (client.medium, medium_message(m))
    for size in args.sizes:
        call, request = payloads[size]  # type: ignore[misc]
        for concurrency in args.concurrency:
            results[f"unary/{size}/c{concurrency}"] = await closed_loop(
                call, request, concurrency, args.warmup, args.duration
            )
    if args.stream_count:
        request = m.stream_request(count=args.stream_count)
        async for _ in client.stream(m.stream_request(count=min(1000, args.stream_count))):
            pass  # warm-up
        started = time.perf_counter()
        received = 0
        async for _ in client.stream(request):
            received += 1
        elapsed = time.perf_counter() - started
        if received != args.stream_count:
            raise RuntimeError(f"stream: got {received} of {args.stream_count} messages")
        results["stream"] = {"mps": received / elapsed}
    await client.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("serve")
    s.add_argument("stack", choices=STACKS)
    s.add_argument("gen", type=Path)
    ld = sub.add_parser("load")
    ld.add_argument("stack", choices=STACKS)
    ld.add_argument("gen", type=Path)
    ld.add_argument("target")
    ld.add_argument("--duration", type=float, default=10.0)
    ld.add_argument("--warmup", type=float, default=1.0)
    ld.add_argument("--concurrency", type=int, nargs="+", default=[1, 64])
    ld.add_argument("--sizes", nargs="+", default=["small", "medium"])
    ld.add_argument("--stream-count", type=int, default=100_000)
    args = parser.parse_args()
    if args.mode == "serve":
        serve(args.stack, args.gen)
    else:
        print(json.dumps(asyncio.run(load(args))), flush=True)


if __name__ == "__main__":
    main()
