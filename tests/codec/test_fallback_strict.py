"""The codec's fallback (betterproto2's own parser, when protobuf is absent or
``MICRO_CODEC=betterproto2``) is strict: the wire check in front of it rejects what upb
rejects, and a known field sent with another wire type too, so a server answers
INVALID_ARGUMENT instead of handing a half-filled or mistyped message to a handler."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import micro
from golden.helloworld.v1 import HelloReply, HelloRequest
from golden.helloworld.v1.helloworld_micro import GreeterHandler, register_greeter_handler
from golden.streaming.v1 import EchoRequest
from micro import _wire_check, codec
from micro.registry import MemoryRegistry
from micro.transport import GrpcioTransport, Transport
from micro.transport.grpclib_impl import GrpclibTransport
from tests.codec import kit
from tests.codec.strategies import messages
from tests.codec.test_codec import MALFORMED
from tests.codec.test_fuzz import TARGETS, _mutate

CASES = {c.name: c for c in kit.codec_cases()} | {c.name: c for c in kit.golden_cases()}
#: upb rejects MALFORMED; the fallback also rejects a known field of another wire type
#: (upb keeps that one as an unknown field) and the start of a group
STRICT = MALFORMED | {
    "a string field sent as a varint": b"\x0a\x00\x08\x01",
    "a group start": b"\x0b\x0c",
    "an int field sent length-delimited": b"\x1a\x01\x80",  # sleep_ms (field 3)
}
#: the shapes that are malformed for HelloRequest too (whose only field is 1, name)
FOR_HELLO = {k: v for k, v in STRICT.items() if k != "an int field sent length-delimited"}
WIRES: dict[str, Callable[[], Transport]] = {"grpcio": GrpcioTransport, "grpclib": GrpclibTransport}


@pytest.fixture
def fallback(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MICRO_CODEC", "betterproto2")
    codec.reset()
    assert codec.backend(EchoRequest) == "betterproto2"
    yield
    monkeypatch.delenv("MICRO_CODEC")
    codec.reset()


@pytest.mark.parametrize("data", STRICT.values(), ids=STRICT)
def test_the_fallback_rejects_every_malformed_shape(fallback: None, data: bytes) -> None:
    with pytest.raises(codec.DecodeError, match="cannot decode EchoRequest"):
        codec.decode(data, EchoRequest)


def test_betterproto2_alone_is_lenient() -> None:
    """Why the check exists: these reach a handler as a mistyped or half-filled message."""
    assert EchoRequest.parse(b"\x08\x01").text == 1  # type: ignore[comparison-overlap]
    assert EchoRequest.parse(b"\x0a\x05ab").text == "ab"


def test_the_fallback_reads_valid_messages(fallback: None) -> None:
    tree = kit.codec_module().Tree(name="a", leaf=kit.codec_module().TreeLeaf(values=[1, 2]))
    cls = type(tree)
    assert codec.decode(codec.encode(tree, cls), cls) == tree
    unpacked = b"\x0a\x01a\x1a\x04\x10\x01\x10\x02"  # leaf.values, one varint each
    assert codec.decode(unpacked, cls).leaf.values == [1, 2]


@pytest.mark.parametrize("name", TARGETS)
@settings(
    max_examples=15,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_the_check_accepts_valid_bytes_and_is_never_looser_than_upb(
    name: str, data: st.DataObject, seed: int
) -> None:
    case = CASES[name]
    message = data.draw(messages(case.cls, case.descriptor, depth=1))
    valid = bytes(message)
    _wire_check.check(valid, case.cls)  # betterproto2's bytes
    _wire_check.check(case.pb2.FromString(valid).SerializeToString(), case.cls)  # upb's
    rng = random.Random(seed)
    for _ in range(20):
        mutated = _mutate(rng, valid)
        try:
            _wire_check.check(mutated, case.cls)  # what the fallback decoder does
            case.cls.parse(mutated)
        except Exception:  # the codec's DecodeError
            continue
        case.pb2.FromString(mutated)  # accepted here: upb accepts it too


class Greeter(GreeterHandler):
    def __init__(self) -> None:
        self.requests: list[Any] = []

    async def say_hello(self, request: HelloRequest, context: micro.Context) -> HelloReply:
        self.requests.append(request)
        return HelloReply(message=f"hello {request.name}")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("wire", sorted(WIRES))
async def test_a_grpcio_client_sending_malformed_bytes_gets_invalid_argument(
    fallback: None, wire: str
) -> None:
    handler = Greeter()
    service = micro.Service("strict", registry=MemoryRegistry(), transport=WIRES[wire]())
    register_greeter_handler(service, handler)
    async with service, grpc.aio.insecure_channel(service.address) as channel:
        say_hello = channel.unary_unary("/helloworld.v1.Greeter/SayHello")  # raw bytes
        for shape, payload in FOR_HELLO.items():
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await say_hello(payload, timeout=10)
            assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT, shape
            assert "cannot decode HelloRequest" in (info.value.details() or ""), shape
        assert handler.requests == []  # no half-filled message reached the handler
        reply = await say_hello(bytes(HelloRequest(name="you")), timeout=10)
        assert HelloReply.parse(reply).message == "hello you"
