"""A caller's own mistakes are TypeErrors in its process, naming the method, the expected
type and what was given, not server errors (500 / EncodeError) or betterproto2 internals."""

from __future__ import annotations

from typing import Any, cast

import pytest

import micro
from tests.runtime.echo_kit import EchoClient, EchoRequest, serving

pytestmark = pytest.mark.timeout(60)


async def test_the_wrong_type_is_a_type_error_before_anything_is_sent() -> None:
    arrived: list[str] = []

    async def record(call: micro.HandlerCall, next: micro.HandlerNext) -> object:
        arrived.append(call.method.name)
        return await next(call)

    async with serving(middleware=[record]) as svc, micro.Client(registry=svc.registry) as client:
        stub = EchoClient("echo", client=client)
        wrong = cast(Any, {"text": "hi"})
        with pytest.raises(TypeError) as unary:
            await stub.echo(wrong)
        assert str(unary.value) == (
            "Echo.Echo takes a request of type EchoRequest, got dict "
            "(build one: EchoRequest(**...))"
        )
        with pytest.raises(
            TypeError, match=r"^Echo\.Count takes a request of type EchoRequest, got str$"
        ):
            stub.count(cast(Any, "hi"))
        with pytest.raises(TypeError, match="is client-streaming: it takes an iterable"):
            await stub.collect(cast(Any, EchoRequest(text="one")))
        with pytest.raises(
            TypeError, match=r"^Echo\.Collect takes a request of type EchoRequest, got int"
        ):
            await stub.collect(cast(Any, [EchoRequest(text="a"), 2]))
        async with stub.chat() as chat:
            with pytest.raises(
                TypeError, match=r"^Echo\.Chat takes a request of type EchoRequest, got"
            ):
                await chat.send(cast(Any, {"text": "x"}))
            await chat.send(EchoRequest(text="fine"))
            assert (await chat.recv()) is not None
        assert "Echo.Echo" not in arrived and "Echo.Count" not in arrived
        assert (await stub.echo(EchoRequest(text="ok"))).text == "ok"  # the client still works


async def test_a_field_of_the_wrong_type_is_a_type_error_naming_the_method() -> None:
    async with serving() as svc, micro.Client(registry=svc.registry) as client:
        stub = EchoClient("echo", client=client)
        with pytest.raises(TypeError) as caught:
            await stub.echo(EchoRequest(text=cast(Any, 5)))
        message = str(caught.value)
        assert message.startswith("Echo.Echo: the EchoRequest request cannot be encoded (")
        assert message.endswith("); does a field hold a value of the wrong type?")
        with pytest.raises(TypeError, match=r"^Echo\.Count: the EchoRequest request cannot be"):
            async for _ in stub.count(EchoRequest(text=cast(Any, 5), count=1)):
                pass
        assert (await stub.echo(EchoRequest(text="ok"))).text == "ok"
