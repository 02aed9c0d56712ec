"""Hardening cost: the micro stacks' small unary and streaming points with the default
transport options (4 MiB message limit checked before buffering, bounded streams and
resets per connection), against the same with everything unbounded, and with gzip
(reported). Strict decoding's cost is in the codec suite (the fast codec is strict by
construction; the ``micro-fallback`` row is betterproto2's codec behind micro's wire check).

Target: the defaults within 5% of unbounded.
"""

from __future__ import annotations

from collections.abc import Callable

from bench import modes
from bench.rpc import LoadSpec

STACKS = ("micro", "micro-grpclib")
MODES = ("unbounded", "defaults", "gzip")


def _mode(mode: str) -> modes.Mode:
    def env(base: dict[str, str]) -> dict[str, str]:
        base.pop("BENCH_TRANSPORT_OPTIONS", None)
        if mode != "defaults":
            base["BENCH_TRANSPORT_OPTIONS"] = mode
        return base

    return env


def run(rounds: int, spec: LoadSpec, log: Callable[[str], None] = print) -> modes.ModeResults:
    return modes.run("hardening", STACKS, {m: _mode(m) for m in MODES}, rounds, spec, log)


def tables(res: modes.ModeResults, rounds: int) -> list[str]:
    spec = res.spec
    title = (
        f"### Hardening cost (medians of {rounds} rounds; {spec.duration:g} s per point; "
        f"streaming: {spec.stream_count} messages)"
    )
    return modes.table(title, res, "unbounded", {"defaults": 0.95})
