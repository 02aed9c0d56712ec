"""Starts the service as `python main.py` would run, with a registry of its own."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import micro
import pytest
from micro.registry import from_env

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 60.0


@dataclass
class RunningService:
    address: str
    environ: dict[str, str]

    def client(self) -> micro.Client:
        """A client that finds the service by name, through the test's registry."""
        return micro.Client(from_env(self.environ))


def _pump(stream: object, lines: queue.Queue[str | None]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.put(line)
    lines.put(None)


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    registry = tmp_path_factory.mktemp("registry") / "registry.db"
    environ = {"MICRO_REGISTRY": "local", "MICRO_REGISTRY_PATH": str(registry)}
    process = subprocess.Popen(
        [sys.executable, "main.py"],
        cwd=ROOT,
        env={**os.environ, **environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
    output: list[str] = []
    address = ""
    deadline = time.monotonic() + START_TIMEOUT
    while not address and time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            break
        if line is None:
            break
        output.append(line)
        if line.startswith("serving "):
            address = line.split()[-1]
    if not address:
        process.kill()
        process.wait(timeout=10)
        pytest.fail("main.py did not start:\n" + "".join(output))
    try:
        yield RunningService(address, environ)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    assert code == 0, f"main.py exited with {code}"
