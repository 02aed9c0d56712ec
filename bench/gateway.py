"""Gateway benchmark: Library.GetBook through `micro api` (HTTP/JSON) against a direct micro
client call, in the same run, against the same service node.

    python -m bench.gateway                  # 3 rounds, 10 s per point, c=1 and c=16
    python -m bench.gateway --smoke          # a few seconds (what CI runs)

The service, `micro api` and each load generator are separate processes on 127.0.0.1 with
one local registry. Within each round the direct and gateway loads alternate; the table
shows medians over rounds. The overhead per request is the difference of the mean
latencies at each concurrency; it includes the HTTP client (a lean h11 one: with httpx the
load process, not the gateway, was what saturated), the JSON mapping and the extra hop.
"""

from __future__ import annotations

import argparse
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

from bench.procs import ROOT, spawn, stop, worker_env

SERVICE = "library"
LISTENING = "micro api listening on "


@dataclass(frozen=True)
class GatewaySpec:
    duration: float = 10.0
    warmup: float = 1.0
    concurrency: tuple[int, ...] = (1, 16)


@dataclass
class GatewayResults:
    spec: GatewaySpec
    # (path "direct" | "gateway", concurrency) -> one result per round
    samples: dict[tuple[str, int], list[dict[str, float]]] = field(default_factory=dict)

    def median(self, path: str, c: int, metric: str) -> float:
        return statistics.median(r[metric] for r in self.samples[(path, c)])


def _load(
    mode: str, target: str, c: int, spec: GatewaySpec, env: dict[str, str]
) -> dict[str, float]:
    args = [
        sys.executable, "-m", "bench.gateway_worker", "load", mode, target, str(c),
        str(spec.duration), str(spec.warmup),
    ]  # fmt: skip
    done = subprocess.run(
        args,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120 + 2 * (spec.duration + spec.warmup),
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{mode} load failed: {done.stderr.strip()[-800:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(rounds: int, spec: GatewaySpec, log: Callable[[str], None] = print) -> GatewayResults:
    work = Path(tempfile.mkdtemp(prefix="micro-bench-gateway-"))
    env = worker_env(work)
    results = GatewayResults(spec)
    service = gateway = None
    try:
        service, _ = spawn(
            [sys.executable, "-m", "bench.gateway_worker", "serve", SERVICE], env, "READY "
        )
        gateway, url = spawn(
            [sys.executable, "-m", "micro.cli", "api", "--address", "127.0.0.1:0"],
            env,
            LISTENING,
        )
        time.sleep(0.5)
        for round_no in range(rounds):
            order = ("direct", "gateway") if round_no % 2 == 0 else ("gateway", "direct")
            for c in spec.concurrency:
                for path in order:
                    log(f"  gateway {round_no + 1}/{rounds}: {path} c={c}")
                    target = SERVICE if path == "direct" else url
                    mode = "direct" if path == "direct" else "http"
                    results.samples.setdefault((path, c), []).append(
                        _load(mode, target, c, spec, env)
                    )
        return results
    finally:
        for process in (gateway, service):
            if process is not None:
                stop(process)
        shutil.rmtree(work, ignore_errors=True)


def tables(results: GatewayResults, rounds: int) -> list[str]:
    lines = [
        "### Gateway",
        "",
        "Library.GetBook, `micro api` (keep-alive HTTP/1.1 + JSON, h11 client) vs a direct "
        f"micro client (gRPC); median of {rounds} round(s), {results.spec.duration:g} s per point.",
        "",
        "| path | concurrency | req/s | p50 (ms) | p99 (ms) | mean (ms) |",
        "|---|---|---|---|---|---|",
    ]
    for c in results.spec.concurrency:
        for path in ("direct", "gateway"):
            lines.append(
                f"| {path} | {c} | {results.median(path, c, 'rps'):.0f} "
                f"| {results.median(path, c, 'p50_ms'):.2f} "
                f"| {results.median(path, c, 'p99_ms'):.2f} "
                f"| {results.median(path, c, 'mean_ms'):.2f} |"
            )
    lines += ["", "| concurrency | overhead per request (ms, mean latency) | req/s ratio |"]
    lines.append("|---|---|---|")
    for c in results.spec.concurrency:
        overhead = results.median("gateway", c, "mean_ms") - results.median("direct", c, "mean_ms")
        ratio = results.median("gateway", c, "rps") / results.median("direct", c, "rps")
        lines.append(f"| {c} | {overhead:.2f} | {ratio:.2f} |")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="short points, one round (CI)")
    parser.add_argument("--rounds", type=int, help="rounds (default 3; smoke 1)")
    parser.add_argument("--duration", type=float, help="seconds per point (default 10)")
    parser.add_argument("--concurrency", type=int, nargs="+", help="default: 1 16")
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.smoke else 3)
    spec = GatewaySpec(
        duration=args.duration or (0.5 if args.smoke else 10.0),
        warmup=0.2 if args.smoke else 1.0,
        concurrency=tuple(args.concurrency or (1, 16)),
    )

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    text = "\n".join(tables(run(rounds, spec, log), rounds)) + "\n"
    print(text)
    if args.out is not None:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
