"""`micro call | stream | publish` with `--token`, MICRO_TOKEN and MICRO_TOKEN_FILE against
service processes with auth; 401 and 403 are one clear line with their own exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from micro.cli import exits
from tests.auth.kit import SECRET, hs256
from tests.cli.helpers import micro, one_line_error
from tests.cluster import Cluster
from tests.runtime.procs import nodes
from tests.waiting import eventually_sync

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def secured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """MICRO_AUTH_* for every process started from here on (services read them)."""
    secret = tmp_path / "secret"
    secret.write_text(SECRET)
    monkeypatch.setenv("MICRO_AUTH_SECRET_FILE", str(secret))
    monkeypatch.setenv("MICRO_AUTH_RULES", "Streamer.Count=stream.read")
    monkeypatch.delenv("MICRO_TOKEN", raising=False)
    monkeypatch.delenv("MICRO_TOKEN_FILE", raising=False)
    return secret


def test_call_and_stream_send_the_token_and_show_401_and_403(
    secured: Path, cluster: Cluster, tmp_path: Path
) -> None:
    cluster.start("shop", "a")
    good = hs256().token("ada")
    streamer = hs256().token("ada", scopes=["stream.read"])
    expired = hs256().token("ada", ttl=-30)
    hello = ("call", "shop", "Greeter.SayHello", '{"name": "Ada"}')

    missing = micro(cluster, *hello)
    assert missing.returncode == exits.EXIT_UNAUTHENTICATED, missing.stderr
    line = one_line_error(missing)
    assert line.startswith("Error: unauthenticated (401; pass --token or set MICRO_TOKEN")
    assert "Greeter.SayHello: no token" in line

    stale = micro(cluster, *hello, "--token", expired)
    assert stale.returncode == exits.EXIT_UNAUTHENTICATED
    assert "token expired" in one_line_error(stale)
    assert expired not in stale.stderr + stale.stdout

    flagged = micro(cluster, *hello, "--token", good)
    assert flagged.returncode == 0, flagged.stderr
    assert json.loads(flagged.stdout) == {"message": "Hello, Ada!"}
    assert micro(cluster, *hello, MICRO_TOKEN=good).returncode == 0
    token_file = tmp_path / "token"
    token_file.write_text(good + "\n")
    assert micro(cluster, *hello, MICRO_TOKEN_FILE=str(token_file)).returncode == 0

    # micro token signs with the deployment's secret (MICRO_AUTH_SECRET_FILE, set here)
    issued = micro(cluster, "token", "ada", "--scope", "stream.read", "--ttl", "60")
    assert issued.returncode == 0, issued.stderr
    minted = issued.stdout.strip()
    assert micro(cluster, *hello, "--token", minted).returncode == 0
    assert SECRET not in issued.stdout + issued.stderr

    count = ("stream", "shop", "Streamer.Count", '{"to": 2}')
    denied = micro(cluster, *count, "--token", good)
    assert denied.returncode == exits.EXIT_PERMISSION_DENIED, denied.stderr
    assert one_line_error(denied).startswith("Error: permission denied (403")
    as_json = micro(cluster, *count, "--token", good, "-o", "json")
    assert json.loads(as_json.stdout)["error"]["code"] == 403
    streamed = micro(cluster, *count, "--token", streamer)
    assert streamed.returncode == 0, streamed.stderr
    assert len(streamed.stdout.splitlines()) == 2
    assert micro(cluster, *count, "--token", minted).returncode == 0


def test_micro_token_needs_exactly_one_key_and_reads_it_from_a_file(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MICRO_AUTH_SECRET_FILE", raising=False)
    none = micro(cluster, "token", "ada")
    assert none.returncode == exits.EXIT_USAGE
    assert "give one of --secret-file" in one_line_error(none)
    missing = micro(cluster, "token", "ada", "--secret-file", str(tmp_path / "nope"))
    assert missing.returncode == exits.EXIT_USAGE
    assert "cannot read the secret file" in one_line_error(missing)
    not_a_key = tmp_path / "key.pem"
    not_a_key.write_text("hello")
    bad = micro(cluster, "token", "ada", "--key-file", str(not_a_key))
    assert bad.returncode == exits.EXIT_USAGE, bad.stderr
    assert "hello" not in one_line_error(bad)


def test_publish_needs_a_token_the_subscribing_service_accepts(
    secured: Path, tmp_path: Path
) -> None:
    registry = tmp_path / "registry.db"
    events = tmp_path / "events.log"
    env = {"MICRO_REGISTRY": "local", "MICRO_REGISTRY_PATH": str(registry)}
    with nodes(env, events) as group:
        group.start("worker", "w1", NODE_TOPIC="auth.greetings")
        cluster = Cluster(registry, events, lambda name, node: group.start(name, node))
        refused = micro(cluster, "publish", "auth.greetings", '{"text": "anonymous"}')
        assert refused.returncode == exits.EXIT_UNAUTHENTICATED, refused.stderr
        assert "unauthenticated (401" in one_line_error(refused)
        token = hs256().token("shop", type="service")
        sent = micro(cluster, "publish", "auth.greetings", '{"text": "hello"}', "--token", token)
        assert sent.returncode == 0, sent.stderr
        eventually_sync(group.events, timeout=30, interval=0.1, what="the worker got it")
        assert group.events() == [("w1", "hello", False)]
