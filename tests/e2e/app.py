"""Handlers and client calls for the end-to-end tests, written as a user would.

It is also the usage file that `mypy --strict` checks against golden/.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import micro
from golden.helloworld.v1 import HelloReply, HelloRequest
from golden.helloworld.v1.helloworld_micro import (
    GreeterClient,
    GreeterHandler,
    register_greeter_handler,
)
from golden.names.v1 import Client, Context
from golden.names.v1.names_micro import (
    KeywordsClient,
    KeywordsHandler,
    register_keywords_handler,
)
from golden.streaming.v1 import (
    ChatMessage,
    CountReply,
    CountRequest,
    EchoReply,
    EchoRequest,
    SumReply,
    SumRequest,
)
from golden.streaming.v1.streaming_micro import (
    StreamerClient,
    StreamerHandler,
    StreamerSyncClient,
    register_streamer_handler,
)


def note(event: str) -> None:
    """Record a server-side event where the test can read it."""
    path = os.environ.get("E2E_EVENTS")
    if path:
        with open(path, "a") as fh:
            fh.write(event + "\n")


class Streamer(StreamerHandler):
    def __init__(self, service_name: str, node: str) -> None:
        self.service_name = service_name
        self.node = node

    async def echo(self, request: EchoRequest, context: micro.Context) -> EchoReply:
        if request.sleep_ms:
            note(f"echo-sleeping {request.text}")
            note(f"ran {request.text} on {self.node}")  # the handler ran (counted by tests)
            try:
                await asyncio.sleep(request.sleep_ms / 1000)
            except asyncio.CancelledError:
                note(f"echo-cancelled {request.text}")
                raise
        if request.fail == "not_found":
            raise micro.errors.not_found(self.service_name, f"no such thing: {request.text}")
        if request.fail == "boom":
            raise RuntimeError("secret internal detail")
        if request.text.startswith("forward:"):
            downstream = StreamerClient(self.service_name)
            return await downstream.echo(EchoRequest(text=request.text.removeprefix("forward:")))
        remaining = context.time_remaining()
        return EchoReply(
            text=f"{request.text} from {self.node}",
            metadata={k: v for k, v in context.metadata.items() if isinstance(v, str)},
            peer=context.peer,
            deadline_remaining=-1.0 if remaining is None else remaining,
        )

    async def put(self, request: EchoRequest, context: micro.Context) -> EchoReply:
        """Echo, for an rpc marked IDEMPOTENT (a client may retry it after it was sent)."""
        return await self.echo(request, context)

    async def count(
        self, request: CountRequest, context: micro.Context
    ) -> AsyncIterator[CountReply]:
        try:
            for n in range(1, request.to + 1):
                if request.delay_ms:
                    await asyncio.sleep(request.delay_ms / 1000)
                yield CountReply(n=n)
        except asyncio.CancelledError:
            note("count-cancelled")
            raise

    async def sum(self, requests: AsyncIterator[SumRequest], context: micro.Context) -> SumReply:
        total = count = 0
        async for item in requests:
            total += item.value
            count += 1
        return SumReply(total=total, count=count)

    async def chat(
        self, requests: AsyncIterator[ChatMessage], context: micro.Context
    ) -> AsyncIterator[ChatMessage]:
        async for message in requests:
            yield ChatMessage(text=f"echo: {message.text}")


class Greeter(GreeterHandler):
    async def say_hello(self, request: HelloRequest, context: micro.Context) -> HelloReply:
        return HelloReply(message=f"Hello, {request.name}!")


class Keywords(KeywordsHandler):
    async def import_(self, request: Context, context: micro.Context) -> Client:
        return Client(value=f"import {request.value}")

    async def timeout(self, request: Context, context: micro.Context) -> Client:
        return Client(value=f"timeout {request.value}")


def build_service(name: str, node: str, **options: object) -> micro.Service:
    service = micro.Service(name, **options)  # type: ignore[arg-type]
    register_streamer_handler(service, Streamer(name, node))
    register_greeter_handler(service, Greeter())
    register_keywords_handler(service, Keywords())
    return service


# Client-side calls, one per kind, typed as a user would write them.


async def call_all_kinds(client: StreamerClient) -> tuple[str, list[int], int, list[str]]:
    reply = await client.echo(EchoRequest(text="hi"), timeout=5.0, metadata={"x-user": "ada"})
    counted = [r.n async for r in client.count(CountRequest(to=3))]
    total = await client.sum([SumRequest(value=v) for v in (1, 2, 3)])
    answers: list[str] = []
    async with client.chat() as chat:
        await chat.send(ChatMessage(text="a"))
        first = await chat.recv()
        answers.append(first.text if first else "")
        await chat.send(ChatMessage(text="b"))
        await chat.close_send()
        async for rest in chat:
            answers.append(rest.text)
    return reply.text, counted, total.total, answers


async def call_keywords(client: KeywordsClient) -> tuple[str, str]:
    a = await client.import_(Context(value="x"))
    b = await client.timeout(Context(value="y"), timeout=5.0)
    return a.value, b.value


async def greet(client: GreeterClient, name: str) -> str:
    return (await client.say_hello(HelloRequest(name=name))).message


def call_all_kinds_sync(client: StreamerSyncClient) -> tuple[str, list[int], int, list[str]]:
    reply = client.echo(EchoRequest(text="hi"), timeout=5.0, metadata={"x-user": "ada"})
    with client.count(CountRequest(to=3)) as counted:
        numbers = [r.n for r in counted]
    total = client.sum(SumRequest(value=v) for v in (1, 2, 3))
    answers: list[str] = []
    with client.chat(timeout=5.0) as chat:
        chat.send(ChatMessage(text="a"))
        first = chat.recv()
        answers.append(first.text if first else "")
        chat.send(ChatMessage(text="b"))
        chat.close_send()
        answers.extend(m.text for m in chat)
    return reply.text, numbers, total.total, answers
