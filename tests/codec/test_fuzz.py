"""The decoder under random and mutated bytes: a message of the type or
micro.codec.DecodeError, nothing else, and quickly. Bounded in examples and in time."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from micro import codec
from tests.codec import kit
from tests.codec.strategies import messages

CASES = {c.name: c for c in kit.codec_cases()} | {c.name: c for c in kit.golden_cases()}
TARGETS = [
    "codecpb.v1.Tree",
    "codecpb.v1.Known",
    "codecpb.v1.Scalars",
    "gateway.v1.Everything",
    "shop.orders.v1.Order",
    "google.protobuf.Struct",
]
SLOWEST = 0.25  # seconds one decode may take (they take microseconds)


def decode_or_error(data: bytes, cls: type[Any]) -> None:
    started = time.perf_counter()
    try:
        decoded = codec.decode(data, cls)
    except codec.DecodeError:
        pass
    else:
        assert isinstance(decoded, cls)
        # what was accepted encodes again (not always to the same message: betterproto2's
        # own datetime and timedelta conversions are lossy, e.g. for negative durations)
        assert isinstance(codec.encode(decoded, cls), bytes)
    assert time.perf_counter() - started < SLOWEST


@pytest.mark.parametrize("name", TARGETS)
@settings(max_examples=150, deadline=None, database=None)
@given(data=st.binary(max_size=64))
def test_random_bytes(name: str, data: bytes) -> None:
    decode_or_error(data, CASES[name].cls)


def _mutate(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(5)
        at = rng.randrange(len(out) + 1)
        if kind == 0 and out:  # flip bits
            at = min(at, len(out) - 1)
            out[at] ^= 1 << rng.randrange(8)
        elif kind == 1:  # insert a byte
            out.insert(at, rng.randrange(256))
        elif kind == 2 and out:  # delete some
            del out[at : at + rng.randint(1, 4)]
        elif kind == 3:  # cut
            del out[at:]
        else:  # a length or tag byte set to an extreme
            if out:
                out[min(at, len(out) - 1)] = rng.choice([0x00, 0x7F, 0x80, 0xFF])
    return bytes(out)


@pytest.mark.parametrize("name", TARGETS)
@settings(
    max_examples=15,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_mutated_valid_messages(name: str, data: st.DataObject, seed: int) -> None:
    case = CASES[name]
    valid = bytes(data.draw(messages(case.cls, case.descriptor, depth=1)))
    rng = random.Random(seed)
    for _ in range(20):
        decode_or_error(_mutate(rng, valid), case.cls)
