"""Codec benchmark: encode and decode of the RPC bench's small and ~1 KB messages.

    python -m bench --suites codec

Four codecs on the same message: betterproto2's own (``bytes(msg)``, ``Cls.parse``),
micro's (``micro.codec.encode/decode`` on the betterproto2 class: the fast codec when
protobuf is installed), micro's fallback without protobuf (betterproto2's codec behind
micro's strict wire check: what strictness costs there) and upb itself on the ``_pb2``
class. Each round times every codec
(the order rotated); the tables show medians of the per-message times, and a target is
the median of the per-round ratios (:meth:`CodecResults.ratio`).
"""

from __future__ import annotations

import functools
import importlib
import statistics
import sys
import tempfile
import timeit
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.gen import generate
from bench.rpc_worker import Messages, medium_message

CODECS = ("betterproto2", "micro", "micro-fallback", "upb")
SIZES = ("small", "medium")


@dataclass
class CodecResults:
    # (codec, size, "encode" | "decode") -> seconds per message, one per round
    samples: dict[tuple[str, str, str], list[float]] = field(default_factory=dict)
    wire_bytes: dict[str, int] = field(default_factory=dict)
    backend: str = ""  # what micro.codec used for the betterproto2 classes

    def median(self, codec: str, size: str, op: str) -> float | None:
        values = self.samples.get((codec, size, op))
        return statistics.median(values) if values else None

    def ratio(self, slower: str, faster: str, size: str) -> float | None:
        """The median over rounds of ``slower``'s encode+decode time over ``faster``'s in
        the same round: the codecs of a round run within seconds of each other, so the
        machine's drift between rounds does not move it."""
        per_round = []
        for codec in (slower, faster):
            enc = self.samples.get((codec, size, "encode"), [])
            dec = self.samples.get((codec, size, "decode"), [])
            per_round.append([e + d for e, d in zip(enc, dec, strict=True)])
        numerators, denominators = per_round
        if not numerators or len(numerators) != len(denominators):
            return None
        ratios = [a / b for a, b in zip(numerators, denominators, strict=True) if b]
        return statistics.median(ratios) if ratios else None


def _per_call(fn: Callable[[], Any], budget: float) -> float:
    """Seconds per call: the best of 5 repeats, each about ``budget`` / 5 long."""
    timer = timeit.Timer(fn)
    number, elapsed = timer.autorange()
    number = max(1, int(number * (budget / 5) / max(elapsed, 1e-9)))
    return min(timer.repeat(repeat=5, number=number)) / number


def _load(gen: Path) -> tuple[Any, Any]:
    for path in (gen / "bp", gen / "pb"):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    bp = importlib.import_module("bpgen.benchpb.v1")
    importlib.import_module("bpgen.benchpb.v1.bench_micro")
    pb = importlib.import_module("benchpb.v1.bench_pb2")
    return bp, pb


def _ops(
    codec: Any, message: Any, data: bytes, bp_type: type[Any], pb_type: Any
) -> dict[str, tuple[Callable[[], Any], Callable[[], Any]]]:
    """Per codec: encode ``message`` and decode ``data`` (the same message's bytes)."""
    pb_message = pb_type.FromString(data)

    def micro_encode() -> bytes:
        encoded: bytes = codec.encode(message, bp_type)
        return encoded

    def micro_decode() -> Any:
        return codec.decode(data, bp_type)

    def bp_decode() -> Any:
        return bp_type.parse(data)

    # what micro.codec.decode runs for this type without protobuf (MICRO_CODEC=betterproto2)
    fallback_decode = functools.partial(codec._strict_parse(bp_type), data)

    def pb_decode() -> Any:
        return pb_type.FromString(data)

    return {
        "betterproto2": (message.__bytes__, bp_decode),
        "micro": (micro_encode, micro_decode),
        "micro-fallback": (message.__bytes__, fallback_decode),
        "upb": (pb_message.SerializeToString, pb_decode),
    }


def run(rounds: int, smoke: bool, log: Callable[[str], None]) -> CodecResults:
    from micro import codec

    results = CodecResults()
    budget = 0.05 if smoke else 0.5
    with tempfile.TemporaryDirectory(prefix="micro-bench-codec-") as tmp:
        bp, pb = _load(generate(Path(tmp)))
        medium = medium_message(
            Messages(
                bp.SmallMessage, bp.MediumMessage, bp.StreamRequest, bp.MediumMessageItem,
                bp.MediumMessageAddress, "",
            )
        )  # fmt: skip
        bp_messages = {"small": bp.SmallMessage(name="bench", id=42), "medium": medium}
        types = {
            "small": (bp.SmallMessage, pb.SmallMessage),
            "medium": (bp.MediumMessage, pb.MediumMessage),
        }
        results.backend = codec.backend(bp.MediumMessage)
        for size in SIZES:
            bp_type, pb_type = types[size]
            message = bp_messages[size]
            data = bytes(message)
            results.wire_bytes[size] = len(data)
            ops = _ops(codec, message, data, bp_type, pb_type)
            for r in range(rounds):
                order = CODECS[r % len(CODECS) :] + CODECS[: r % len(CODECS)]
                for name in order:
                    encode, decode = ops[name]
                    for op, fn in (("encode", encode), ("decode", decode)):
                        results.samples.setdefault((name, size, op), []).append(
                            _per_call(fn, budget)
                        )
                log(f"  codec {size} round {r + 1}/{rounds}")
    return results


def _us(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e6:.2f}"


def tables(res: CodecResults, rounds: int) -> list[str]:
    lines = [
        "## Codec",
        "",
        f"Per message, median of {rounds} round(s); micro's codec on the betterproto2 classes "
        f"went through `{res.backend}`. Wire size: small {res.wire_bytes.get('small')} B, "
        f"medium {res.wire_bytes.get('medium')} B.",
        "",
        "| message | codec | encode µs | decode µs | encode+decode µs | vs betterproto2 | vs upb |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    totals: dict[tuple[str, str], float] = {}
    for size in SIZES:
        for name in CODECS:
            enc, dec = res.median(name, size, "encode"), res.median(name, size, "decode")
            if enc is not None and dec is not None:
                totals[(name, size)] = enc + dec
        for name in CODECS:
            total = totals.get((name, size))
            base, upb = totals.get(("betterproto2", size)), totals.get(("upb", size))
            faster = f"{base / total:.1f}x faster" if total and base else "-"
            slower = f"{total / upb:.1f}x slower" if total and upb else "-"
            lines.append(
                f"| {size} | {name} | {_us(res.median(name, size, 'encode'))} | "
                f"{_us(res.median(name, size, 'decode'))} | {_us(total)} | {faster} | {slower} |"
            )
    lines += [
        "",
        "Targets: the median of the per-round ratios (the codecs of a round ran side by side).",
        "",
        "| target | measured | verdict |",
        "| --- | --- | --- |",
    ]
    than_bp2 = res.ratio("betterproto2", "micro", "medium")
    than_upb = res.ratio("micro", "upb", "medium")
    if than_bp2 is not None and than_upb is not None:
        lines.append(
            f"| medium encode+decode ≥ 15x faster than betterproto2 | {than_bp2:.1f}x | "
            f"{'met' if than_bp2 >= 15 else '**missed**'} |"
        )
        lines.append(
            f"| medium encode+decode within 25x of upb | {than_upb:.1f}x | "
            f"{'met' if than_upb <= 25 else '**missed**'} |"
        )
    small = res.ratio("betterproto2", "micro", "small")
    if small is not None:
        lines.append(
            f"| small encode+decode not slower than betterproto2 | {small:.1f}x | "
            f"{'met' if small >= 1 / 1.05 else '**missed**'} |"
        )
    return lines
