"""Standard gRPC on the wire: grpcio stubs call micro, and micro calls a grpcio server."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import pytest

import micro
import micro.transport
from golden.streaming.v1 import ChatMessage, CountRequest, EchoRequest, SumRequest
from golden.streaming.v1.streaming_micro import StreamerClient
from tests.cluster import Cluster

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pb2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ModuleType, ModuleType]]:
    """grpcio-tools' own stubs for streaming.proto, made by real protoc."""
    out = tmp_path_factory.mktemp("pb2")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{ROOT / 'example_protos'}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            "streaming/v1/streaming.proto",
        ],
        check=True,
    )
    sys.path.insert(0, str(out))
    try:
        messages = importlib.import_module("streaming.v1.streaming_pb2")
        services = importlib.import_module("streaming.v1.streaming_pb2_grpc")
        yield messages, services
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == "streaming" or m.startswith("streaming.")]:
            del sys.modules[name]


TRANSPORTS = pytest.mark.parametrize("transport", sorted(micro.transport.backends()))


@TRANSPORTS
async def test_grpcio_client_calls_a_micro_service(
    cluster: Cluster,
    pb2: tuple[ModuleType, ModuleType],
    transport: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    messages, services = pb2
    monkeypatch.setenv("MICRO_TRANSPORT", transport)  # the service's, in its own process
    node = cluster.start("streamer", "a")
    async with grpc.aio.insecure_channel(node.address) as channel:
        stub = services.StreamerStub(channel)
        reply = await stub.Echo(
            messages.EchoRequest(text="hi"), metadata=(("x-user", "grpcio"),), timeout=5
        )
        assert reply.text == "hi from a"
        assert reply.metadata["x-user"] == "grpcio"

        counted = [r.n async for r in stub.Count(messages.CountRequest(to=4), timeout=5)]
        assert counted == [1, 2, 3, 4]

        async def values() -> AsyncIterator[Any]:
            for v in (5, 6, 7):
                yield messages.SumRequest(value=v)

        total = await stub.Sum(values(), timeout=5)
        assert (total.total, total.count) == (18, 3)

        chat = stub.Chat(timeout=5)
        await chat.write(messages.ChatMessage(text="x"))
        assert (await chat.read()).text == "echo: x"
        await chat.done_writing()
        assert await chat.read() == grpc.aio.EOF

        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.Echo(messages.EchoRequest(text="7", fail="not_found"), timeout=5)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        assert info.value.details() == "no such thing: 7"


class _Streamer:
    """A plain grpcio servicer, no micro anywhere."""

    def __init__(self, messages: ModuleType) -> None:
        self.m = messages

    async def Echo(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        if request.fail:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"grpcio says no: {request.text}")
        md = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        return self.m.EchoReply(text=f"{request.text} from grpcio", metadata=md)

    async def Put(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return self.m.EchoReply(text=f"{request.text} put on grpcio")

    async def Count(self, request: Any, context: Any) -> AsyncIterator[Any]:
        for n in range(1, request.to + 1):
            yield self.m.CountReply(n=n)

    async def Sum(self, requests: Any, context: Any) -> Any:
        total = count = 0
        async for r in requests:
            total += r.value
            count += 1
        return self.m.SumReply(total=total, count=count)

    async def Chat(self, requests: Any, context: Any) -> AsyncIterator[Any]:
        async for r in requests:
            yield self.m.ChatMessage(text=f"grpcio: {r.text}")


@TRANSPORTS
async def test_micro_client_calls_a_grpcio_server(
    pb2: tuple[ModuleType, ModuleType], transport: str
) -> None:
    messages, services = pb2
    server = grpc.aio.server()
    services.add_StreamerServicer_to_server(_Streamer(messages), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        wire = micro.transport.from_env({"MICRO_TRANSPORT": transport})
        async with micro.Client(transport=wire) as client:
            streamer = StreamerClient(address=f"127.0.0.1:{port}", client=client)
            reply = await streamer.echo(EchoRequest(text="hi"), metadata={"x-k": "v"}, timeout=5)
            assert reply.text == "hi from grpcio"
            assert reply.metadata["x-k"] == "v"
            assert (await streamer.put(EchoRequest(text="p"))).text == "p put on grpcio"
            assert [r.n async for r in streamer.count(CountRequest(to=3))] == [1, 2, 3]
            total = await streamer.sum([SumRequest(value=2), SumRequest(value=3)])
            assert (total.total, total.count) == (5, 2)
            async with streamer.chat() as chat:
                await chat.send(ChatMessage(text="q"))
                answer = await chat.recv()
                assert answer is not None and answer.text == "grpcio: q"
                await chat.close_send()
                assert [m async for m in chat] == []
            with pytest.raises(micro.errors.Error) as info:
                await streamer.echo(EchoRequest(text="9", fail="yes"))
            assert info.value.grpc_status.name == "NOT_FOUND"
            assert info.value.code == 404
            assert info.value.detail == "grpcio says no: 9"
    finally:
        await server.stop(None)
