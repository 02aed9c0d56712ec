"""JSON through the fast codec: for every message type of golden/ and tests/codec/protos,
micro's JSON means what its bytes mean (read back by protoc's ``_pb2`` class through
protobuf's ``json_format``), round-trips to the message its bytes give, and reads what
betterproto2's ``to_json`` writes; and it is strict where betterproto2 is not."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from golden.helloworld.v1 import HelloRequest
from micro import _upb_codec, codec
from tests.codec import kit
from tests.codec.strategies import messages

CASES = {c.name: c for c in kit.golden_cases()} | {f"codec:{c.name}": c for c in kit.codec_cases()}
C = kit.codec_module()
WKT = kit.wkt_module()

BETTERPROTO2_DEVIATIONS = ("FieldMask JSON value not a string", "use quoted", "Float value too")

PROPERTY = settings(
    max_examples=8,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def check_json(case: kit.Case, message: Any) -> None:
    plan = _upb_codec.plan_for(case.cls)
    data = plan.encode(message)
    pb2 = case.pb2.FromString(data)
    try:
        text = codec.encode_json(message, case.cls)
    except codec.EncodeError:
        # outside the JSON mapping (a Timestamp past year 9999, a Duration whose parts'
        # signs differ, a FieldMask path with capitals, an Any of an unknown type):
        # protobuf refuses it too
        with pytest.raises((json_format.SerializeToJsonError, TypeError, ValueError)):
            json_format.MessageToJson(pb2)
        return
    # what protobuf writes for the same bytes (maps in any order)
    assert json.loads(text) == json.loads(json_format.MessageToJson(pb2))
    try:
        back = json_format.Parse(text, case.pb2())
    except json_format.ParseError:
        # protobuf cannot read its own JSON back (float's largest value is written rounded
        # up, past float's range): neither can we, and we say so as a DecodeError
        with pytest.raises(codec.DecodeError):
            codec.decode_json(text, case.cls)
        return
    if back == pb2:  # protobuf's own JSON round trip holds
        assert codec.decode_json(text, case.cls) == plan.decode(data)
    try:
        theirs = message.to_json()
        meant = case.cls.from_json(theirs)
    except Exception:  # betterproto2 cannot write (or read back) this message as JSON
        return
    # what betterproto2 peers send is read, but for what betterproto2 writes against the
    # mapping: a FieldMask as an object (the mapping has a string), a wrapper's infinity or
    # NaN as a bare word (not JSON at all), a float field's value past float's range
    try:
        ours = codec.decode_json(theirs, case.cls)
    except codec.DecodeError as exc:
        assert any(s in str(exc) for s in BETTERPROTO2_DEVIATIONS), exc
        return
    if meant == message:  # betterproto2 wrote it exactly (it rounds some Durations, keeps
        assert ours == message  # bool map keys as strings): we read it exactly too


@pytest.mark.parametrize("name", sorted(CASES))
@PROPERTY
@given(data=st.data())
def test_json_means_what_the_bytes_mean(name: str, data: st.DataObject) -> None:
    case = CASES[name]
    assert codec.backend(case.cls) == "upb"
    check_json(case, data.draw(messages(case.cls, case.descriptor, depth=1)))


def test_json_follows_the_proto3_mapping_where_betterproto2_does_not() -> None:
    known = C.Known(
        w_int64=2**62,
        w_bytes=b"\x00\xff",
        mask=WKT.FieldMask(paths=["a.b", "c"]),
        took=datetime.timedelta(seconds=1, microseconds=500000),
    )
    out = json.loads(codec.encode_json(known, C.Known))
    # 64-bit integers as strings, bytes as base64, a FieldMask as one camelCase string
    assert out == {"took": "1.500s", "wInt64": str(2**62), "wBytes": "AP8=", "mask": "a.b,c"}
    assert codec.decode_json(json.dumps(out), C.Known) == known
    assert codec.decode_json('{"wInt64": 5}', C.Known).w_int64 == 5  # a number reads too


@pytest.mark.parametrize(
    "text",
    [
        '{"name": 5}',  # betterproto2 reads this into the str field as the int 5
        '{"name": "x", "nope": 1}',
        '{"name": "x"',
        "5",
    ],
)
def test_json_that_does_not_fit_the_type_is_a_decode_error_on_one_line(text: str) -> None:
    with pytest.raises(codec.DecodeError) as caught:
        codec.decode_json(text, HelloRequest)
    assert "\n" not in str(caught.value)


def test_a_value_outside_the_json_mapping_is_an_encode_error() -> None:
    far = C.Known(took=datetime.timedelta(days=10**8))
    assert codec.decode(codec.encode(far, C.Known), C.Known) == far  # fine on the wire
    with pytest.raises(codec.EncodeError, match="as JSON"):
        codec.encode_json(far, C.Known)
