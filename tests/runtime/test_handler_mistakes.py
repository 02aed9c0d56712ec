"""A handler's mistakes are named where they are made: a method with a typo warns at start,
a server-streaming method that returns a list says what it must do instead."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

import micro
from micro.registry import RegistryError
from micro.server import stray_methods
from tests.runtime.echo_kit import Echo, EchoClient, EchoReply, EchoRequest, serving
from tests.waiting import eventually

pytestmark = pytest.mark.timeout(60)


class Typo(Echo):
    async def ecoh(self, request: EchoRequest, context: micro.Context) -> EchoReply:
        return EchoReply(text="never called")

    async def lookup(self, request: EchoRequest, context: micro.Context) -> EchoReply:
        return EchoReply()  # the handler shape, no close name: still reported

    async def fetch_user(self, user_id: str) -> str:  # a helper: another shape
        return user_id

    async def _helper(self, request: EchoRequest, context: micro.Context) -> None:
        pass

    def sync_helper(self, request: EchoRequest, context: micro.Context) -> None:
        pass


def test_stray_methods_finds_typos_and_leaves_helpers_alone() -> None:
    served = {"echo", "count", "collect", "chat", "missing"}
    assert stray_methods(Typo(), served) == [("ecoh", "echo"), ("lookup", None)]
    assert stray_methods(Echo(), served) == []


async def test_a_typo_warns_once_at_start(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="micro"):
        async with serving(Typo()):
            pass
    warnings = [r.getMessage() for r in caplog.records if "is not an rpc" in r.getMessage()]
    assert warnings == [
        "echo: Typo.ecoh is not an rpc of test.v1.Echo; did you mean 'echo'? (an rpc "
        "without its method answers UNIMPLEMENTED; a helper that is no handler can start "
        "with _)",
        "echo: Typo.lookup is not an rpc of test.v1.Echo (an rpc without its method "
        "answers UNIMPLEMENTED; a helper that is no handler can start with _)",
    ]


class ReturnsAList(Echo):
    async def count(  # type: ignore[override]
        self, request: EchoRequest, context: micro.Context
    ) -> list[EchoReply]:
        return [EchoReply(index=i) for i in range(request.count)]


async def test_a_server_streaming_handler_returning_a_list_says_it_must_yield(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with serving(ReturnsAList()) as svc, micro.Client(registry=svc.registry) as client:
        stub = EchoClient("echo", client=client)
        with pytest.raises(micro.Error) as caught:
            async for _ in stub.count(EchoRequest(count=2)):
                pass
        assert caught.value.code == 500
    failure: Any = next(r for r in caplog.records if r.exc_info)
    assert str(failure.exc_info[1]) == (
        "ReturnsAList.count serves the server_stream rpc Echo.Count: it must yield its "
        "responses (an async generator: `async def ...: yield reply`), but it returned list"
    )


async def test_an_async_iterator_returned_by_a_coroutine_still_streams() -> None:
    class Returns(Echo):
        async def count(  # type: ignore[override]
            self, request: EchoRequest, context: micro.Context
        ) -> AsyncIterator[EchoReply]:
            async def replies() -> AsyncIterator[EchoReply]:
                for i in range(request.count):
                    yield EchoReply(index=i)

            return replies()

    async with serving(Returns()) as svc, micro.Client(registry=svc.registry) as client:
        stub = EchoClient("echo", client=client)
        assert [r.index async for r in stub.count(EchoRequest(count=3))] == [0, 1, 2]


class FlakyRegistry(micro.MemoryRegistry):
    """Accepts the first registration, then fails the heartbeats."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def register(self, service: micro.ServiceRecord, *, ttl: float | None = None) -> None:
        self.calls += 1
        if self.calls > 1:
            raise RegistryError("nats: timeout")
        await super().register(service, ttl=ttl)


async def test_a_failed_re_registration_is_one_warning_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = FlakyRegistry()
    with caplog.at_level(logging.WARNING, logger="micro"):
        async with serving(registry=registry, register_interval=0.05):
            await eventually(lambda: registry.calls >= 3, what="two failed heartbeats")
    failed = [r for r in caplog.records if "re-registration failed" in r.getMessage()]
    assert failed and all(r.exc_info is None for r in failed)
    assert (
        failed[0].getMessage() == "echo: re-registration failed (retrying in 0.05s): nats: timeout"
    )
