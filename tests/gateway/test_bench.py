"""The gateway benchmark still runs through `python -m bench` (no timing is asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.cluster import ROOT


def test_gateway_smoke_writes_its_table(tmp_path: Path) -> None:
    report = tmp_path / "gateway.md"
    result = subprocess.run(
        [
            sys.executable, "-m", "bench", "--smoke", "--suites", "gateway",
            "--duration", "0.3", "--out", str(report),
        ],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    text = report.read_text()
    assert "### Gateway" in text
    rows = [line for line in text.splitlines() if line.startswith(("| direct |", "| gateway |"))]
    assert len(rows) == 4  # direct and gateway at c=1 and c=16
    assert all(float(row.split("|")[3]) > 0 for row in rows)  # req/s measured
    assert "overhead per request" in text
