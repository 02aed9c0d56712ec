"""`python3 scripts/dev.py demo` (examples/helloworld/demo.py): generate, serve, call, and
leave nothing behind in the temporary directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.tooling.helpers import ROOT, env


def test_demo_serves_calls_and_cleans_up_its_registry(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "examples/helloworld/demo.py"],
        cwd=ROOT,
        env={**env(), "TMPDIR": str(tmp_path)},  # where its registry directory goes
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Hello, micro!" in result.stdout
    assert "server exited with 0" in result.stdout
    assert "the generated code stays in examples/helloworld/gen/" in result.stdout
    assert list(tmp_path.iterdir()) == []  # no micro-demo-* left behind
