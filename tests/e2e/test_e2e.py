"""Generated clients and handlers, a server in another process, found via the `local` registry."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

import micro
from golden.helloworld.v1.helloworld_micro import GreeterClient
from golden.names.v1 import Context as NamesContext
from golden.names.v1.names_micro import KeywordsClient
from golden.streaming.v1 import ChatMessage, CountRequest, EchoRequest, SumRequest
from golden.streaming.v1.streaming_micro import StreamerClient, StreamerSyncClient
from micro.registry.local import LocalRegistry
from tests.cluster import Cluster
from tests.e2e.app import call_all_kinds, call_all_kinds_sync, call_keywords, greet
from tests.waiting import eventually, eventually_sync


@pytest.fixture
async def client(cluster: Cluster) -> AsyncIterator[micro.Client]:
    async with micro.Client(registry=LocalRegistry(cluster.registry_path)) as c:
        yield c


async def test_all_four_kinds_by_service_name(cluster: Cluster, client: micro.Client) -> None:
    cluster.start("streamer", "a")
    text, counted, total, answers = await call_all_kinds(StreamerClient("streamer", client=client))
    assert text == "hi from a"
    assert counted == [1, 2, 3]
    assert total == 6
    assert answers == ["echo: a", "echo: b"]
    assert await greet(GreeterClient("streamer", client=client), "ada") == "Hello, ada!"


async def test_bidi_sends_and_receives_interleave(cluster: Cluster, client: micro.Client) -> None:
    cluster.start("streamer", "a")
    async with StreamerClient("streamer", client=client).chat(timeout=10) as chat:
        for i in range(5):
            await chat.send(ChatMessage(text=str(i)))
            reply = await chat.recv()
            assert reply is not None and reply.text == f"echo: {i}"
        await chat.close_send()
        rest = [m async for m in chat]
    assert rest == []  # every answer was already received, the stream ends cleanly


async def test_client_stream_accepts_async_iterables(
    cluster: Cluster, client: micro.Client
) -> None:
    cluster.start("streamer", "a")

    async def numbers() -> AsyncIterator[SumRequest]:
        for v in range(1, 101):
            yield SumRequest(value=v)

    reply = await StreamerClient("streamer", client=client).sum(numbers())
    assert (reply.total, reply.count) == (5050, 100)


async def test_keyword_rpc_names_work_over_the_wire(cluster: Cluster, client: micro.Client) -> None:
    cluster.start("streamer", "a")
    keywords = KeywordsClient("streamer", client=client)
    assert await call_keywords(keywords) == ("import x", "timeout y")
    with pytest.raises(micro.errors.Error) as info:
        await keywords.class_(NamesContext(value="z"))
    assert info.value.grpc_status.name == "UNIMPLEMENTED"
    assert "Keywords.class" in info.value.detail


async def test_errors_round_trip_intact(cluster: Cluster, client: micro.Client) -> None:
    cluster.start("streamer", "a")
    with pytest.raises(micro.errors.Error) as info:
        await StreamerClient("streamer", client=client).echo(
            EchoRequest(text="42", fail="not_found")
        )
    err = info.value
    assert (err.id, err.code, err.detail, err.status) == (
        "streamer",
        404,
        "no such thing: 42",
        "Not Found",
    )
    assert err.grpc_status.name == "NOT_FOUND"


async def test_a_handler_that_raises_gives_internal_without_traceback(
    cluster: Cluster, client: micro.Client
) -> None:
    node = cluster.start("streamer", "a")
    streamer = StreamerClient("streamer", client=client)
    with pytest.raises(micro.errors.Error) as info:
        await streamer.echo(EchoRequest(fail="boom"))
    assert info.value.grpc_status.name == "INTERNAL"
    assert info.value.code == 500
    assert "secret internal detail" not in str(info.value)
    assert "Traceback" not in str(info.value)
    # The server logged it, and keeps serving.
    await eventually(
        lambda: "secret internal detail" in node.log, timeout=10, what="the error logged"
    )
    assert "secret internal detail" in node.log and "Traceback" in node.log
    assert (await streamer.echo(EchoRequest(text="still"))).text == "still from a"


async def test_deadline_exceeded(cluster: Cluster, client: micro.Client) -> None:
    cluster.start("streamer", "a")
    started = time.monotonic()
    with pytest.raises(micro.errors.Error) as info:
        await StreamerClient("streamer", client=client).echo(
            EchoRequest(text="slow", sleep_ms=5000), timeout=0.3
        )
    assert time.monotonic() - started < 3
    assert info.value.grpc_status.name == "DEADLINE_EXCEEDED"
    assert info.value.code == 408


async def test_metadata_and_deadline_reach_the_handler(
    cluster: Cluster, client: micro.Client
) -> None:
    cluster.start("streamer", "a")
    reply = await StreamerClient("streamer", client=client).echo(
        EchoRequest(text="md"), timeout=5.0, metadata={"x-user": "ada", "x-trace": "t1"}
    )
    assert reply.metadata["x-user"] == "ada"
    assert reply.metadata["x-trace"] == "t1"
    assert 0 < reply.deadline_remaining <= 5.0
    assert reply.peer.startswith("127.0.0.1")


async def test_handler_deadline_and_metadata_carry_on_downstream(
    cluster: Cluster, client: micro.Client
) -> None:
    cluster.start("streamer", "a")
    reply = await StreamerClient("streamer", client=client).echo(
        EchoRequest(text="forward:inner"), timeout=4.0, metadata={"x-user": "ada"}
    )
    assert reply.text == "inner from a"
    assert reply.metadata["x-user"] == "ada"  # propagated by the handler's own call
    assert 0 < reply.deadline_remaining <= 4.0  # the downstream call inherited the deadline


async def test_cancelling_a_stream_cancels_the_handler(
    cluster: Cluster, client: micro.Client
) -> None:
    cluster.start("streamer", "a")
    stream = StreamerClient("streamer", client=client).count(CountRequest(to=1000, delay_ms=50))
    async with stream:
        got: list[int] = []
        async for item in stream:
            got.append(item.n)
            if len(got) == 2:
                break
    assert got == [1, 2]
    await eventually(
        lambda: "count-cancelled" in cluster.events(), timeout=10, what="the handler cancelled"
    )


async def test_cancelling_the_calling_task_cancels_the_rpc(
    cluster: Cluster, client: micro.Client
) -> None:
    cluster.start("streamer", "a")
    call = asyncio.create_task(
        StreamerClient("streamer", client=client).echo(EchoRequest(text="c1", sleep_ms=5000))
    )
    await eventually(
        lambda: "echo-sleeping c1" in cluster.events(), timeout=10, what="the handler running"
    )
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await eventually(
        lambda: "echo-cancelled c1" in cluster.events(), timeout=10, what="the handler cancelled"
    )


async def test_one_of_two_nodes_killed_client_goes_on(
    cluster: Cluster, client: micro.Client
) -> None:
    a = cluster.start("streamer", "a")
    cluster.start("streamer", "b")
    streamer = StreamerClient("streamer", client=client)
    seen = {(await streamer.echo(EchoRequest(text="x"))).text for _ in range(20)}
    assert seen == {"x from a", "x from b"}
    a.kill()  # SIGKILL: no deregistration, its registry entry lingers until the TTL
    replies = [(await streamer.echo(EchoRequest(text="y"), timeout=5)).text for _ in range(30)]
    assert set(replies) == {"y from b"}


async def test_sigterm_deregisters_and_exits_cleanly(cluster: Cluster) -> None:
    node = cluster.start("streamer", "a")
    registry = LocalRegistry(cluster.registry_path)
    assert [n.address for s in await registry.get_service("streamer") for n in s.nodes] == [
        node.address
    ]
    assert node.terminate() == 0
    with pytest.raises(LookupError):
        await registry.get_service("streamer")
    await registry.close()


def test_sync_client_all_kinds_errors_and_failover(cluster: Cluster) -> None:
    a = cluster.start("streamer", "a")
    cluster.start("streamer", "b")
    client = micro.Client(registry=LocalRegistry(cluster.registry_path))
    streamer = StreamerSyncClient("streamer", client=client)
    text, counted, total, answers = call_all_kinds_sync(streamer)
    assert text in ("hi from a", "hi from b")
    assert (counted, total, answers) == ([1, 2, 3], 6, ["echo: a", "echo: b"])
    with pytest.raises(micro.errors.Error) as info:
        streamer.echo(EchoRequest(text="9", fail="not_found"))
    assert (info.value.code, info.value.detail) == (404, "no such thing: 9")
    with pytest.raises(micro.errors.Error) as info:
        streamer.echo(EchoRequest(text="slow", sleep_ms=5000), timeout=0.3)
    assert info.value.grpc_status.name == "DEADLINE_EXCEEDED"
    a.kill()
    assert {streamer.echo(EchoRequest(text="z")).text for _ in range(10)} == {"z from b"}
    micro.sync.run(client.close())


def test_sync_client_by_static_address(cluster: Cluster) -> None:
    node = cluster.start("streamer", "a")
    streamer = StreamerSyncClient(address=node.address)
    assert streamer.echo(EchoRequest(text="s")).text == "s from a"
    stream = streamer.count(CountRequest(to=100, delay_ms=20))
    assert [next(stream).n, next(stream).n] == [1, 2]
    stream.close()  # cancels the call on the server
    eventually_sync(
        lambda: "count-cancelled" in cluster.events(), timeout=10, what="the handler cancelled"
    )
