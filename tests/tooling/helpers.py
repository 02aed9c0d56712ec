"""Running the `micro` console scripts as a user would: subprocesses of this venv's scripts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
GOLDEN_HELLO = ROOT / "golden-scaffold" / "hello"


def env() -> dict[str, str]:
    """This venv's scripts first on PATH, as in an activated venv."""
    return dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")


def fresh_env(tmp_path: Path) -> dict[str, str]:
    """No venv activated, and the test's own venv off PATH: only what a README sets up."""
    path = os.pathsep.join(
        p for p in os.environ.get("PATH", "").split(os.pathsep) if not p.startswith(sys.prefix)
    )
    environ = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    environ.update(
        PATH=path,
        MICRO_REGISTRY="local",
        MICRO_REGISTRY_PATH=str(tmp_path / "registry.db"),
        # pip caches the wheel it builds from a checkout (`protoc-gen-micro @ file://...`)
        # by URL, and would install that stale wheel after a template change at the same
        # version
        PIP_NO_CACHE_DIR="1",
    )
    return environ


def run(args: list[str], cwd: Path, *, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout, check=False
    )


def micro(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run([str(BIN / "micro"), *args], cwd)


def micro_new(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run([str(BIN / "micro-new"), *args], cwd)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single `Error: ...` line a failing command printed (and no traceback)."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), result.stderr
    return lines[0]
