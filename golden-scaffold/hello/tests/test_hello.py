"""Calls the running service (see conftest.py) the way its clients do."""

from __future__ import annotations

import asyncio

import micro
import pytest

from gen.hello.v1 import CallRequest, StreamRequest
from gen.hello.v1.hello_micro import HelloClient
from tests.conftest import RunningService


def test_call_by_name(service: RunningService) -> None:
    async def call() -> str:
        async with service.client() as client:
            reply = await HelloClient("hello", client=client).call(
                CallRequest(name="Alice"), timeout=10
            )
            return reply.message

    assert asyncio.run(call()) == "Hello Alice"


def test_stream(service: RunningService) -> None:
    async def stream() -> list[tuple[int, str]]:
        async with service.client() as client:
            calls = HelloClient("hello", client=client)
            request = StreamRequest(name="Bob", count=3)
            return [
                (r.index, r.message) async for r in calls.stream(request, timeout=10)
            ]

    assert asyncio.run(stream()) == [
        (0, "Hello Bob"),
        (1, "Hello Bob"),
        (2, "Hello Bob"),
    ]


def test_bad_request_is_an_error(service: RunningService) -> None:
    async def call() -> None:
        async with service.client() as client:
            await HelloClient("hello", client=client).call(CallRequest(), timeout=10)

    with pytest.raises(micro.Error) as info:
        asyncio.run(call())
    assert (info.value.code, info.value.detail) == (400, "name is required")


def test_static_address(service: RunningService) -> None:
    async def call() -> str:
        async with micro.Client() as client:
            calls = HelloClient(address=service.address, client=client)
            return (await calls.call(CallRequest(name="Carol"), timeout=10)).message

    assert asyncio.run(call()) == "Hello Carol"
