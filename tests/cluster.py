from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Node:
    name: str
    node: str
    address: str
    process: subprocess.Popen[str]
    output: list[str]

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)

    @property
    def log(self) -> str:
        return "".join(self.output)


@dataclass
class Cluster:
    registry_path: Path
    events_path: Path
    start: Callable[..., Node]

    @property
    def env(self) -> dict[str, str]:
        """The environment a client process needs to find this cluster's services."""
        return dict(
            os.environ,
            MICRO_REGISTRY="local",
            MICRO_REGISTRY_PATH=str(self.registry_path),
            PYTHONPATH=str(ROOT),
        )

    def events(self) -> list[str]:
        if not self.events_path.exists():
            return []
        return self.events_path.read_text().splitlines()


def _reader(stream: object, sink: list[str], ready: threading.Event, marker: str) -> None:
    for line in stream:  # type: ignore[attr-defined]
        sink.append(line)
        if line.startswith(marker):
            ready.set()
    ready.set()


def spawn(
    args: list[str], env: Mapping[str, str], marker: str = "READY "
) -> tuple[subprocess.Popen[str], list[str], str]:
    """Start a process and wait (up to 60 s) for its line starting with `marker`.

    Returns the process, its output (still growing: a thread keeps reading it) and that
    line; a process that exits or stays silent is killed and reported with its output."""
    process = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output: list[str] = []
    ready = threading.Event()
    threading.Thread(
        target=_reader, args=(process.stdout, output, ready, marker), daemon=True
    ).start()
    line = next((x for x in output if x.startswith(marker)), "") if ready.wait(60) else ""
    if not line:
        process.kill()
        process.wait(timeout=10)
        raise RuntimeError(f"{args} did not start:\n{''.join(output)}")
    return process, output, line.strip()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    registry_path = tmp_path / "registry.db"
    events_path = tmp_path / "events.log"
    nodes: list[Node] = []

    def start(name: str, node: str, app: str = "tests.e2e.server") -> Node:
        env = dict(
            os.environ,
            MICRO_REGISTRY="local",
            MICRO_REGISTRY_PATH=str(registry_path),
            E2E_EVENTS=str(events_path),
            PYTHONPATH=str(ROOT),
        )
        process, output, line = spawn([sys.executable, "-m", app, name, node], env)
        started = Node(name, node, line.split()[1], process, output)
        nodes.append(started)
        return started

    yield Cluster(registry_path, events_path, start)
    for node in nodes:
        if node.process.poll() is None:
            node.process.kill()
            node.process.wait(timeout=10)
