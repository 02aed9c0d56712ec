"""Markdown tables for bench/RESULTS.md: medians, and the ratios the targets are about."""

from __future__ import annotations

import statistics

from bench import codegen
from bench.codegen import CodegenResults
from bench.rpc import RpcResults
from bench.rpc_worker import STACKS

# our stack -> the raw grpclib stack with the same messages it is measured against
#: each micro stack and the raw stack of its transport and messages
RAW = {
    "micro": "grpcio-bp2",
    "micro-pb2": "grpcio-pb2",
    "micro-grpclib": "grpclib-bp2",
    "micro-grpclib-pb2": "grpclib-pb2",
}
#: the default micro stack (betterproto2 messages, default transport) against this anchor
DEFAULT_ANCHOR = ("micro", "grpcio-pb2", 0.8)


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "-"


def _paired(res: RpcResults, ours: str, anchor: str, key: str, metric: str) -> float | None:
    """The median over rounds of ``ours / anchor`` within each round (the two ran side by
    side: :func:`bench.rpc.round_order`), which the machine's drift between rounds does
    not move as it moves a ratio of medians."""
    a, b = res.samples.get((ours, key)), res.samples.get((anchor, key))
    if not a or not b or len(a) != len(b):
        return None
    ratios = [x[metric] / y[metric] for x, y in zip(a, b, strict=True) if y[metric]]
    return statistics.median(ratios) if ratios else None


def _times(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


def _verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("met" if ok else "**missed**")


def codegen_tables(res: CodegenResults, rounds: int) -> list[str]:
    names = [c.name for c in res.corpora]
    heads = [f"{c.name} ({len(c.files)} files)" for c in res.corpora]
    out = [
        f"### Codegen (whole `protoc` process, median of {rounds} rounds, seconds)",
        "",
        "| generator | " + " | ".join(heads) + " |",
        "|---|" + "---|" * len(names),
    ]
    for tool in codegen.TOOLS:
        cells = []
        for corpus in names:
            if (corpus, tool) in res.errors:
                cells.append(f"failed: {res.errors[(corpus, tool)][:80]}")
            else:
                value = res.median(corpus, tool)
                cells.append("-" if value is None else f"{value:.2f}")
        out.append(f"| {tool} | " + " | ".join(cells) + " |")
    out += ["", "| target | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    ours = {n: res.median(n, codegen.OURS) for n in names}
    grpc = {n: res.median(n, codegen.GRPC_PYTHON) for n in names}
    bp2 = {n: res.median(n, codegen.BETTERPROTO2) for n in names}

    def row(label: str, values: dict[str, str]) -> None:
        out.append(f"| {label} | " + " | ".join(values.get(n, "-") for n in names) + " |")

    row(
        "micro plugin / grpc_python_out (target <= 1.5x)",
        {n: f"{_ratio(ours[n], grpc[n])} {_check(ours[n], grpc[n], 1.5)}" for n in names},
    )
    row(
        "betterproto2-compiler / micro plugin (target >= 10x)",
        {n: f"{_ratio(bp2[n], ours[n])} {_check(ours[n], bp2[n], 0.1)}" for n in names},
    )
    if len(names) >= 2 and ours[names[0]] and ours[names[1]]:
        row(
            "2x corpus / 1x corpus, micro plugin (target <= 2.2x)",
            {names[1]: f"{_ratio(ours[names[1]], ours[names[0]])} "
             f"{_check(ours[names[1]], ours[names[0]], 2.2)}"},
        )  # fmt: skip
    out += [
        "",
        "Each Python plugin alone, on the request protoc sends it (replayed from a file; "
        "protoc's parsing, shared by every row above, left out), seconds:",
        "",
        "| plugin | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for tool in codegen.REPLAYED:
        timings: dict[str, str] = {}
        for n in names:
            value = res.median(n, tool, replayed=True)
            error = res.errors.get((n, f"{tool} (replayed)"))
            if error:
                timings[n] = f"failed: {error[:80]}"
            else:
                timings[n] = "-" if value is None else f"{value:.2f}"
        row(tool, timings)
    row(
        "betterproto2-compiler / micro plugin",
        {
            n: _ratio(res.median(n, codegen.BETTERPROTO2, True), res.median(n, codegen.OURS, True))
            for n in names
        },
    )
    return out


def _check(a: float | None, b: float | None, limit: float) -> str:
    """a / b <= limit."""
    if a is None or not b:
        return ""
    return _verdict(a / b <= limit)


def rpc_tables(res: RpcResults, rounds: int) -> list[str]:
    spec = res.spec
    stacks = sorted({s for s, _ in res.samples}, key=STACKS.index)
    out = [
        f"### RPC (medians of {rounds} rounds; {spec.duration:g} s per point after "
        f"{spec.warmup:g} s warm-up; streaming: {spec.stream_count} messages)",
        "",
        "Targets: the median of the per-round ratios, each micro stack having run beside "
        "its anchor in every round.",
        "",
    ]
    unary_keys = [f"unary/{size}/c{c}" for size in spec.sizes for c in spec.concurrency]
    header = ["stack"]
    for key in unary_keys:
        _, size, c = key.split("/")
        header.append(f"{size} {c} req/s (p50/p99 ms)")
    header.append("stream msgs/s")
    out += ["| " + " | ".join(header) + " |", "|---|" + "---|" * (len(header) - 1)]
    for stack in stacks:
        cells = [stack]
        for key in unary_keys:
            rps = res.median(stack, key, "rps")
            p50 = res.median(stack, key, "p50_ms")
            p99 = res.median(stack, key, "p99_ms")
            cells.append("-" if rps is None else f"{rps:.0f} ({p50:.2f}/{p99:.2f})")
        mps = res.median(stack, "stream", "mps")
        cells.append("-" if mps is None else f"{mps:.0f}")
        out.append("| " + " | ".join(cells) + " |")
    for ours, raw in RAW.items():
        if ours not in stacks or raw not in stacks:
            continue
        out += ["", f"| target ({ours} vs raw {raw}) | value | |", "|---|---|---|"]
        for key in unary_keys:
            r = _paired(res, ours, raw, key, "rps")
            ok = None if r is None else r >= 0.9
            out.append(f"| {key} req/s ratio (>= 0.9x) | {_times(r)} | {_verdict(ok)} |")
            r = _paired(res, ours, raw, key, "p99_ms")
            ok = None if r is None else r <= 1.2
            out.append(f"| {key} p99 ratio (<= 1.2x) | {_times(r)} | {_verdict(ok)} |")
        r = _paired(res, ours, raw, "stream", "mps")
        ok = None if r is None else r >= 0.9
        out.append(f"| stream msgs/s ratio (>= 0.9x) | {_times(r)} | {_verdict(ok)} |")
    ours, anchor, floor = DEFAULT_ANCHOR
    if ours in stacks and anchor in stacks:
        out += ["", f"| target ({ours} vs {anchor}) | value | |", "|---|---|---|"]
        for key in [k for k in unary_keys if "/medium/" in k]:
            r = _paired(res, ours, anchor, key, "rps")
            ok = None if r is None else r >= floor
            out.append(f"| {key} req/s ratio (>= {floor}x) | {_times(r)} | {_verdict(ok)} |")
    return out


def memory_tables(res: RpcResults) -> list[str]:
    out = [
        "### Memory (server process RSS, MiB, median over rounds)",
        "",
        "Idle: 1 s after start. Peak: VmHWM after the whole load run "
        "(unary at every concurrency incl. 64, then the stream).",
        "",
        "| stack | idle RSS | peak RSS | idle vs grpcio-pb2 | peak vs grpcio-pb2 "
        "| peak vs grpcio-bp2 |",
        "|---|---|---|---|---|---|",
    ]

    def med(values: list[int] | None) -> float | None:
        return sorted(values)[len(values) // 2] / 1024 if values else None

    for stack in sorted(res.idle_rss_kb, key=STACKS.index):
        idle, peak = med(res.idle_rss_kb.get(stack)), med(res.peak_rss_kb.get(stack))
        cells = [
            stack,
            "-" if idle is None else f"{idle:.1f}",
            "-" if peak is None else f"{peak:.1f}",
            _ratio(idle, med(res.idle_rss_kb.get("grpcio-pb2"))),
            _ratio(peak, med(res.peak_rss_kb.get("grpcio-pb2"))),
            _ratio(peak, med(res.peak_rss_kb.get("grpcio-bp2"))),
        ]
        out.append("| " + " | ".join(cells) + " |")
    return out
