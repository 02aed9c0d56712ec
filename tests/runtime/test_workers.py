"""Several worker processes of one service on one port (grpcio's SO_REUSEPORT): one Python
process runs on one core, so this is how a service uses more than one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import micro
from micro.registry.local import LocalRegistry
from tests.cluster import ROOT, spawn
from tests.runtime.echo_kit import EchoClient, EchoRequest


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_workers_share_one_port_and_the_kernel_spreads_connections(tmp_path: Path) -> None:
    port = _free_port()
    registry_path = tmp_path / "registry.db"
    env = dict(
        os.environ,
        MICRO_REGISTRY="local",
        MICRO_REGISTRY_PATH=str(registry_path),
        PYTHONPATH=str(ROOT),
    )
    workers: list[subprocess.Popen[str]] = []
    try:
        for node in ("w1", "w2"):
            process, _, line = spawn(
                [sys.executable, "-m", "tests.runtime.worker_node", node, str(port)], env
            )
            workers.append(process)
            assert line == f"READY 127.0.0.1:{port}"
        registry = LocalRegistry(registry_path)
        records = await registry.get_service("workers")
        assert sorted(n.id.split("-")[0] for r in records for n in r.nodes) == ["workers"] * 2
        await registry.close()
        seen: set[str] = set()
        for _ in range(40):  # a new client is a new connection, placed by the kernel
            async with micro.Client(registry=micro.MemoryRegistry()) as client:
                stub = EchoClient(address=f"127.0.0.1:{port}", client=client)
                seen.add((await stub.echo(EchoRequest(text="x"))).node)
            if seen == {"w1", "w2"}:
                break
        assert seen == {"w1", "w2"}
    finally:
        for process in workers:
            process.terminate()
            process.wait(timeout=30)


async def test_without_reuse_port_a_taken_port_is_a_clear_start_error() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        service = micro.Service(
            "taken", address=f"127.0.0.1:{port}", registry=micro.MemoryRegistry()
        )
        with pytest.raises(
            micro.StartError, match=f"cannot listen on 127.0.0.1:{port}: Address already in use"
        ):
            await service.start()
