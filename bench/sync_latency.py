"""Sync client latency: micro's sync client against plain grpcio sync stubs, same server.

    python bench/sync_latency.py [--calls 2000] [--rounds 5]

Unary calls at concurrency 1 to one micro service in another process (the e2e
`streamer`). Rounds alternate between the clients; medians of per-round p50/p99 and
calls/s are reported with the ratio. Why this mechanism: see docs/sync-clients.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def start_server(tmp: Path) -> tuple[subprocess.Popen[str], str]:
    env = dict(os.environ, MICRO_REGISTRY="local", MICRO_REGISTRY_PATH=str(tmp / "reg.db"))
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.server", "streamer", "bench"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("READY "):
            return proc, line.split()[1]
    raise SystemExit("server did not start")


def grpcio_stub(tmp: Path, address: str) -> Callable[[], object]:
    import grpc

    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{ROOT / 'example_protos'}",
            f"--python_out={tmp}",
            f"--grpc_python_out={tmp}",
            "streaming/v1/streaming.proto",
        ],
        check=True,
    )
    sys.path.insert(0, str(tmp))
    from streaming.v1 import streaming_pb2, streaming_pb2_grpc  # type: ignore[import-not-found]

    stub = streaming_pb2_grpc.StreamerStub(grpc.insecure_channel(address))
    request = streaming_pb2.EchoRequest(text="hello")
    return lambda: stub.Echo(request, timeout=5)


def measure(call: Callable[[], object], calls: int) -> tuple[float, float, float]:
    latencies = []
    started = time.perf_counter()
    for _ in range(calls):
        t0 = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    latencies.sort()
    return calls / elapsed, latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    from golden.streaming.v1 import EchoRequest
    from golden.streaming.v1.streaming_micro import StreamerSyncClient

    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        server, address = start_server(tmp)
        try:
            micro_client = StreamerSyncClient(address=address)
            request = EchoRequest(text="hello")
            clients: dict[str, Callable[[], object]] = {
                "micro sync (background loop)": lambda: micro_client.echo(request, timeout=5),
                "grpcio sync stub": grpcio_stub(tmp, address),
            }
            for call in clients.values():  # warm up
                measure(call, 200)
            results: dict[str, list[tuple[float, float, float]]] = {k: [] for k in clients}
            for _ in range(args.rounds):
                for name, call in clients.items():
                    results[name].append(measure(call, args.calls))
        finally:
            server.terminate()
            server.wait(timeout=30)

    print(f"unary, concurrency 1, {args.rounds} rounds x {args.calls} calls, medians\n")
    print("| client | calls/s | p50 µs | p99 µs |")
    print("|---|---|---|---|")
    summary = {}
    for name, rounds in results.items():
        rate = statistics.median(r[0] for r in rounds)
        p50 = statistics.median(r[1] for r in rounds) * 1e6
        p99 = statistics.median(r[2] for r in rounds) * 1e6
        summary[name] = (rate, p50)
        print(f"| {name} | {rate:.0f} | {p50:.0f} | {p99:.0f} |")
    (ours_rate, ours_p50), (anchor_rate, anchor_p50) = summary.values()
    rate_ratio, p50_ratio = ours_rate / anchor_rate, ours_p50 / anchor_p50
    print(f"\nratio micro/grpcio: calls/s {rate_ratio:.2f}x, p50 {p50_ratio:.2f}x")


if __name__ == "__main__":
    main()
