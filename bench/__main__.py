"""Run the benchmarks and write a markdown report.

    python -m bench                      # full run: every suite, writes bench/RESULTS.md
    python -m bench --smoke              # a few seconds per suite, tiny sizes (CI)
    python -m bench --suites rpc memory --rounds 5 --duration 10 --out /tmp/r.md

Anchors and micro run alternately within each round; tables show medians and ratios.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench import codec, codegen, gateway, hardening, machine, report, rpc, telemetry
from bench.rpc_worker import STACKS

SUITES = ("codegen", "codec", "rpc", "memory", "gateway", "telemetry", "hardening")
DEFAULT_OUT = Path(__file__).resolve().parent / "RESULTS.md"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, ~1 s points (CI)")
    parser.add_argument("--suites", nargs="+", choices=SUITES, default=list(SUITES))
    parser.add_argument("--stacks", nargs="+", choices=STACKS, default=list(STACKS))
    parser.add_argument("--rounds", type=int, help="rounds per suite (default 3; smoke 1)")
    parser.add_argument("--codegen-rounds", type=int, help="codegen rounds (default --rounds)")
    parser.add_argument("--duration", type=float, help="seconds per RPC point (default 10)")
    parser.add_argument("--stream-count", type=int, help="messages per stream (default 100000)")
    parser.add_argument("--out", type=Path, help=f"report path (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    if args.smoke and args.out is None:
        parser.error("--smoke needs --out (the committed RESULTS.md holds a full run)")
    return args


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _load_spec(args: argparse.Namespace) -> rpc.LoadSpec:
    """The RPC load of the suites that drive services (rpc, telemetry, hardening)."""
    return rpc.LoadSpec(
        duration=args.duration or (0.5 if args.smoke else 10.0),
        warmup=0.2 if args.smoke else 1.0,
        stream_count=args.stream_count or (2000 if args.smoke else 100_000),
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    rounds = args.rounds or (1 if args.smoke else 3)
    out_path: Path = args.out or DEFAULT_OUT
    started = time.monotonic()
    lines = ["# Benchmark results", ""]
    failures: list[str] = []
    lines.append(f"`python -m bench {' '.join(sys.argv[1:] if argv is None else argv)}`".strip())
    lines += ["", *machine.describe(), ""]
    if "codegen" in args.suites:
        log("codegen suite")
        n = args.codegen_rounds or rounds
        codegen_results = codegen.run(n, args.smoke, log)
        lines += [*report.codegen_tables(codegen_results, n), ""]
        failures += [f"{c}: {tool}: {e}" for (c, tool), e in codegen_results.errors.items()]
    if "codec" in args.suites:
        log("codec suite")
        lines += [*codec.tables(codec.run(rounds, args.smoke, log), rounds), ""]
    if "rpc" in args.suites or "memory" in args.suites:
        log("rpc suite")
        spec = _load_spec(args)
        results = rpc.run(rounds, spec, tuple(args.stacks), log)
        if "rpc" in args.suites:
            lines += [*report.rpc_tables(results, rounds), ""]
        if "memory" in args.suites:
            lines += [*report.memory_tables(results), ""]
    if "gateway" in args.suites:
        log("gateway suite")
        gateway_spec = gateway.GatewaySpec(
            duration=args.duration or (0.5 if args.smoke else 10.0),
            warmup=0.2 if args.smoke else 1.0,
        )
        lines += [*gateway.tables(gateway.run(rounds, gateway_spec, log), rounds), ""]
    if "telemetry" in args.suites:
        log("telemetry suite")
        telemetry_spec = _load_spec(args)
        lines += [*telemetry.tables(telemetry.run(rounds, telemetry_spec, log), rounds), ""]
    if "hardening" in args.suites:
        log("hardening suite")
        hardening_spec = _load_spec(args)
        lines += [*hardening.tables(hardening.run(rounds, hardening_spec, log), rounds), ""]
    lines.append(f"Total bench time: {time.monotonic() - started:.0f} s.")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text("\n".join(lines) + "\n")
    log(f"wrote {out_path}")
    if failures:  # the table shows them; the exit status lets CI see them too
        sys.exit("\n".join(["bench: some generators failed:", *failures]))


if __name__ == "__main__":
    main()
