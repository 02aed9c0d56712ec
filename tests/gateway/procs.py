"""Processes for the gateway tests: service nodes and `micro api`, each its own process,
sharing one local (SQLite) registry file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.cluster import ROOT
from tests.cluster import spawn as spawn_process
from tests.tooling.helpers import BIN

LISTENING = "micro api listening on "


@dataclass
class Proc:
    process: subprocess.Popen[str]
    output: list[str]
    ready_line: str

    @property
    def log(self) -> str:
        return "".join(self.output)

    def terminate(self, timeout: float = 60) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@dataclass
class Procs:
    registry_path: Path
    started: list[Proc] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return dict(
            os.environ,
            MICRO_REGISTRY="local",
            MICRO_REGISTRY_PATH=str(self.registry_path),
            PYTHONPATH=str(ROOT),
        )

    def spawn(self, args: list[str], marker: str) -> Proc:
        process, output, line = spawn_process(args, self.env, marker)
        proc = Proc(process, output, line)
        self.started.append(proc)
        return proc

    def service(self, name: str, node: str, app: str = "tests.gateway.server") -> Proc:
        return self.spawn([sys.executable, "-m", app, name, node], "READY ")

    def gateway(self, *args: str) -> Gateway:
        proc = self.spawn([str(BIN / "micro"), "api", "--address", "127.0.0.1:0", *args], LISTENING)
        url = proc.ready_line[len(LISTENING) :].split()[0]
        return Gateway(proc, url)

    def stop_all(self) -> None:
        for proc in self.started:
            proc.kill()


@dataclass
class Gateway:
    proc: Proc
    url: str

    def client(self, **kwargs: object) -> httpx.Client:
        """An httpx client whose POST/PUT/PATCH without a Content-Type say JSON, as the
        gateway requires of a body (tests of that rule send raw requests instead)."""
        return httpx.Client(
            base_url=self.url,
            timeout=30,
            event_hooks={"request": [_json_by_default]},
            **kwargs,  # type: ignore[arg-type]
        )


def _json_by_default(request: httpx.Request) -> None:
    if request.method in ("POST", "PUT", "PATCH") and "content-type" not in request.headers:
        request.headers["content-type"] = "application/json"
