"""The RPC and codec suites' targets compare what ran side by side, round by round."""

from __future__ import annotations

from bench.codec import CodecResults
from bench.codec import tables as codec_tables
from bench.report import DEFAULT_ANCHOR, RAW, rpc_tables
from bench.rpc import LoadSpec, RpcResults, round_order
from bench.rpc_worker import STACKS


def test_every_round_runs_each_stack_once_beside_its_anchor() -> None:
    targets = [*RAW.items(), DEFAULT_ANCHOR[:2]]
    firsts: dict[tuple[str, str], set[int]] = {}
    for round_no in range(8):
        order = round_order(STACKS, round_no)
        assert sorted(order) == sorted(STACKS)
        for ours, anchor in targets:
            i, j = order.index(ours), order.index(anchor)
            assert abs(i - j) == 1, (round_no, ours, anchor, order)
            firsts.setdefault((ours, anchor), set()).add(int(i < j))
    assert all(seen == {0, 1} for seen in firsts.values())  # neither side always first
    assert round_order(("grpclib-pb2", "micro"), 0) == ["micro", "grpclib-pb2"]


def test_a_target_is_the_median_of_the_per_round_ratios() -> None:
    spec = LoadSpec(duration=1, warmup=0, concurrency=(1,), sizes=("medium",), stream_count=0)
    res = RpcResults(spec)
    ours, anchor, _ = DEFAULT_ANCHOR
    # the machine slows down from round to round; ours ran at 0.85x of the anchor beside it
    # in two rounds and at 0.5x in one
    res.samples[(anchor, "unary/medium/c1")] = [
        {"rps": rps, "p50_ms": 1.0, "p99_ms": 1.0} for rps in (1000.0, 600.0, 300.0)
    ]
    res.samples[(ours, "unary/medium/c1")] = [
        {"rps": rps, "p50_ms": 1.0, "p99_ms": 1.0} for rps in (850.0, 300.0, 255.0)
    ]
    lines = rpc_tables(res, 3)
    # the median of the per-round ratios; the ratio of the medians would say 0.50x
    assert "| unary/medium/c1 req/s ratio (>= 0.8x) | 0.85x | met |" in lines


def test_a_codec_target_is_the_median_of_the_per_round_ratios() -> None:
    res = CodecResults()
    # the machine slows down from round to round; micro ran 20x faster than betterproto2
    # in two rounds and 10x in one, where a slow moment hit its turn alone. The ratio of
    # the medians (800 / 60 µs) would say 13.3x, a miss
    for codec, totals in {
        "betterproto2": (400e-6, 800e-6, 1200e-6),
        "micro": (20e-6, 80e-6, 60e-6),
        "upb": (1e-6, 4e-6, 3e-6),
    }.items():
        res.samples[(codec, "medium", "encode")] = [t / 2 for t in totals]
        res.samples[(codec, "medium", "decode")] = [t / 2 for t in totals]
    lines = codec_tables(res, 3)
    assert "| medium encode+decode ≥ 15x faster than betterproto2 | 20.0x | met |" in lines
    assert "| medium encode+decode within 25x of upb | 20.0x | met |" in lines
