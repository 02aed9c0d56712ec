"""A real nats-server (JetStream, tmp store) per test module, on free 127.0.0.1 ports.

Without the ``nats-server`` binary the NATS tests fail when ``CI=true`` and skip
otherwise (``apt-get install nats-server``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.waiting import eventually_sync

READY_TIMEOUT = 20.0


def binary() -> str:
    path = shutil.which("nats-server")
    if path is None:
        message = "nats-server is not installed (apt-get install -y nats-server)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; CI must install it", pytrace=False)
        pytest.skip(message)
    return path


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports (the sockets are held open together while picking)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass
class NatsServer:
    store: Path
    port: int = 0
    monitor: int = 0
    config: str = ""  # a nats-server configuration file's text (e.g. users, permissions)
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        if not self.port:
            self.port, self.monitor = free_ports(2)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        options: list[str] = []
        if self.config:
            path = self.store.parent / f"nats-{self.port}.conf"
            path.write_text(self.config)
            options = ["-c", str(path)]
        log = open(self.store.parent / f"nats-{self.port}.log", "ab")
        self.process = subprocess.Popen(
            [
                binary(),
                *options,
                "-a",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-js",
                "-sd",
                str(self.store),
                "-m",
                str(self.monitor),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_ready(self.monitor, self.process)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()


def wait_ready(monitor: int, process: subprocess.Popen[bytes] | None = None) -> None:
    """Poll the monitoring port's /healthz until JetStream is up (bounded)."""

    def healthy() -> bool:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"nats-server exited with {process.returncode}")
        with urllib.request.urlopen(f"http://127.0.0.1:{monitor}/healthz", timeout=1) as r:
            status: int = r.status
            return status == 200

    eventually_sync(
        healthy,
        timeout=READY_TIMEOUT,
        interval=0.05,
        retry_on=(OSError,),
        what=f"nats-server ready on monitoring port {monitor}",
    )
