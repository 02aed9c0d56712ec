"""A hand-written service (spec, messages, handler, client) for the runtime tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import betterproto2

import micro
from micro.registry import MemoryRegistry


@dataclass(eq=False, repr=False)
class EchoRequest(betterproto2.Message):
    text: str = betterproto2.field(1, betterproto2.TYPE_STRING)
    count: int = betterproto2.field(2, betterproto2.TYPE_INT32)
    sleep_ms: int = betterproto2.field(3, betterproto2.TYPE_INT32)
    fail: str = betterproto2.field(4, betterproto2.TYPE_STRING)
    forward: str = betterproto2.field(5, betterproto2.TYPE_STRING)  # address to call


@dataclass(eq=False, repr=False)
class EchoReply(betterproto2.Message):
    text: str = betterproto2.field(1, betterproto2.TYPE_STRING)
    index: int = betterproto2.field(2, betterproto2.TYPE_INT32)
    metadata: dict[str, str] = betterproto2.field(  # noqa: RUF009
        3,
        betterproto2.TYPE_MAP,
        map_meta=betterproto2.map_meta(betterproto2.TYPE_STRING, betterproto2.TYPE_STRING),
    )
    deadline_remaining: float = betterproto2.field(4, betterproto2.TYPE_DOUBLE)
    peer: str = betterproto2.field(5, betterproto2.TYPE_STRING)
    node: str = betterproto2.field(6, betterproto2.TYPE_STRING)


def _method(name: str, kind: micro.Kind, attr: str) -> micro.Method[Any, Any]:
    return micro.Method(
        name=f"Echo.{name}",
        path=f"/test.v1.Echo/{name}",
        kind=kind,
        request_type=EchoRequest,
        response_type=EchoReply,
        handler_attr=attr,
        http_rules=(micro.HttpRule("POST", f"/v1/echo/{attr}", body="*"),)
        if kind is micro.Kind.UNARY
        else (),
    )


ECHO_SPEC = micro.ServiceSpec(
    name="test.v1.Echo",
    methods=(
        _method("Echo", micro.Kind.UNARY, "echo"),
        _method("Count", micro.Kind.SERVER_STREAM, "count"),
        _method("Collect", micro.Kind.CLIENT_STREAM, "collect"),
        _method("Chat", micro.Kind.BIDI_STREAM, "chat"),
        _method("Missing", micro.Kind.UNARY, "missing"),
    ),
)
ECHO, COUNT, COLLECT, CHAT, MISSING = ECHO_SPEC.methods


class EchoHandler(micro.Handler):
    """What the generator would emit: every method raises unimplemented."""

    async def echo(self, request: EchoRequest, context: micro.Context) -> EchoReply:
        raise micro.errors.unimplemented(ECHO)

    def count(self, request: EchoRequest, context: micro.Context) -> AsyncIterator[EchoReply]:
        raise micro.errors.unimplemented(COUNT)

    async def collect(
        self, requests: AsyncIterator[EchoRequest], context: micro.Context
    ) -> EchoReply:
        raise micro.errors.unimplemented(COLLECT)

    def chat(
        self, requests: AsyncIterator[EchoRequest], context: micro.Context
    ) -> AsyncIterator[EchoReply]:
        raise micro.errors.unimplemented(CHAT)

    async def missing(self, request: EchoRequest, context: micro.Context) -> EchoReply:
        raise micro.errors.unimplemented(MISSING)


class EchoClient(micro.Stub):
    async def echo(
        self,
        request: EchoRequest,
        /,
        *,
        timeout: float | None = None,
        metadata: micro.Metadata | None = None,
    ) -> EchoReply:
        reply: EchoReply = await self._unary(ECHO, request, timeout=timeout, metadata=metadata)
        return reply

    def count(
        self,
        request: EchoRequest,
        /,
        *,
        timeout: float | None = None,
        metadata: micro.Metadata | None = None,
    ) -> micro.ServerStream[EchoReply]:
        return self._server_stream(COUNT, request, timeout=timeout, metadata=metadata)

    async def collect(
        self,
        requests: Iterable[EchoRequest] | AsyncIterator[EchoRequest],
        /,
        *,
        timeout: float | None = None,
        metadata: micro.Metadata | None = None,
    ) -> EchoReply:
        reply: EchoReply = await self._client_stream(
            COLLECT, requests, timeout=timeout, metadata=metadata
        )
        return reply

    def chat(
        self, *, timeout: float | None = None, metadata: micro.Metadata | None = None
    ) -> micro.BidiStream[EchoRequest, EchoReply]:
        return self._bidi_stream(CHAT, timeout=timeout, metadata=metadata)

    async def missing(
        self,
        request: EchoRequest,
        /,
        *,
        timeout: float | None = None,
        metadata: micro.Metadata | None = None,
    ) -> EchoReply:
        reply: EchoReply = await self._unary(MISSING, request, timeout=timeout, metadata=metadata)
        return reply


class Echo(EchoHandler):
    """The implementation used by the tests; records what happened in ``events``."""

    def __init__(self, node: str = "a") -> None:
        self.node = node
        self.events: list[str] = []
        self.started = asyncio.Event()

    async def _maybe_fail(self, request: EchoRequest) -> None:
        if request.fail == "not_found":
            raise micro.errors.not_found("echo", f"no such thing: {request.text}")
        if request.fail == "boom":
            raise RuntimeError("secret internal detail")
        if request.fail == "custom":
            raise micro.errors.Error("echo.custom", 418, "short and stout", "Teapot")

    async def _sleep(self, request: EchoRequest, what: str) -> None:
        if request.sleep_ms:
            self.started.set()
            try:
                await asyncio.sleep(request.sleep_ms / 1000)
            except asyncio.CancelledError:
                self.events.append(f"{what}-cancelled")
                raise

    async def echo(self, request: EchoRequest, context: micro.Context) -> EchoReply:
        await self._sleep(request, "echo")
        await self._maybe_fail(request)
        context.set_header("x-reply-header", "h1")
        context.set_trailer("x-reply-trailer", "t1")
        if request.forward:
            downstream = EchoClient(address=request.forward)
            inner = await downstream.echo(EchoRequest(text=request.text))
            inner.text = f"via {self.node}: {inner.text}"
            return inner
        remaining = context.time_remaining()
        return EchoReply(
            text=request.text,
            metadata={k: v for k, v in context.metadata.items() if isinstance(v, str)},
            deadline_remaining=-1.0 if remaining is None else remaining,
            peer=context.peer,
            node=self.node,
        )

    async def count(self, request: EchoRequest, context: micro.Context) -> AsyncIterator[EchoReply]:
        context.set_header("x-stream", "yes")
        try:
            for i in range(request.count):
                if i and request.sleep_ms:
                    await asyncio.sleep(request.sleep_ms / 1000)
                if request.fail and i == 2:
                    await self._maybe_fail(request)
                yield EchoReply(text=request.text, index=i, node=self.node)
        except asyncio.CancelledError:
            self.events.append("count-cancelled")
            raise

    async def collect(
        self, requests: AsyncIterator[EchoRequest], context: micro.Context
    ) -> EchoReply:
        texts = []
        async for item in requests:
            await self._maybe_fail(item)
            texts.append(item.text)
        return EchoReply(text=",".join(texts), index=len(texts), node=self.node)

    async def chat(
        self, requests: AsyncIterator[EchoRequest], context: micro.Context
    ) -> AsyncIterator[EchoReply]:
        i = 0
        linger = 0
        try:
            async for item in requests:
                await self._maybe_fail(item)
                yield EchoReply(text=f"echo: {item.text}", index=i, node=self.node)
                i += 1
                linger = item.sleep_ms
            if linger:  # work after the last request (a client that left cancels it)
                await asyncio.sleep(linger / 1000)
        except asyncio.CancelledError:
            self.events.append("chat-cancelled")
            raise


@asynccontextmanager
async def serving(
    handler: object | None = None,
    *,
    name: str = "echo",
    registry: micro.Registry | None = None,
    **options: Any,
) -> AsyncIterator[micro.Service]:
    """A started Service (MemoryRegistry unless given) serving ECHO_SPEC on 127.0.0.1."""
    service = micro.Service(
        name, registry=registry if registry is not None else MemoryRegistry(), **options
    )
    service.handle(ECHO_SPEC, handler if handler is not None else Echo())
    async with service:
        yield service
