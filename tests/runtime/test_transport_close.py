"""Closing a server transport lets the calls it already took answer for a moment (the
settle) before it cuts off what is left: a draining service's refusals, which tell the
client to fail over, reach it instead of a cut-off that looks as if the call had run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

import micro
from micro.status import Status
from micro.transport import Dispatch, GrpcioTransport, InboundCall, Transport
from micro.transport.grpclib_impl import GrpclibTransport
from tests.runtime.echo_kit import ECHO, EchoReply, EchoRequest

WIRES: dict[str, Callable[[], Transport]] = {"grpcio": GrpcioTransport, "grpclib": GrpclibTransport}


@asynccontextmanager
async def _closed_under_a_call(
    wire: str, client_wire: str, dispatch: Dispatch, taken: asyncio.Event, timeout: float
) -> AsyncIterator[tuple[asyncio.Task[Any], float]]:
    """A server of ``wire`` closed once ``dispatch`` took a call from a client of
    ``client_wire``: the call's task, and how long close() took."""
    server = WIRES[wire]().server({ECHO.path: ECHO}, dispatch)
    host, port = await server.start("127.0.0.1", 0)
    async with micro.Client(transport=WIRES[client_wire](), retries=0) as client:
        call = asyncio.create_task(
            client.unary(ECHO, EchoRequest(text="late"), address=f"{host}:{port}", timeout=timeout)
        )
        await asyncio.wait_for(taken.wait(), 5)
        started = time.monotonic()
        await server.close()
        yield call, time.monotonic() - started


@pytest.mark.parametrize(
    ("wire", "client_wire"), [(w, c) for w in sorted(WIRES) for c in sorted(WIRES)]
)
async def test_close_lets_a_call_it_took_answer_within_the_settle(
    wire: str, client_wire: str
) -> None:
    taken = asyncio.Event()

    async def dispatch(call: InboundCall) -> None:
        request = await call.recv()
        assert isinstance(request, EchoRequest)
        taken.set()
        await asyncio.sleep(0.1)  # well inside the settle
        await call.send(EchoReply(text=f"answered {request.text}"))
        await call.finish(None, [])

    async with _closed_under_a_call(wire, client_wire, dispatch, taken, 5) as (call, closing):
        reply = await call
        assert reply is not None and reply.text == "answered late"
        assert closing < 2  # and close did not wait for long


@pytest.mark.parametrize("wire", sorted(WIRES))
async def test_close_cuts_off_a_call_that_outlasts_the_settle(wire: str) -> None:
    taken = asyncio.Event()
    cancelled = asyncio.Event()

    async def dispatch(call: InboundCall) -> None:
        await call.recv()
        taken.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with _closed_under_a_call(wire, wire, dispatch, taken, 10) as (call, closing):
        assert closing < 5
        await asyncio.wait_for(cancelled.wait(), 5)
        with pytest.raises(micro.Error) as failed:
            await call
        assert failed.value.grpc_status in (Status.UNAVAILABLE, Status.CANCELLED)
