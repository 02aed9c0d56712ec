"""The `_pb2` message backend end to end, and both backends talking to each other."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import micro
from golden.streaming.v1 import EchoRequest
from golden.streaming.v1.streaming_micro import StreamerClient
from micro.registry.local import LocalRegistry
from tests.cli.helpers import micro as micro_cli
from tests.cluster import Cluster
from tests.waiting import eventually_sync

ROOT = Path(__file__).resolve().parents[2]
PB2_APP = "tests.e2e_pb2.server"


def run_client(cluster: Cluster, target: str, *extra: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-m", "tests.e2e_pb2.client", target, *extra],
        cwd=ROOT,
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    parsed: dict[str, object] = json.loads(result.stdout)
    return parsed


EXPECTED_PB2_SERVER = {
    "metadata": "ada",
    "count": [1, 2, 3],
    "sum": 6,
    "chat": ["echo: a"],
    "error": ["pb2", 404, "no such thing: 9", "NOT_FOUND"],
}


def test_pb2_client_and_server_by_name_including_editions(cluster: Cluster) -> None:
    cluster.start("pb2", "a", app=PB2_APP)
    result = run_client(cluster, "pb2", "--editions")
    assert result["echo"] == "hi from a"
    assert {k: result[k] for k in EXPECTED_PB2_SERVER} == EXPECTED_PB2_SERVER
    assert result["editions"] == [42, "n"]
    assert result["sync"] == {"echo": "sync from a", "count": [1, 2]}


def test_pb2_client_calls_a_betterproto2_server(cluster: Cluster) -> None:
    node = cluster.start("streamer", "bp")
    result = run_client(cluster, node.address)
    assert result["echo"] == "hi from bp"
    assert result["count"] == [1, 2, 3] and result["sum"] == 6
    assert result["error"] == ["streamer", 404, "no such thing: 9", "NOT_FOUND"]


async def test_betterproto2_client_calls_a_pb2_server(cluster: Cluster) -> None:
    cluster.start("pb2", "p", app=PB2_APP)
    async with micro.Client(registry=LocalRegistry(cluster.registry_path)) as client:
        reply = await StreamerClient("pb2", client=client).echo(
            EchoRequest(text="x"), metadata={"x-user": "bp"}
        )
    assert reply.text == "x from p"
    assert reply.metadata["x-user"] == "bp"


def test_pb2_subscriber_receives_json_events_from_micro_publish(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`micro publish` sends proto3 JSON; a `_pb2` subscriber decodes it (it used to drop
    every such event: JSON went through betterproto2's methods only)."""
    monkeypatch.setenv("PB2_TOPIC", "pb2.greetings")
    cluster.start("pb2", "a", app=PB2_APP)
    for text in ("hello", "again"):
        sent = micro_cli(cluster, "publish", "pb2.greetings", json.dumps({"text": text}))
        assert sent.returncode == 0, sent.stderr
    eventually_sync(lambda: len(cluster.events()) >= 2, timeout=20, what="two events delivered")
    assert cluster.events() == ["a hello", "a again"]
