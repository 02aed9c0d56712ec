"""Server and client middleware: order, metadata, short-circuits, error handling."""

from __future__ import annotations

import pytest

import micro
from tests.runtime.echo_kit import Echo, EchoClient, EchoReply, EchoRequest, serving

pytestmark = pytest.mark.timeout(60)


def _server_recorder(name: str, log: list[str]) -> micro.ServerMiddleware:
    async def mw(call: micro.HandlerCall, nxt: micro.HandlerNext) -> object:
        log.append(f"{name}>{call.method.name}")
        try:
            return await nxt(call)
        finally:
            log.append(f"<{name}")

    return mw


def _client_recorder(name: str, log: list[str]) -> micro.ClientMiddleware:
    async def mw(call: micro.ClientCall, nxt: micro.ClientNext) -> object:
        log.append(f"{name}>{call.method.name}")
        call.metadata.append((f"x-{name}", "1"))
        try:
            return await nxt(call)
        finally:
            log.append(f"<{name}")

    return mw


async def test_server_middleware_order_wraps_whole_call() -> None:
    log: list[str] = []

    class Logged(Echo):
        async def echo(self, request: EchoRequest, context: micro.Context) -> EchoReply:
            log.append("handler")
            return await super().echo(request, context)

    middleware = [_server_recorder("a", log), _server_recorder("b", log)]
    async with (
        serving(Logged(), middleware=middleware) as svc,
        micro.Client(registry=svc.registry) as client,
    ):
        stub = EchoClient("echo", client=client)
        await stub.echo(EchoRequest(text="x"))
        assert log == ["a>Echo.Echo", "b>Echo.Echo", "handler", "<b", "<a"]

        log.clear()
        items = [r.index async for r in stub.count(EchoRequest(count=2))]
        assert items == [0, 1]
        assert log == ["a>Echo.Count", "b>Echo.Count", "<b", "<a"]


async def test_server_middleware_can_reject_translate_and_replace() -> None:
    async def auth(call: micro.HandlerCall, nxt: micro.HandlerNext) -> object:
        if call.context.metadata.get("authorization") != "secret":
            raise micro.errors.unauthorized("auth", "who are you?")
        return await nxt(call)

    async def rewrite(call: micro.HandlerCall, nxt: micro.HandlerNext) -> object:
        try:
            reply = await nxt(call)
        except micro.Error as exc:
            if exc.code == 404:
                return EchoReply(text="defaulted")
            raise
        if isinstance(reply, EchoReply):
            reply.text = reply.text.upper()
        return reply

    async with (
        serving(middleware=[auth, rewrite]) as svc,
        micro.Client(registry=svc.registry) as client,
    ):
        stub = EchoClient("echo", client=client)
        with pytest.raises(micro.Error) as info:
            await stub.echo(EchoRequest(text="x"))
        assert (info.value.id, info.value.code) == ("auth", 401)
        ok = {"authorization": "secret"}
        assert (await stub.echo(EchoRequest(text="x"), metadata=ok)).text == "X"
        reply = await stub.echo(EchoRequest(fail="not_found"), metadata=ok)
        assert reply.text == "defaulted"


async def test_client_middleware_order_and_metadata() -> None:
    log: list[str] = []
    middleware = [_client_recorder("one", log), _client_recorder("two", log)]
    async with (
        serving() as svc,
        micro.Client(registry=svc.registry, middleware=middleware) as client,
    ):
        stub = EchoClient("echo", client=client)
        reply = await stub.echo(EchoRequest(text="x"))
        assert log == ["one>Echo.Echo", "two>Echo.Echo", "<two", "<one"]
        assert reply.metadata["x-one"] == "1" and reply.metadata["x-two"] == "1"

        log.clear()
        stream = stub.count(EchoRequest(count=3))
        async with stream:
            # opening ran the middleware (the stream is open, first message received)
            assert log == ["one>Echo.Count", "two>Echo.Count", "<two", "<one"]
            assert [r.index async for r in stream] == [0, 1, 2]

        log.clear()
        assert (await stub.collect([EchoRequest(text="a")])).text == "a"
        assert log == ["one>Echo.Collect", "two>Echo.Collect", "<two", "<one"]


async def test_client_middleware_sees_errors_and_can_short_circuit() -> None:
    seen: list[int] = []

    async def observe(call: micro.ClientCall, nxt: micro.ClientNext) -> object:
        try:
            return await nxt(call)
        except micro.Error as exc:
            seen.append(exc.code)
            raise

    async def cache(call: micro.ClientCall, nxt: micro.ClientNext) -> object:
        if isinstance(call.request, EchoRequest) and call.request.text == "cached":
            return EchoReply(text="from cache")
        return await nxt(call)

    async with (
        serving() as svc,
        micro.Client(registry=svc.registry, middleware=[observe, cache]) as client,
    ):
        stub = EchoClient("echo", client=client)
        assert (await stub.echo(EchoRequest(text="cached"))).text == "from cache"
        with pytest.raises(micro.Error):
            await stub.echo(EchoRequest(fail="not_found"))
        assert seen == [404]
