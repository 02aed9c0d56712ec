"""A stream its caller abandons is cancelled on the server, on both transports: ``break``
or an exception out of ``async for``, or the stream object dropped (garbage collected).
The server's handler stops within a bounded time (a ``CancelledError`` at its await, or
``GeneratorExit`` at its ``yield`` if the cancel came while its item was being sent)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable

import pytest

import micro
from micro.transport import GrpcioTransport, Transport
from micro.transport.grpclib_impl import GrpclibTransport
from tests.runtime.echo_kit import Echo, EchoClient, EchoReply, EchoRequest, serving
from tests.waiting import eventually

WIRES: dict[str, Callable[[], Transport]] = {"grpcio": GrpcioTransport, "grpclib": GrpclibTransport}
#: a stream that would run for minutes (or block on flow control) unless cancelled
ENDLESS = EchoRequest(text="x", count=1_000_000, sleep_ms=1)


class Streams(Echo):
    """Records when its handlers stop, and whether they ran to their end."""

    async def count(self, request: EchoRequest, context: micro.Context) -> AsyncIterator[EchoReply]:
        try:
            for i in range(request.count):
                if i:
                    await asyncio.sleep(request.sleep_ms / 1000)
                yield EchoReply(text=request.text, index=i)
            self.events.append("count-completed")
        finally:
            self.events.append("count-stopped")

    async def chat(
        self, requests: AsyncIterator[EchoRequest], context: micro.Context
    ) -> AsyncIterator[EchoReply]:
        linger = 0
        try:
            async for item in requests:
                yield EchoReply(text=f"echo: {item.text}")
                linger = item.sleep_ms
            await asyncio.sleep(linger / 1000)  # work after the requests end
            self.events.append("chat-completed")
        finally:
            self.events.append("chat-stopped")


@pytest.fixture(params=sorted(WIRES))
async def streaming(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Echo, EchoClient]]:
    handler = Streams()
    wire = WIRES[request.param]
    async with (
        serving(handler, transport=wire()) as service,
        micro.Client(registry=service.registry, transport=wire()) as client,
    ):
        yield handler, EchoClient("echo", client=client)


async def cancelled(handler: Echo, kind: str = "count") -> None:
    """The handler stopped (within 5 s) before its end."""
    await eventually(
        lambda: f"{kind}-stopped" in handler.events, timeout=5, what=f"{kind} stopping"
    )
    assert f"{kind}-completed" not in handler.events


async def test_break_out_of_async_for_cancels_the_call(
    streaming: tuple[Echo, EchoClient],
) -> None:
    handler, stub = streaming
    async for reply in stub.count(ENDLESS):  # the README idiom
        assert reply.index == 0
        break
    await cancelled(handler)


async def test_break_cancels_even_while_the_stream_is_still_referenced(
    streaming: tuple[Echo, EchoClient],
) -> None:
    handler, stub = streaming
    stream = stub.count(ENDLESS)
    async for _ in stream:
        break
    await cancelled(handler)
    assert [r async for r in stream] == []  # closed: nothing more comes
    assert stream.headers is not None  # still readable after the cancel


async def test_an_exception_in_the_loop_cancels_the_call(
    streaming: tuple[Echo, EchoClient],
) -> None:
    handler, stub = streaming
    with pytest.raises(ValueError, match="caller's own"):
        async for _ in stub.count(ENDLESS):
            raise ValueError("the caller's own failure")
    await cancelled(handler)


async def test_a_dropped_server_stream_cancels_the_call(
    streaming: tuple[Echo, EchoClient],
) -> None:
    handler, stub = streaming
    stream = stub.count(ENDLESS)
    assert (await anext(stream)).index == 0  # opened, not iterated with async for
    del stream
    gc.collect()
    await cancelled(handler)


async def test_a_dropped_bidi_stream_cancels_the_call(
    streaming: tuple[Echo, EchoClient],
) -> None:
    handler, stub = streaming
    chat = stub.chat()
    # grpcio may show the handler the client's leaving as the end of the requests
    # before the cancel: the handler works on after them, so the cancel finds it running
    await chat.send(EchoRequest(text="a", sleep_ms=10_000))
    reply = await chat.recv()
    assert reply is not None and reply.text == "echo: a"
    del chat
    gc.collect()
    await cancelled(handler, "chat")


async def test_a_stream_read_to_its_end_is_not_cancelled(
    streaming: tuple[Echo, EchoClient],
) -> None:
    handler, stub = streaming
    assert [r.index async for r in stub.count(EchoRequest(count=3))] == [0, 1, 2]
    stream = stub.count(EchoRequest(count=2))
    assert [r.index async for r in stream] == [0, 1]
    assert stream.trailers is not None
    del stream
    gc.collect()
    await eventually(lambda: handler.events.count("count-completed") == 2, what="both ended")
    assert handler.events == ["count-completed", "count-stopped"] * 2
