"""The four call kinds end to end over real grpclib on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

import micro
from micro.errors import Status
from tests.runtime.echo_kit import (
    COLLECT,
    ECHO,
    Echo,
    EchoClient,
    EchoReply,
    EchoRequest,
    serving,
)
from tests.waiting import eventually

pytestmark = pytest.mark.timeout(60)


async def test_all_four_kinds_by_service_name() -> None:
    async with serving() as svc, micro.Client(registry=svc.registry) as client:
        stub = EchoClient("echo", client=client)
        reply = await stub.echo(EchoRequest(text="hi"))
        assert (reply.text, reply.node) == ("hi", "a")

        items = [r.index async for r in stub.count(EchoRequest(text="c", count=4))]
        assert items == [0, 1, 2, 3]

        collected = await stub.collect([EchoRequest(text=t) for t in "abc"])
        assert (collected.text, collected.index) == ("a,b,c", 3)

        async def gen() -> AsyncIterator[EchoRequest]:
            for t in "xy":
                yield EchoRequest(text=t)

        assert (await stub.collect(gen())).text == "x,y"
        assert (await stub.collect([])).text == ""

        async with stub.chat() as chat:
            for i in range(5):
                await chat.send(EchoRequest(text=str(i)))
                got = await chat.recv()
                assert got is not None and (got.text, got.index) == (f"echo: {i}", i)
            await chat.send(EchoRequest(text="last"))
            await chat.close_send()
            rest = [m.text async for m in chat]
            assert rest == ["echo: last"]
            assert await chat.recv() is None  # the end is sticky


async def test_static_address_bypasses_discovery() -> None:
    async with serving() as svc:
        empty = micro.MemoryRegistry()
        async with micro.Client(registry=empty) as client:
            reply = await EchoClient(address=svc.address, client=client).echo(EchoRequest(text="s"))
            assert reply.text == "s"
            with pytest.raises(micro.Error) as info:
                await EchoClient("echo", client=client).echo(EchoRequest(text="s"))
            assert info.value.code == 503 and "not found" in info.value.detail


async def test_bidi_send_and_recv_from_two_tasks() -> None:
    async with serving() as svc, micro.Client(registry=svc.registry) as client:
        async with EchoClient("echo", client=client).chat(timeout=10) as chat:

            async def sender() -> None:
                for i in range(20):
                    await chat.send(EchoRequest(text=str(i)))
                await chat.close_send()

            task = asyncio.create_task(sender())
            got = [m.text async for m in chat]
            await task
        assert got == [f"echo: {i}" for i in range(20)]


async def test_error_round_trip_intact() -> None:
    async with serving() as svc, micro.Client(registry=svc.registry) as client:
        stub = EchoClient("echo", client=client)
        with pytest.raises(micro.Error) as info:
            await stub.echo(EchoRequest(text="42", fail="not_found"))
        err = info.value
        assert (err.id, err.code, err.detail, err.status) == (
            "echo",
            404,
            "no such thing: 42",
            "Not Found",
        )
        assert err.grpc_status is Status.NOT_FOUND

        with pytest.raises(micro.Error) as info:
            await stub.echo(EchoRequest(fail="custom"))
        err = info.value
        assert (err.id, err.code, err.detail, err.status) == (
            "echo.custom",
            418,
            "short and stout",
            "Teapot",
        )
        assert err.grpc_status is Status.UNKNOWN

        # the same from a client stream, a server stream (mid-stream) and a bidi stream
        with pytest.raises(micro.Error) as info:
            await stub.collect([EchoRequest(text="1"), EchoRequest(text="2", fail="not_found")])
        assert (info.value.code, info.value.detail) == (404, "no such thing: 2")

        got: list[int] = []
        with pytest.raises(micro.Error) as info:
            async for item in stub.count(EchoRequest(text="x", count=5, fail="not_found")):
                got.append(item.index)
        assert got == [0, 1] and info.value.code == 404

        with pytest.raises(micro.Error) as info:
            async with stub.chat() as chat:
                await chat.send(EchoRequest(text="ok"))
                assert (await chat.recv()) is not None
                await chat.send(EchoRequest(text="bad", fail="custom"))
                await chat.recv()
        assert info.value.code == 418


async def test_unexpected_exception_is_internal_without_details(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with serving() as svc, micro.Client(registry=svc.registry) as client:
        stub = EchoClient("echo", client=client)
        with pytest.raises(micro.Error) as info:
            await stub.echo(EchoRequest(fail="boom"))
        err = info.value
        assert err.grpc_status is Status.INTERNAL and err.code == 500
        assert err.detail == "internal server error"
        assert "secret" not in str(err) and "Traceback" not in str(err)
        assert "secret" not in repr(err)
        # logged server side with the traceback, and the server keeps serving
        assert any(
            r.exc_info and "secret internal detail" in str(r.exc_info[1]) for r in caplog.records
        )
        assert (await stub.echo(EchoRequest(text="still"))).text == "still"


async def test_unimplemented_answers_unimplemented() -> None:
    async with serving() as svc, micro.Client(registry=svc.registry) as client:
        stub = EchoClient("echo", client=client)
        with pytest.raises(micro.Error) as info:
            await stub.missing(EchoRequest())
        assert info.value.grpc_status is Status.UNIMPLEMENTED
        assert info.value.code == 501
        assert "Echo.Missing" in info.value.detail


async def test_generated_defaults_answer_unimplemented_for_every_kind() -> None:
    from tests.runtime.echo_kit import EchoHandler

    async with serving(EchoHandler()) as svc, micro.Client(registry=svc.registry) as client:
        stub = EchoClient("echo", client=client)
        calls: list[Callable[[], Awaitable[EchoReply]]] = [
            lambda: stub.echo(EchoRequest()),
            lambda: stub.collect([EchoRequest()]),
        ]
        for call in calls:
            with pytest.raises(micro.Error) as info:
                await call()
            assert info.value.grpc_status is Status.UNIMPLEMENTED
        with pytest.raises(micro.Error) as info:
            _ = [m async for m in stub.count(EchoRequest())]
        assert info.value.grpc_status is Status.UNIMPLEMENTED
        with pytest.raises(micro.Error) as info:
            async with stub.chat() as chat:
                await chat.recv()
        assert info.value.grpc_status is Status.UNIMPLEMENTED


async def test_deadline_exceeded() -> None:
    handler = Echo()
    async with serving(handler) as svc, micro.Client(registry=svc.registry) as client:
        started = time.monotonic()
        with pytest.raises(micro.Error) as info:
            await EchoClient("echo", client=client).echo(
                EchoRequest(text="slow", sleep_ms=5000), timeout=0.2
            )
        assert time.monotonic() - started < 2
        assert info.value.grpc_status is Status.DEADLINE_EXCEEDED
        assert info.value.code == 408
        # the handler was cancelled when its deadline passed
        await eventually(lambda: "echo-cancelled" in handler.events, what="the handler cancelled")


async def test_client_default_timeout() -> None:
    async with serving() as svc, micro.Client(registry=svc.registry, timeout=0.2) as client:
        with pytest.raises(micro.Error) as info:
            await EchoClient("echo", client=client).echo(EchoRequest(sleep_ms=3000))
        assert info.value.code == 408


async def test_metadata_both_ways() -> None:
    seen: list[micro.ClientCall] = []

    async def capture(call: micro.ClientCall, nxt: micro.ClientNext) -> object:
        result = await nxt(call)
        seen.append(call)
        return result

    async with (
        serving() as svc,
        micro.Client(registry=svc.registry, middleware=[capture]) as client,
    ):
        stub = EchoClient("echo", client=client)
        reply = await stub.echo(
            EchoRequest(text="md"),
            timeout=5.0,
            metadata=[("x-user", "ada"), ("X-Trace", "t1"), ("x-bin", b"\x00\xff")],
        )
        assert reply.metadata["x-user"] == "ada"
        assert reply.metadata["x-trace"] == "t1"  # keys are lower-cased
        assert "x-bin" not in reply.metadata  # bytes values are not echoed as strings
        # grpc-timeout "may round up" on the wire (gRPC over HTTP/2); grpcio's C-core
        # does, by up to about 1%, so the server may see a little more than 5 s
        assert 0 < reply.deadline_remaining <= 5.0 * 1.02
        assert reply.peer.startswith("127.0.0.1:")
        # server -> client: header and trailer set by the handler
        call = seen[-1]
        assert call.headers is not None and call.headers["x-reply-header"] == "h1"
        assert call.trailers is not None and call.trailers["x-reply-trailer"] == "t1"

        stream = stub.count(EchoRequest(count=2))
        async with stream:
            assert [r.index async for r in stream] == [0, 1]
            assert stream.headers is not None and stream.headers["x-stream"] == "yes"
        # middleware sees a stream's response headers once it is open
        opened = seen[-1]
        assert opened.method.name == "Echo.Count"
        assert opened.headers is not None and opened.headers["x-stream"] == "yes"

        no_deadline = await stub.echo(EchoRequest(text="x"))
        assert no_deadline.deadline_remaining == -1.0


async def test_binary_and_multi_valued_metadata_reach_the_handler() -> None:
    got: list[micro.Context] = []

    class Spy(Echo):
        async def echo(self, request: EchoRequest, context: micro.Context) -> EchoReply:
            got.append(context)
            return EchoReply(text="ok")

    async with serving(Spy()) as svc, micro.Client(registry=svc.registry) as client:
        await EchoClient("echo", client=client).echo(
            EchoRequest(), metadata=[("x-multi", "1"), ("x-multi", "2"), ("x-raw-bin", b"\x00\x01")]
        )
    ctx = got[0]
    assert ctx.metadata.get_all("x-multi") == ["1", "2"]
    assert ctx.metadata["x-multi"] == "1"
    assert ctx.metadata["x-raw-bin"] == b"\x00\x01"
    assert ctx.method.name == "Echo.Echo"
    with pytest.raises(TypeError):
        ctx.metadata["x"] = "y"  # type: ignore[index]


async def test_handler_calls_propagate_metadata_and_deadline() -> None:
    async with (
        serving(Echo("inner"), name="inner") as inner,
        serving(Echo("outer"), name="outer") as outer,
        micro.Client(registry=outer.registry) as client,
    ):
        reply = await EchoClient("outer", client=client).echo(
            EchoRequest(text="deep", forward=inner.address),
            timeout=3.0,
            metadata={"x-user": "ada"},
        )
        assert reply.text == "via outer: deep"
        assert reply.node == "inner"
        assert reply.metadata["x-user"] == "ada"  # propagated by the handler's own call
        # inherited deadline (grpc-timeout may round up on each hop: within 2%)
        assert 0 < reply.deadline_remaining < 3.0 * 1.02
        # without a deadline upstream, the downstream call has none either
        reply = await EchoClient("outer", client=client).echo(
            EchoRequest(text="deep", forward=inner.address)
        )
        assert reply.deadline_remaining == -1.0


async def test_cancelling_the_calling_task_cancels_the_handler() -> None:
    handler = Echo()
    async with serving(handler) as svc, micro.Client(registry=svc.registry) as client:
        task = asyncio.create_task(
            EchoClient("echo", client=client).echo(EchoRequest(text="c", sleep_ms=10_000))
        )
        await asyncio.wait_for(handler.started.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await eventually(lambda: "echo-cancelled" in handler.events, what="the handler cancelled")


async def test_leaving_a_server_stream_early_cancels_the_handler() -> None:
    handler = Echo()
    async with serving(handler) as svc, micro.Client(registry=svc.registry) as client:
        stream = EchoClient("echo", client=client).count(EchoRequest(count=1000, sleep_ms=20))
        got: list[int] = []
        async with stream:
            async for item in stream:
                got.append(item.index)
                if len(got) == 2:
                    break
        assert got == [0, 1]
        await eventually(lambda: "count-cancelled" in handler.events, what="the handler cancelled")
        # the connection is still fine
        assert (await EchoClient("echo", client=client).echo(EchoRequest(text="ok"))).text == "ok"


async def test_leaving_a_bidi_stream_early_cancels_the_handler() -> None:
    handler = Echo()
    async with serving(handler) as svc, micro.Client(registry=svc.registry) as client:
        async with EchoClient("echo", client=client).chat() as chat:
            # the handler works on after the requests end (as it may see the client
            # leaving as their end first, on grpcio: see docs/hardening.md)
            await chat.send(EchoRequest(text="1", sleep_ms=10_000))
            assert (await chat.recv()) is not None
            # leave without close_send()
        await eventually(lambda: "chat-cancelled" in handler.events, what="the handler cancelled")
        with pytest.raises(RuntimeError):
            await chat.send(EchoRequest(text="late"))


class _Tagged(Echo):
    """Echo whose client-streaming method answers with response metadata too."""

    async def collect(
        self, requests: AsyncIterator[EchoRequest], context: micro.Context
    ) -> EchoReply:
        context.set_header("x-collect", "h")
        reply = await super().collect(requests, context)
        context.response.add_trailer("x-count-bin", bytes([reply.index]))
        return reply


async def test_unary_and_client_stream_replies_carry_their_response_metadata() -> None:
    async with (
        serving(_Tagged()) as svc,
        micro.Client(registry=svc.registry) as client,
    ):
        reply = await client.unary_reply(ECHO, EchoRequest(text="md"), service="echo")
        assert isinstance(reply, micro.Reply) and reply.message.text == "md"
        assert reply.headers["x-reply-header"] == "h1"
        assert reply.trailers["x-reply-trailer"] == "t1"
        requests = [EchoRequest(text="a"), EchoRequest(text="b")]
        collected = await client.client_stream_reply(COLLECT, requests, service="echo")
        assert collected.message.text == "a,b"
        assert collected.headers.get_all("x-collect") == ["h"]
        assert collected.trailers["x-count-bin"] == b"\x02"
        # the message-only forms are the same calls
        assert (await client.client_stream(COLLECT, requests, service="echo")).index == 2
