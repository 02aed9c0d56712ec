"""Start a benchmark process and wait for its ready line; stop it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def worker_env(work: Path) -> dict[str, str]:
    """The environment of the benchmark's processes: this checkout importable, and a local
    registry of their own under ``work``."""
    return dict(
        os.environ,
        MICRO_REGISTRY="local",
        MICRO_REGISTRY_PATH=str(work / "registry.db"),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )


def spawn(args: list[str], env: dict[str, str], marker: str) -> tuple[subprocess.Popen[str], str]:
    """Start ``args`` and return it with the first word after ``marker`` on its first line."""
    process = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # bounded: the process prints its marker or exits
    if not line.startswith(marker):
        process.kill()
        _, err = process.communicate(timeout=30)
        raise RuntimeError(f"{' '.join(args[2:])} did not start: {err.strip()[-800:]}")
    return process, line[len(marker) :].split()[0]


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate(timeout=30)
