"""Suites that run one stack's small unary and streaming points in several *modes* (the
same code, other settings) within each round, modes alternating, and compare each with a
baseline mode of the same run: the cost of a feature on the hot path.

A mode is a function from the workers' base environment to theirs (both the server and the
client process get it).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.gen import generate
from bench.procs import worker_env
from bench.report import _ratio, _verdict
from bench.rpc import LoadSpec, RpcResults, run_stack

Mode = Callable[[dict[str, str]], dict[str, str]]


@dataclass
class ModeResults:
    spec: LoadSpec
    stacks: tuple[str, ...]
    modes: dict[str, RpcResults] = field(default_factory=dict)


def small_points(spec: LoadSpec) -> LoadSpec:
    """``spec`` on the small message only (unary at each concurrency, and streaming)."""
    return LoadSpec(
        duration=spec.duration,
        warmup=spec.warmup,
        concurrency=spec.concurrency,
        sizes=("small",),
        stream_count=spec.stream_count,
    )


def run(
    name: str,
    stacks: Sequence[str],
    modes: Mapping[str, Mode],
    rounds: int,
    spec: LoadSpec,
    log: Callable[[str], None] = print,
) -> ModeResults:
    spec = small_points(spec)
    work = Path(tempfile.mkdtemp(prefix=f"micro-bench-{name}-"))
    results = ModeResults(spec, tuple(stacks), {mode: RpcResults(spec) for mode in modes})
    names = tuple(modes)
    try:
        gen = generate(work / "gen")
        base = worker_env(work)
        for round_no in range(rounds):
            shift = round_no % len(names)
            for mode in names[shift:] + names[:shift]:
                for stack in stacks:
                    log(f"  {name} {round_no + 1}/{rounds}: {stack} {mode}")
                    run_stack(stack, gen, modes[mode](dict(base)), spec, results.modes[mode])
        return results
    finally:
        shutil.rmtree(work, ignore_errors=True)


def table(title: str, res: ModeResults, baseline: str, targets: Mapping[str, float]) -> list[str]:
    """Per stack and mode: the points and their ratio to ``baseline``; then each mode of
    ``targets`` checked against its minimum ratio (the others are reported)."""
    spec = res.spec
    keys = [f"unary/small/c{c}" for c in spec.concurrency]
    out = [
        title,
        "",
        "| stack | mode | " + " | ".join(f"small c{c} req/s (p50/p99 ms)" for c in spec.concurrency)
        + f" | stream msgs/s | vs {baseline} (unary, stream) |",
        "|---|---|" + "---|" * (len(keys) + 2),
    ]  # fmt: skip
    checks: list[str] = []
    for stack in res.stacks:
        base = res.modes[baseline]
        for mode, r in res.modes.items():
            cells = [stack, mode]
            for key in keys:
                rps, p50, p99 = (r.median(stack, key, m) for m in ("rps", "p50_ms", "p99_ms"))
                cells.append("-" if rps is None else f"{rps:.0f} ({p50:.2f}/{p99:.2f})")
            mps = r.median(stack, "stream", "mps")
            cells.append("-" if mps is None else f"{mps:.0f}")
            pairs = [(r.median(stack, k, "rps"), base.median(stack, k, "rps")) for k in keys]
            pairs.append((mps, base.median(stack, "stream", "mps")))
            cells.append(", ".join(_ratio(a, b) for a, b in pairs))
            out.append("| " + " | ".join(cells) + " |")
            if mode in targets:
                least = targets[mode]
                for key, (a, b) in zip([*keys, "stream"], pairs, strict=True):
                    ok = None if a is None or not b else a / b >= least
                    checks.append(
                        f"| {stack} {mode} {key} ratio (>= {least:g}x) | {_ratio(a, b)} | "
                        f"{_verdict(ok)} |"
                    )
    if checks:
        out += ["", f"| target (vs {baseline}) | value | |", "|---|---|---|", *checks]
    return out
