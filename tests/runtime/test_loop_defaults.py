"""The default client and broker of an event loop are closed when ``asyncio.run`` ends,
even while the program still holds them: their connections, their subscription server
and its registry records do not outlive the loop that opened them."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import pytest

from micro.address import parse_address
from tests.cluster import ROOT
from tests.runtime.echo_kit import Echo, serving


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


@pytest.mark.parametrize("wire", ["grpcio", "grpclib"])
async def test_asyncio_run_closes_the_loops_default_client_and_broker(
    tmp_path: Path, wire: str
) -> None:
    closed = asyncio.Event()
    async with serving(Echo()) as service:

        async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            """Between the child and the service: sees the child's connection close."""
            upstream = await asyncio.open_connection(*parse_address(service.address))
            back = asyncio.create_task(_pump(upstream[0], writer))
            await _pump(reader, upstream[1])
            closed.set()
            back.cancel()

        proxy = await asyncio.start_server(forward, "127.0.0.1", 0)
        port = proxy.sockets[0].getsockname()[1]
        env = dict(
            os.environ,
            PYTHONPATH=str(ROOT),
            MICRO_TRANSPORT=wire,
            MICRO_REGISTRY="local",
            MICRO_REGISTRY_PATH=str(tmp_path / "registry"),
        )
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.runtime.loop_defaults_child",
            f"127.0.0.1:{port}",
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert child.stdin and child.stdout and child.stderr
        try:
            lines: dict[str, str] = {}
            async with asyncio.timeout(60):
                while "subscribers" not in lines:
                    line = (await child.stdout.readline()).decode()
                    assert line, (await child.stderr.read()).decode()
                    key, _, value = line.strip().partition(" ")
                    lines[key] = value
            assert lines["called"] == "hi"
            # the client's connection closed while the child (and its reference) lives
            await asyncio.wait_for(closed.wait(), 10)
            assert child.returncode is None
            assert lines["subscribers"] == "0"  # the broker deregistered
            host, _, broker_port = lines["broker"].rpartition(":")
            with pytest.raises(ConnectionRefusedError):  # and its server stopped
                socket.create_connection((host, int(broker_port)), timeout=5).close()
            child.stdin.write(b"\n")
            await child.stdin.drain()
            async with asyncio.timeout(30):
                code = await child.wait()
                err = (await child.stderr.read()).decode()
            assert code == 0, err
            assert "Traceback" not in err and "Exception ignored" not in err, err
        finally:
            if child.returncode is None:
                child.kill()
                await child.wait()
            proxy.close()
            await proxy.wait_closed()
