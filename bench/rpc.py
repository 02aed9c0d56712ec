"""RPC + memory benchmark: server and client in separate processes on 127.0.0.1.

Each round runs every stack once, each micro stack beside its anchor (:func:`round_order`):
start its server, wait 1 s and read its idle RSS, run the client's whole load (unary
small/medium at each concurrency, then the server stream), read the server's peak RSS,
stop the server.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.gen import generate
from bench.procs import ROOT, spawn, stop, worker_env
from bench.rpc_worker import STACKS


@dataclass(frozen=True)
class LoadSpec:
    duration: float
    warmup: float
    concurrency: tuple[int, ...] = (1, 64)
    sizes: tuple[str, ...] = ("small", "medium")
    stream_count: int = 100_000


@dataclass
class RpcResults:
    spec: LoadSpec
    # (stack, metric key like "unary/small/c64") -> one result dict per round
    samples: dict[tuple[str, str], list[dict[str, float]]] = field(default_factory=dict)
    idle_rss_kb: dict[str, list[int]] = field(default_factory=dict)
    peak_rss_kb: dict[str, list[int]] = field(default_factory=dict)

    def median(self, stack: str, key: str, metric: str) -> float | None:
        rounds = self.samples.get((stack, key))
        if not rounds:
            return None
        return statistics.median(r[metric] for r in rounds)


def _status_kb(pid: int, field_name: str) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field_name} for pid {pid}")


def run_stack(
    stack: str, gen: Path, env: dict[str, str], spec: LoadSpec, results: RpcResults
) -> None:
    server, target = spawn(
        [sys.executable, "-m", "bench.rpc_worker", "serve", stack, str(gen)], env, "READY "
    )
    try:
        time.sleep(1.0)
        results.idle_rss_kb.setdefault(stack, []).append(_status_kb(server.pid, "VmRSS"))
        args = [
            sys.executable, "-m", "bench.rpc_worker", "load", stack, str(gen), target,
            "--duration", str(spec.duration), "--warmup", str(spec.warmup),
            "--concurrency", *map(str, spec.concurrency), "--sizes", *spec.sizes,
            "--stream-count", str(spec.stream_count),
        ]  # fmt: skip
        budget = 120 + len(spec.sizes) * len(spec.concurrency) * (spec.duration + spec.warmup)
        done = subprocess.run(
            args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=budget, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{stack} client failed: {done.stderr.strip()[-800:]}")
        results.peak_rss_kb.setdefault(stack, []).append(_status_kb(server.pid, "VmHWM"))
        for key, value in json.loads(done.stdout.strip().splitlines()[-1]).items():
            results.samples.setdefault((stack, key), []).append(value)
    finally:
        stop(server)


#: Each chain runs in a row, so that every stack a target compares runs right beside the
#: stack it is compared with: each micro stack beside the raw stack of its transport and
#: messages, and the default stack (micro) beside grpcio-pb2 too. This machine's speed
#: drifts over minutes, and a target is the median of the per-round ratios of a pair.
CHAINS = (
    ("grpcio-bp2", "micro", "grpcio-pb2", "micro-pb2"),
    ("grpclib-bp2", "micro-grpclib", "grpclib-pb2", "micro-grpclib-pb2"),
)


def round_order(stacks: tuple[str, ...], round_no: int) -> list[str]:
    """The stacks of round ``round_no``: the chains in turn first, each one reversed every
    other round, so that neither side of a pair always runs first."""
    chains = [c for c in CHAINS if any(s in stacks for s in c)]
    shift = round_no % len(chains) if chains else 0
    order: list[str] = []
    for chain in chains[shift:] + chains[:shift]:
        order += chain[::-1] if round_no % 2 else chain
    order = [s for s in order if s in stacks]
    return order + [s for s in stacks if s not in order]


def run(
    rounds: int,
    spec: LoadSpec,
    stacks: tuple[str, ...] = STACKS,
    log: Callable[[str], None] = print,
) -> RpcResults:
    work = Path(tempfile.mkdtemp(prefix="micro-bench-rpc-"))
    try:
        gen = generate(work / "gen")
        env = worker_env(work)
        results = RpcResults(spec)
        for round_no in range(rounds):
            for stack in round_order(stacks, round_no):
                log(f"  rpc {round_no + 1}/{rounds}: {stack}")
                run_stack(stack, gen, env, spec, results)
        return results
    finally:
        shutil.rmtree(work, ignore_errors=True)
