"""The e2e service and calls with protobuf's `_pb2` messages (golden-pb2/), typed as a user
would write them; also the usage file `mypy --strict` checks against golden-pb2/."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from editions.v1 import editions_pb2
from editions.v1.editions_micro import CounterHandler, register_counter_handler
from streaming.v1 import streaming_pb2
from streaming.v1.streaming_micro import (
    StreamerClient,
    StreamerHandler,
    StreamerSyncClient,
    register_streamer_handler,
)

import micro


class Streamer(StreamerHandler):
    def __init__(self, node: str) -> None:
        self.node = node

    async def echo(
        self, request: streaming_pb2.EchoRequest, context: micro.Context
    ) -> streaming_pb2.EchoReply:
        if request.fail == "not_found":
            raise micro.errors.not_found("pb2", f"no such thing: {request.text}")
        if request.sleep_ms:
            await asyncio.sleep(request.sleep_ms / 1000)
        reply = streaming_pb2.EchoReply(text=f"{request.text} from {self.node}")
        for key, value in context.metadata.items():
            if isinstance(value, str):
                reply.metadata[key] = value
        return reply

    async def count(
        self, request: streaming_pb2.CountRequest, context: micro.Context
    ) -> AsyncIterator[streaming_pb2.CountReply]:
        for n in range(1, request.to + 1):
            yield streaming_pb2.CountReply(n=n)

    async def sum(
        self, requests: AsyncIterator[streaming_pb2.SumRequest], context: micro.Context
    ) -> streaming_pb2.SumReply:
        total = count = 0
        async for item in requests:
            total += item.value
            count += 1
        return streaming_pb2.SumReply(total=total, count=count)

    async def chat(
        self, requests: AsyncIterator[streaming_pb2.ChatMessage], context: micro.Context
    ) -> AsyncIterator[streaming_pb2.ChatMessage]:
        async for message in requests:
            yield streaming_pb2.ChatMessage(text=f"echo: {message.text}")


class Counter(CounterHandler):
    async def add(
        self, request: editions_pb2.Amount, context: micro.Context
    ) -> editions_pb2.Amount:
        return editions_pb2.Amount(value=request.value + 1, note=request.note)


def build_service(name: str, node: str) -> micro.Service:
    service = micro.Service(name)
    register_streamer_handler(service, Streamer(node))
    register_counter_handler(service, Counter())
    return service


async def call_all_kinds(client: StreamerClient) -> dict[str, object]:
    reply = await client.echo(
        streaming_pb2.EchoRequest(text="hi"), timeout=5.0, metadata={"x-user": "ada"}
    )
    counted = [r.n async for r in client.count(streaming_pb2.CountRequest(to=3))]
    total = await client.sum([streaming_pb2.SumRequest(value=v) for v in (1, 2, 3)])
    answers: list[str] = []
    async with client.chat() as chat:
        await chat.send(streaming_pb2.ChatMessage(text="a"))
        first = await chat.recv()
        answers.append(first.text if first else "")
        await chat.close_send()
        answers.extend([m.text async for m in chat])
    try:
        await client.echo(streaming_pb2.EchoRequest(text="9", fail="not_found"))
        error: object = None
    except micro.errors.Error as exc:
        error = [exc.id, exc.code, exc.detail, exc.grpc_status.name]
    return {
        "echo": reply.text,
        "metadata": reply.metadata.get("x-user", ""),
        "count": counted,
        "sum": total.total,
        "chat": answers,
        "error": error,
    }


def call_sync(client: StreamerSyncClient) -> dict[str, object]:
    reply = client.echo(streaming_pb2.EchoRequest(text="sync"))
    with client.count(streaming_pb2.CountRequest(to=2)) as stream:
        counted = [r.n for r in stream]
    return {"echo": reply.text, "count": counted}
