"""micro.codec with the fast path: which codec a type gets, strictness, unknown fields,
the values betterproto2 keeps that plain equality would miss, and an RPC's answer to bytes
upb rejects."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Any

import betterproto2
import pytest
from grpclib.client import Channel
from grpclib.const import Cardinality
from grpclib.const import Status as GrpclibStatus
from grpclib.exceptions import GRPCError

import micro
from golden.helloworld.v1 import HelloReply, HelloRequest
from golden.helloworld.v1.helloworld_micro import GreeterHandler, register_greeter_handler
from golden.streaming.v1 import EchoRequest
from micro import codec
from micro.registry import MemoryRegistry
from tests.codec import kit
from tests.runtime.test_wire import RawCodec

C = kit.codec_module()
WKT = kit.wkt_module()


@pytest.fixture
def reset_codec() -> Iterator[None]:
    codec.reset()
    yield
    codec.reset()


@dataclasses.dataclass(eq=False, repr=False)
class Unlisted(betterproto2.Message):
    """In no message pool and no compiled file: betterproto2's codec serves it."""

    text: str = betterproto2.field(1, betterproto2.TYPE_STRING)


def test_generated_types_go_through_upb_and_others_fall_back() -> None:
    assert codec.backend(HelloRequest) == "upb"
    assert codec.backend(C.Tree) == "upb"
    assert codec.backend(Unlisted) == "betterproto2"
    assert codec.decode(codec.encode(Unlisted(text="x"), Unlisted), Unlisted).text == "x"
    pb2 = kit.codec_cases()[0].pb2
    assert codec.backend(pb2) == "protobuf"


def test_micro_codec_betterproto2_forces_the_fallback(
    monkeypatch: pytest.MonkeyPatch, reset_codec: None
) -> None:
    monkeypatch.setenv("MICRO_CODEC", "betterproto2")
    assert codec.backend(C.Tree) == "betterproto2"
    tree = C.Tree(name="a", leaf=C.TreeLeaf(values=[1]))
    assert codec.decode(codec.encode(tree, C.Tree), C.Tree) == tree
    monkeypatch.delenv("MICRO_CODEC")
    codec.reset()
    assert codec.backend(C.Tree) == "upb"


# bytes that are no valid EchoRequest (text = 1, fail = 2, sleep_ms = 3); betterproto2's
# own codec reads several of them into a half-filled message
MALFORMED = {
    "length past the end": b"\x0a\x05ab",
    "varint cut short": b"\x18\x80",
    "invalid UTF-8 in a string": b"\x0a\x01\xff",
    "field number 0": b"\x00\x01",
    "wire type 7": b"\x0f\x01",
    "end of a group never started": b"\x0c",
    "varint of 11 bytes": b"\x18" + b"\xff" * 10 + b"\x01",
}


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED)
def test_bytes_upb_rejects_are_a_decode_error(data: bytes) -> None:
    with pytest.raises(codec.DecodeError, match="cannot decode EchoRequest"):
        codec.decode(data, EchoRequest)


def test_a_known_field_of_the_wrong_wire_type_is_an_unknown_field_not_a_wrong_value() -> None:
    wrong = codec.decode(b"\x08\x01", EchoRequest)  # text (a string) sent as a varint
    assert wrong.text == "" and isinstance(wrong.text, str)
    assert wrong._unknown_fields == b"\x08\x01"
    assert codec.encode(wrong, EchoRequest) == b"\x08\x01"


def test_encoding_a_wrong_type_or_an_out_of_range_value_is_an_encode_error() -> None:
    with pytest.raises(codec.EncodeError):
        codec.encode(EchoRequest(text=1), EchoRequest)  # type: ignore[arg-type]
    with pytest.raises(codec.EncodeError):
        codec.encode(EchoRequest(sleep_ms=2**31), EchoRequest)
    with pytest.raises(codec.EncodeError, match="expected EchoRequest"):
        codec.encode(HelloRequest(name="x"), EchoRequest)


def _field(number: int, wire: int, payload: bytes) -> bytes:
    tag = number << 3 | wire
    assert tag < 1 << 14
    return (bytes([tag]) if tag < 128 else bytes([tag & 0x7F | 0x80, tag >> 7])) + payload


def test_unknown_fields_are_kept_at_every_depth_as_betterproto2_keeps_them() -> None:
    leaf = (
        bytes(C.TreeLeaf(label="l")) + _field(15, 0, b"\x07") + _field(14, 5, b"\x01\x02\x03\x04")
    )
    child = bytes(C.Tree(name="c")) + _field(31, 2, b"\x03abc")
    data = (
        bytes(C.Tree(name="root"))
        + _field(3, 2, bytes([len(leaf)]) + leaf)  # leaf
        + _field(4, 2, bytes([len(child)]) + child)  # children[0]
        + b"\xa8\x06\x01"  # field 101, a varint
    )
    ours = codec.decode(data, C.Tree)
    theirs = C.Tree.parse(data)
    assert ours == theirs
    assert ours._unknown_fields == theirs._unknown_fields == b"\xa8\x06\x01"
    assert ours.leaf._unknown_fields == theirs.leaf._unknown_fields
    assert ours.children[0]._unknown_fields == theirs.children[0]._unknown_fields
    pb2 = next(c.pb2 for c in kit.codec_cases() if c.name == "codecpb.v1.Tree")
    assert pb2.FromString(codec.encode(ours, C.Tree)) == pb2.FromString(data)
    assert pb2.FromString(codec.encode(theirs, C.Tree)) == pb2.FromString(data)
    # a group (field 102) holding a varint: kept whole; betterproto2 reads its inside as
    # this message's own field 1 (name = 1)
    group = b"\xb3\x06\x08\x01\xb4\x06"
    grouped = codec.decode(data + group, C.Tree)
    assert grouped.name == "root" and grouped._unknown_fields == b"\xa8\x06\x01" + group
    assert C.Tree.parse(data + group).name == 1


def test_values_plain_equality_would_not_check() -> None:
    scalars = C.Scalars(f_double=math.nan, o_float=math.inf, f_enum=C.Color(7), o_int32=0)
    back = codec.decode(codec.encode(scalars, C.Scalars), C.Scalars)
    assert math.isnan(back.f_double) and back.o_float == math.inf
    assert back.f_enum == 7 and isinstance(back.f_enum, C.Color)  # an unknown enum value
    assert back.o_int32 == 0 and back.o_string is None  # presence, not the zero value
    tree = C.Tree(number=0, children=[C.Tree()], leaf=C.TreeLeaf())
    back_tree = codec.decode(codec.encode(tree, C.Tree), C.Tree)
    assert back_tree.number == 0 and back_tree.text is None  # the oneof member that is set
    assert back_tree.leaf == C.TreeLeaf() and back_tree.parent is None  # empty, not unset
    assert isinstance(back_tree.children[0], C.Tree)


def test_well_known_types_as_betterproto2_maps_them() -> None:
    import datetime

    at = datetime.datetime(2024, 2, 29, 12, 0, 0, 123456, tzinfo=datetime.UTC)
    known = C.Known(
        at=at,
        took=datetime.timedelta(seconds=90, microseconds=5),
        w_int64=0,
        w_string="",
        struct=WKT.Struct(fields={"a": WKT.Value(list_value=WKT.ListValue(values=[]))}),
        value=WKT.Value(null_value=WKT.NullValue.NULL_VALUE),
        any=WKT.Any(type_url="type.googleapis.com/codecpb.v1.Tree", value=bytes(C.Tree(name="x"))),
        mask=WKT.FieldMask(paths=["a.b", "c"]),
        empty=WKT.Empty(),
        times=[at],
        durations={"d": datetime.timedelta(days=-1)},
        wrapped_list=[0, 5],
        since=at,
    )
    back: Any = codec.decode(codec.encode(known, C.Known), C.Known)
    assert back == known
    assert back.w_int64 == 0 and back.w_bool is None  # a wrapper's presence
    assert back.value.null_value == WKT.NullValue.NULL_VALUE and back.label is None


class Greeter(GreeterHandler):
    async def say_hello(self, request: HelloRequest, context: micro.Context) -> HelloReply:
        return HelloReply(message=f"hello {request.name}")


@pytest.mark.timeout(60)
async def test_a_request_upb_rejects_answers_invalid_argument() -> None:
    service = micro.Service("greeter-codec", registry=MemoryRegistry())
    register_greeter_handler(service, Greeter())
    async with service:
        host, port = service.address.rsplit(":", 1)
        channel = Channel(host, int(port), codec=RawCodec())
        try:
            path = "/helloworld.v1.Greeter/SayHello"
            for payload in (MALFORMED["length past the end"], MALFORMED["field number 0"]):
                stream = channel.request(path, Cardinality.UNARY_UNARY, bytes, bytes, timeout=5)
                with pytest.raises(GRPCError) as info:
                    async with stream:
                        await stream.send_message(payload, end=True)
                        await stream.recv_message()
                assert info.value.status is GrpclibStatus.INVALID_ARGUMENT
                assert "cannot decode HelloRequest" in (info.value.message or "")
            stream = channel.request(path, Cardinality.UNARY_UNARY, bytes, bytes, timeout=5)
            async with stream:
                await stream.send_message(bytes(HelloRequest(name="you")), end=True)
                reply = await stream.recv_message()
            assert HelloReply.parse(reply or b"").message == "hello you"
        finally:
            channel.close()
