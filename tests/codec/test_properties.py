"""Property tests: for every message type of golden/ and tests/codec/protos, micro's fast
codec and betterproto2's own codec agree in both directions, and the fast codec's bytes
parse in upb (the protoc ``_pb2`` class) to the message betterproto2's bytes give."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from micro import _upb_codec
from tests.codec import kit
from tests.codec.strategies import messages

CASES = {c.name: c for c in kit.golden_cases()} | {f"codec:{c.name}": c for c in kit.codec_cases()}
# the types with every field shape get more examples than the golden ones
RICH = {"codec:codecpb.v1.Scalars", "codec:codecpb.v1.Tree", "codec:codecpb.v1.Known"}

PROPERTY = settings(
    max_examples=12,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def check_agree(case: kit.Case, message: Any) -> None:
    plan = _upb_codec.plan_for(case.cls)
    theirs = bytes(message)
    ours = plan.encode(message)
    # betterproto2's reading of its own bytes: what the message means on the wire (it
    # carries datetimes and timedeltas through its own lossy conversions)
    meant = case.cls.parse(theirs)
    assert case.cls.parse(ours) == meant
    assert plan.decode(theirs) == meant
    assert plan.decode(ours) == meant
    assert case.pb2.FromString(ours) == case.pb2.FromString(theirs)
    if meant == message:
        assert plan.decode(ours) == message


@pytest.mark.parametrize("name", sorted(set(CASES) - RICH))
@PROPERTY
@given(data=st.data())
def test_codecs_agree_on_golden_types(name: str, data: st.DataObject) -> None:
    case = CASES[name]
    check_agree(case, data.draw(messages(case.cls, case.descriptor, depth=1)))


@pytest.mark.parametrize(
    ("name", "depth"),
    # a Tree of depth 2 holds trees of trees in maps and lists: slow to draw
    [("codec:codecpb.v1.Scalars", 0), ("codec:codecpb.v1.Tree", 1), ("codec:codecpb.v1.Known", 2)],
)
@settings(PROPERTY, max_examples=100)
@given(data=st.data())
def test_codecs_agree_on_every_field_shape(name: str, depth: int, data: st.DataObject) -> None:
    case = CASES[name]
    check_agree(case, data.draw(messages(case.cls, case.descriptor, depth=depth)))
