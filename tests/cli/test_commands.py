"""`micro services | describe | call | stream | health | publish`, run as a user would: the
console script in a subprocess, against service processes and the real local registry."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from micro.cli import exits
from tests.cli.helpers import micro, micro_json, one_line_error
from tests.cluster import Cluster
from tests.runtime.procs import nodes
from tests.waiting import eventually_sync


def test_services_lists_each_service_with_its_nodes(cluster: Cluster) -> None:
    cluster.start("shop", "a")
    cluster.start("shop", "b")
    cluster.start("greeter", "c")
    result = micro(cluster, "services")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "VERSION", "NODES", "ENDPOINTS"]
    assert lines[1].split() == ["greeter", "latest", "1", "18"]  # Streamer.Put joined
    assert lines[2].split() == ["shop", "latest", "2", "18"]
    data = micro_json(cluster, "services")
    assert [(s["name"], s["nodes"]) for s in data] == [("greeter", 1), ("shop", 2)]
    assert "Greeter.SayHello" in data[0]["endpoints"]


def test_services_with_an_empty_registry(cluster: Cluster) -> None:
    result = micro(cluster, "services")
    assert (result.returncode, result.stdout.strip()) == (0, "no services")
    assert micro_json(cluster, "services") == []


def test_registry_flags_override_the_environment(cluster: Cluster, tmp_path: Path) -> None:
    cluster.start("shop", "a")
    elsewhere = micro(cluster, "services", MICRO_REGISTRY_PATH=str(tmp_path / "other.db"))
    assert elsewhere.stdout.strip() == "no services"
    flagged = micro(
        cluster,
        "services",
        "--registry-path",
        str(cluster.registry_path),
        MICRO_REGISTRY_PATH=str(tmp_path / "other.db"),
    )
    assert "shop" in flagged.stdout
    bad = micro(cluster, "services", "--registry", "bogus")
    assert bad.returncode == exits.EXIT_USAGE
    assert "unknown MICRO_REGISTRY='bogus'" in one_line_error(bad)


def test_describe_shows_nodes_endpoints_and_metadata(cluster: Cluster) -> None:
    a = cluster.start("shop", "a")
    b = cluster.start("shop", "b")
    result = micro(cluster, "describe", "shop")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith("service shop (version latest)\n")
    assert a.address in text and b.address in text
    assert (
        "Greeter.SayHello  unary  helloworld.v1.HelloRequest -> helloworld.v1.HelloReply"
        "  /helloworld.v1.Greeter/SayHello"
    ) in text
    assert "Streamer.Count  server_stream  streaming.v1.CountRequest" in text
    (record,) = micro_json(cluster, "describe", "shop")
    assert sorted(n["address"] for n in record["nodes"]) == sorted([a.address, b.address])
    endpoints = {e["name"]: e for e in record["endpoints"]}
    assert endpoints["Streamer.Chat"]["kind"] == "bidi_stream"
    assert endpoints["Greeter.SayHello"]["request"] == "helloworld.v1.HelloRequest"
    assert endpoints["Greeter.SayHello"]["metadata"] == {}


def test_call_prints_the_reply_as_json(cluster: Cluster) -> None:
    cluster.start("shop", "a")
    result = micro(cluster, "call", "shop", "Greeter.SayHello", '{"name": "Ada"}')
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"message": "Hello, Ada!"}
    assert result.stdout.startswith("{\n  ")  # indented for people
    # the full proto name and the gRPC path name the same endpoint
    for endpoint in ("helloworld.v1.Greeter.SayHello", "/helloworld.v1.Greeter/SayHello"):
        assert micro_json(cluster, "call", "shop", endpoint, '{"name": "x"}') == {
            "message": "Hello, x!"
        }


def test_call_sends_metadata_and_deadline_and_prints_every_field(cluster: Cluster) -> None:
    cluster.start("shop", "a")
    reply = micro_json(
        cluster,
        "call",
        "shop",
        "Streamer.Echo",
        '{"text": "hi"}',
        "-m",
        "x-user=ada",
        "--timeout",
        "30",
    )
    assert reply["text"] == "hi from a"
    assert reply["metadata"]["x-user"] == "ada"
    assert 0 < reply["deadlineRemaining"] <= 30 * 1.02  # grpc-timeout may round up
    # fields at their default value are printed too (proto3 JSON, camelCase names)
    empty = micro_json(cluster, "call", "shop", "Keywords.import", "{}")
    assert empty == {"value": "import "}


def test_call_a_node_by_address_without_the_registry(cluster: Cluster, tmp_path: Path) -> None:
    node = cluster.start("shop", "a")
    result = micro(
        cluster,
        "call",
        "--address",
        node.address,
        "anything",
        "helloworld.v1.Greeter.SayHello",
        '{"name": "direct"}',
        "-o",
        "json",
        MICRO_REGISTRY_PATH=str(tmp_path / "empty.db"),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"message": "Hello, direct!"}
    short = micro(cluster, "call", "--address", node.address, "x", "Greeter.SayHello", "{}")
    assert json.loads(short.stdout) == {"message": "Hello, !"}
    # with --address the SERVICE label may be left out
    for words in (["Greeter.SayHello", '{"name": "bare"}'], ["Greeter.SayHello"]):
        bare = micro(cluster, "call", "--address", node.address, *words, "-o", "json")
        assert bare.returncode == 0, bare.stderr
        assert json.loads(bare.stdout)["message"].startswith("Hello, ")
    missing = micro(cluster, "call", "Greeter.SayHello")
    assert missing.returncode == 2
    assert one_line_error(missing) == (
        "Error: expected SERVICE ENDPOINT [REQUEST], got 1 argument(s)"
    )


def test_stream_prints_one_json_message_per_line(cluster: Cluster) -> None:
    cluster.start("shop", "a")
    result = micro(cluster, "stream", "shop", "Streamer.Count", '{"to": 3}')
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ['{"n":1}', '{"n":2}', '{"n":3}']
    as_json = micro(cluster, "stream", "shop", "Streamer.Count", '{"to": 2}', "-o", "json")
    assert [json.loads(line) for line in as_json.stdout.splitlines()] == [{"n": 1}, {"n": 2}]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_each_error_has_one_line_and_its_own_exit_code(cluster: Cluster) -> None:
    cluster.start("shop", "a")
    cases = {
        "unknown service": (
            ["call", "nope", "Greeter.SayHello", "{}"],
            exits.EXIT_UNKNOWN_SERVICE,
            "service 'nope' not found in the registry",
        ),
        "unknown endpoint": (
            ["call", "shop", "Greeter.Nope", "{}"],
            exits.EXIT_UNKNOWN_ENDPOINT,
            "service 'shop' has no endpoint 'Greeter.Nope' (endpoints: Greeter.SayHello,",
        ),
        "invalid JSON": (
            ["call", "shop", "Greeter.SayHello", "{name: 1"],
            exits.EXIT_INVALID_JSON,
            "invalid JSON: Expecting property name enclosed in double quotes",
        ),
        "field of the wrong type": (
            ["call", "shop", "Greeter.SayHello", '{"name": 5}'],
            exits.EXIT_INVALID_FIELD,
            "invalid helloworld.v1.HelloRequest: Failed to parse name field",
        ),
        "unknown field": (
            ["call", "shop", "Greeter.SayHello", '{"nmae": "x"}'],
            exits.EXIT_INVALID_FIELD,
            'has no field named "nmae"',
        ),
        "not an object": (
            ["call", "shop", "Greeter.SayHello", "[1]"],
            exits.EXIT_INVALID_FIELD,
            "the request must be a JSON object for helloworld.v1.HelloRequest, got list",
        ),
        "timeout": (
            ["call", "shop", "Streamer.Echo", '{"text": "x", "sleepMs": 20000}', "--timeout", "1"],
            exits.EXIT_TIMEOUT,
            "timed out: Streamer.Echo: deadline exceeded",
        ),
        "remote error": (
            ["call", "shop", "Streamer.Echo", '{"text": "x", "fail": "not_found"}'],
            exits.EXIT_REMOTE_ERROR,
            'remote error: id=shop code=404 status="Not Found" detail="no such thing: x"',
        ),
        "unreachable": (
            ["call", "--address", f"127.0.0.1:{_closed_port()}", "x", "Greeter.SayHello"],
            exits.EXIT_UNREACHABLE,
            "cannot reach 127.0.0.1:",
        ),
        "wrong command for the kind": (
            ["call", "shop", "Streamer.Count", "{}"],
            exits.EXIT_USAGE,
            "Streamer.Count is a server_stream endpoint: use micro stream",
        ),
    }
    for what, (args, code, message) in cases.items():
        result = micro(cluster, *args)
        assert result.returncode == code, (what, result.stdout, result.stderr)
        assert message in one_line_error(result), what
    codes = [code for _, code, _ in cases.values()]
    assert len(set(codes)) == len(set(codes) - {0}) == 8  # distinct, none is success


def test_remote_errors_in_json_mode(cluster: Cluster) -> None:
    cluster.start("shop", "a")
    result = micro(
        cluster, "call", "shop", "Streamer.Echo", '{"text": "x", "fail": "boom"}', "-o", "json"
    )
    assert result.returncode == exits.EXIT_REMOTE_ERROR
    assert json.loads(result.stdout) == {
        "error": {
            "id": "shop",
            "code": 500,
            "detail": "internal server error",
            "status": "Internal Server Error",
        }
    }
    assert "secret internal detail" not in result.stdout + result.stderr
    one_line_error(result)


def test_stream_errors(cluster: Cluster) -> None:
    cluster.start("shop", "a")
    result = micro(cluster, "stream", "shop", "Greeter.SayHello", "{}")
    assert result.returncode == exits.EXIT_USAGE
    assert "Greeter.SayHello is a unary endpoint: use micro call" in one_line_error(result)
    slow = micro(
        cluster, "stream", "shop", "Streamer.Count", '{"to": 100, "delayMs": 500}', "--timeout", "4"
    )
    assert slow.returncode == exits.EXIT_TIMEOUT, slow.stderr
    assert slow.stdout.splitlines()[0] == '{"n":1}'  # what arrived before the deadline
    one_line_error(slow)


def test_health_checks_each_node(cluster: Cluster) -> None:
    a = cluster.start("shop", "a")
    b = cluster.start("shop", "b")
    healthy = micro(cluster, "health", "shop")
    assert healthy.returncode == 0, healthy.stderr
    rows = [line.split() for line in healthy.stdout.splitlines()]
    assert rows[0] == ["NODE", "ADDRESS", "STATUS", "DETAIL"]
    assert sorted((r[1], r[2]) for r in rows[1:]) == sorted(
        [(a.address, "SERVING"), (b.address, "SERVING")]
    )
    b.kill()  # SIGKILL: still registered until its lease expires
    sick = micro(cluster, "health", "shop", "--timeout", "3")
    assert sick.returncode == exits.EXIT_FAILURE, sick.stderr
    status = {line.split()[1]: line.split()[2] for line in sick.stdout.splitlines()[1:]}
    assert status == {a.address: "SERVING", b.address: "UNREACHABLE"}
    data = micro(cluster, "health", "shop", "--timeout", "3", "-o", "json")
    assert data.returncode == exits.EXIT_FAILURE
    by_address = {row["address"]: row for row in json.loads(data.stdout)}
    assert by_address[a.address]["status"] == "SERVING"
    assert by_address[b.address]["status"] == "UNREACHABLE"
    assert "cannot reach" in by_address[b.address]["detail"]
    unknown = micro(cluster, "health", "nope")
    assert unknown.returncode == exits.EXIT_UNKNOWN_SERVICE
    one_line_error(unknown)


def test_publish_reaches_a_typed_subscriber(tmp_path: Path) -> None:
    registry = tmp_path / "registry.db"
    events = tmp_path / "events.log"
    env = {"MICRO_REGISTRY": "local", "MICRO_REGISTRY_PATH": str(registry)}
    with nodes(env, events) as group:
        group.start("worker", "w1", NODE_TOPIC="cli.greetings")
        cluster = Cluster(registry, events, lambda name, node: group.start(name, node))
        result = micro(cluster, "publish", "cli.greetings", '{"text": "hello"}', "-m", "k=v")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "published to cli.greetings"
        eventually_sync(group.events, timeout=30, interval=0.1, what="the worker got it")
        assert group.events() == [("w1", "hello", False)]
        as_json = micro(cluster, "publish", "cli.greetings", '{"text": "again"}', "-o", "json")
        assert json.loads(as_json.stdout) == {"topic": "cli.greetings", "published": True}
        for args, code in (
            (["publish", "bad topic", "{}"], exits.EXIT_USAGE),
            (["publish", "cli.greetings", "{oops"], exits.EXIT_INVALID_JSON),
            (["publish", "cli.greetings", "[1]"], exits.EXIT_INVALID_FIELD),
            (["publish", "cli.greetings", "{}", "--broker", "bogus"], exits.EXIT_USAGE),
        ):
            failed = micro(cluster, *args)
            assert failed.returncode == code, (args, failed.stderr)
            one_line_error(failed)


@pytest.mark.parametrize("command", ["services", "describe", "call", "stream", "health", "publish"])
def test_every_command_has_help(cluster: Cluster, command: str) -> None:
    result = micro(cluster, command, "--help")
    assert result.returncode == 0
    assert "--output" in result.stdout
