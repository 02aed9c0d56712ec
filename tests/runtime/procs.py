"""Start test nodes (tests/runtime/event_node.py) as subprocesses with a given environment."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from tests.cluster import ROOT, Node, spawn


class Nodes:
    """Starts nodes; kills whatever is still running at the end."""

    def __init__(self, env: Mapping[str, str], events: Path) -> None:
        self.env = dict(os.environ, PYTHONPATH=str(ROOT), NODE_EVENTS=str(events), **env)
        self.events_path = events
        self.started: list[Node] = []

    def start(self, name: str, node: str, *args: str, **env: str) -> Node:
        process, output, line = spawn(
            [sys.executable, "-m", "tests.runtime.event_node", name, node, *args],
            {**self.env, **env},
        )
        started = Node(name, node, line.split()[1], process, output)
        self.started.append(started)
        return started

    def events(self) -> list[tuple[str, str, bool]]:
        """(node, text, redelivered) per message handled, in file order."""
        if not self.events_path.exists():
            return []
        rows = [line.split() for line in self.events_path.read_text().splitlines()]
        return [(r[0], r[1], r[2] == "1") for r in rows if len(r) == 3]

    def stop_all(self) -> None:
        for node in self.started:
            if node.process.poll() is None:
                node.process.kill()
                node.process.wait(timeout=10)


@contextmanager
def nodes(env: Mapping[str, str], events: Path) -> Iterator[Nodes]:
    group = Nodes(env, events)
    try:
        yield group
    finally:
        group.stop_all()
