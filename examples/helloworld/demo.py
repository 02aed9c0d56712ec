"""Generate, serve and call helloworld on the embedded defaults, then stop.

python3 scripts/dev.py demo     (from the repository root)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from protoc_gen_micro.protoc import protoc

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def main() -> None:
    step("protoc --python_betterproto2_out=gen --micro_out=gen helloworld/v1/helloworld.proto")
    protoc(
        ["helloworld/v1/helloworld.proto"],
        proto_path=[str(ROOT / "example_protos")],
        out=HERE / "gen",
    )
    for path in sorted((HERE / "gen").rglob("*.py")):
        print("   ", path.relative_to(HERE))

    # A registry file of the demo's own, so stale entries from other runs never matter;
    # removed again at the end.
    with tempfile.TemporaryDirectory(prefix="micro-demo-") as registry_dir:
        env = dict(os.environ, MICRO_REGISTRY="local")
        env["MICRO_REGISTRY_PATH"] = str(Path(registry_dir) / "registry.db")
        serve_and_call(env)
    step(f"done; the generated code stays in {(HERE / 'gen').relative_to(ROOT)}/ (git-ignored)")


def serve_and_call(env: dict[str, str]) -> None:
    step("python server.py   (registers 'helloworld' in the local registry)")
    server = subprocess.Popen(
        [sys.executable, "server.py"], cwd=HERE, env=env, stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    line = server.stdout.readline()
    if not line:
        sys.exit("the server did not start")
    print("   ", line.strip())
    try:
        step("python client.py micro   (calls 'helloworld' by name)")
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "client.py", "micro"], cwd=HERE, env=env, timeout=60, check=False
        )
        if result.returncode:
            sys.exit(result.returncode)
        print(f"    (round trip including interpreter start: {time.monotonic() - started:.2f}s)")
    finally:
        step("SIGTERM the server: it deregisters, drains and exits")
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=30)
        print(f"    server exited with {code}")
        if code:
            sys.exit(code)


if __name__ == "__main__":
    main()
