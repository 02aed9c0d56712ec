"""A bounded load generator: concurrent Echo calls through one client, every outcome kept."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import micro
from golden.streaming.v1 import EchoRequest
from golden.streaming.v1.streaming_micro import StreamerClient


@dataclass
class Outcome:
    started: float
    ended: float
    node: str  # the node that answered, "" if the call failed
    error: str = ""


@dataclass
class Load:
    client: micro.Client
    service: str
    workers: int = 16
    sleep_ms: int = 20
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._worker(i)) for i in range(self.workers)]

    async def stop(self) -> list[Outcome]:
        self._stop.set()
        await asyncio.wait_for(asyncio.gather(*self._tasks), timeout=60)
        return self.outcomes

    async def _worker(self, index: int) -> None:
        stub = StreamerClient(self.service, client=self.client)
        deadline = time.monotonic() + 120  # hard bound, whatever happens
        while not self._stop.is_set() and time.monotonic() < deadline:
            started = time.monotonic()
            try:
                reply = await stub.echo(
                    EchoRequest(text=f"w{index}", sleep_ms=self.sleep_ms), timeout=10
                )
                node = reply.text.rsplit(" ", 1)[-1]
                self.outcomes.append(Outcome(started, time.monotonic(), node))
            except micro.Error as exc:
                self.outcomes.append(Outcome(started, time.monotonic(), "", str(exc)))

    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.node]
