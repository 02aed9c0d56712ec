"""grpclib writes one socket write per HEADERS or DATA frame; micro's grpclib transport
sends a unary request (headers, message) and a unary reply (headers, message, trailers)
as one write each. Counted on the real sockets of a service and a client on 127.0.0.1."""

from __future__ import annotations

import asyncio.selector_events
from collections import Counter
from typing import Any

import pytest

import micro
from micro.transport.grpclib_impl import GrpclibTransport
from tests.runtime.echo_kit import ECHO, EchoClient, EchoReply, EchoRequest, serving

pytestmark = pytest.mark.timeout(60)

CALLS = 20


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> Counter[int]:
    """Socket writes per transport (by id) in this process, from now on."""
    counted: Counter[int] = Counter()
    cls: Any = getattr(asyncio.selector_events, "_SelectorSocketTransport")  # noqa: B009
    write = cls.write

    def counting(self: Any, data: Any) -> None:
        if data:
            counted[id(self)] += 1
        write(self, data)

    monkeypatch.setattr(cls, "write", counting)
    return counted


async def test_a_unary_exchange_is_one_write_each_way(writes: Counter[int]) -> None:
    wire = GrpclibTransport()
    async with (
        serving(transport=wire) as service,
        micro.Client(registry=service.registry, transport=wire) as client,
    ):
        stub = EchoClient("echo", client=client)
        await stub.echo(EchoRequest(text="warm-up"))  # connection preface and settings
        writes.clear()
        for i in range(CALLS):
            reply = await client.unary_reply(
                ECHO, EchoRequest(text=str(i)), service="echo", metadata=[("x-n", str(i))]
            )
            # the message, the request metadata, the reply's headers and trailers: all there
            assert reply.message.text == str(i)
            assert reply.message.metadata["x-n"] == str(i)
            assert reply.headers.get("x-reply-header") == "h1"
            assert reply.trailers.get("x-reply-trailer") == "t1"
    # the client's and the server's side of the one connection wrote once per call each
    # (grpclib: 2 and 3); pings come every 2 h, and messages this small update no window
    assert sorted(writes.values()) == [CALLS, CALLS], writes


async def test_a_reply_past_the_flow_control_window_still_arrives_whole(
    writes: Counter[int],
) -> None:
    wire = GrpclibTransport()
    text = "x" * 200_000  # larger than h2's default 64 KiB window and 16 KiB frames
    async with (
        serving(transport=wire) as service,
        micro.Client(registry=service.registry, transport=wire) as client,
    ):
        stub = EchoClient("echo", client=client)
        replies: list[EchoReply] = [await stub.echo(EchoRequest(text=text)) for _ in range(3)]
    assert [r.text for r in replies] == [text] * 3
    assert sum(writes.values()) > 3 * 2 * 4  # the message went in flow-controlled pieces


async def test_a_streams_headers_leave_with_its_first_message(writes: Counter[int]) -> None:
    wire = GrpclibTransport()
    async with (
        serving(transport=wire) as service,
        micro.Client(registry=service.registry, transport=wire) as client,
    ):
        stub = EchoClient("echo", client=client)
        await stub.echo(EchoRequest(text="warm-up"))
        writes.clear()
        replies = [r.index async for r in stub.count(EchoRequest(text="s", count=5))]
    assert replies == [0, 1, 2, 3, 4]
    # the server: 5 messages, the headers with the first, then the trailers (grpclib: 7)
    assert sorted(writes.values()) == [2, 6], writes
