"""LocalRegistry specifics: database path handling, error reporting, and real
cross-process behaviour (child processes run tests/runtime/registry_child.py)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
import stat
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from micro.registry import (
    EventType,
    LocalRegistry,
    Node,
    NotFound,
    RegistryError,
    ServiceRecord,
    default_path,
    from_env,
)
from tests.waiting import eventually

CHILD = Path(__file__).with_name("registry_child.py")
STARTUP_TIMEOUT = 30.0


def rec(node_id: str, service: str = "greeter") -> ServiceRecord:
    return ServiceRecord(service, "1.0", (Node(node_id, "127.0.0.1:1"),))


async def spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, str(CHILD), *args, stdout=asyncio.subprocess.PIPE
    )


async def expect_line(proc: asyncio.subprocess.Process, want: str) -> None:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), STARTUP_TIMEOUT)
    assert line.decode().strip() == want, f"child said {line!r} (exit code {proc.returncode})"


@pytest.fixture
async def children() -> AsyncIterator[list[asyncio.subprocess.Process]]:
    procs: list[asyncio.subprocess.Process] = []
    yield procs
    for proc in procs:
        if proc.returncode is None:
            proc.kill()
        await asyncio.wait_for(proc.wait(), 10)


async def node_ids(reg: LocalRegistry, service: str = "greeter") -> set[str]:
    try:
        records = await reg.get_service(service)
    except NotFound:
        return set()
    return {n.id for r in records for n in r.nodes}


# -- paths and errors -----------------------------------------------------------------


async def test_default_path_is_private_dir_under_tempdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    path = default_path()
    assert path.parent.parent == tmp_path and path.name == "registry.db"
    assert path.parent.name.startswith("micro-")
    async with LocalRegistry() as reg:
        assert reg.path == path
        await reg.register(rec("a"))
        assert await node_ids(reg) == {"a"}
    if hasattr(os, "getuid"):
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1


async def test_path_from_env_and_directory_path(tmp_path: Path) -> None:
    reg = from_env({"MICRO_REGISTRY": "local", "MICRO_REGISTRY_PATH": str(tmp_path)})
    assert isinstance(reg, LocalRegistry)
    assert reg.path == tmp_path / "registry.db"
    nested = LocalRegistry(tmp_path / "deep" / "er" / "r.db")
    await nested.register(rec("a"))
    assert (tmp_path / "deep" / "er" / "r.db").exists()


async def test_corrupted_database_is_moved_aside_and_recreated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # It used to be a clear error on every call; it only holds leases, so now it heals
    # (tests/runtime/test_registry_local_safety.py covers it with running processes).
    path = tmp_path / "registry.db"
    garbage = b"this is not a sqlite database at all" * 100
    path.write_bytes(garbage)
    path.chmod(0o600)
    reg = LocalRegistry(path)
    with caplog.at_level(logging.WARNING, logger="micro.registry"):
        await reg.register(rec("a"))
        assert await node_ids(reg) == {"a"}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "corrupted or is not a SQLite database" in warnings[0] and str(path) in warnings[0]
    assert (tmp_path / "registry.db.corrupt").read_bytes() == garbage


async def test_unusable_path_gives_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    reg = LocalRegistry(blocker / "registry.db")
    with pytest.raises(RegistryError, match="cannot open registry database") as info:
        await reg.register(rec("a"))
    assert "MICRO_REGISTRY_PATH" in str(info.value)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="root ignores file permissions (the bad-path and corrupted-file tests run as root)",
)
async def test_read_only_database_gives_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    await LocalRegistry(path).register(rec("a"))
    path.chmod(0o444)
    try:
        with pytest.raises(RegistryError, match=r"read-only|cannot open"):
            await LocalRegistry(path).register(rec("b"))
    finally:
        path.chmod(0o644)


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(RegistryError, match="schema version 99"):
        await LocalRegistry(path).list_services()


async def test_unreadable_rows_are_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "registry.db"
    reg = LocalRegistry(path)
    await reg.register(rec("good"))
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO nodes VALUES ('greeter', '1.0', 'bad', 'h:1', '{not json', '[]', '{}',"
            " 0, 1e18)"
        )
    with caplog.at_level(logging.WARNING, logger="micro.registry"):
        assert await node_ids(reg) == {"good"}
    assert "bad" in caplog.text


async def test_expired_rows_are_purged(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    reg = LocalRegistry(path)
    await reg.register(rec("gone"), ttl=0.05)
    await reg.register(rec("stays"), ttl=30)
    await asyncio.sleep(0.1)
    assert await node_ids(reg) == {"stays"}
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT node_id FROM nodes").fetchall()
    assert rows == [("stays",)]


def test_constructor_validation(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        LocalRegistry(tmp_path, default_ttl=0)
    with pytest.raises(ValueError):
        LocalRegistry(tmp_path, poll_interval=0)


# -- across processes -------------------------------------------------------------------


async def test_two_registry_instances_share_state(tmp_path: Path) -> None:
    a, b = LocalRegistry(tmp_path), LocalRegistry(tmp_path, poll_interval=0.05)
    watcher = b.watch("greeter")
    await a.register(rec("n1"))
    assert await node_ids(b) == {"n1"}
    ev = await asyncio.wait_for(anext(watcher), 5)
    assert ev.type is EventType.CREATE and ev.service.nodes[0].id == "n1"
    await a.deregister(rec("n1"))
    ev = await asyncio.wait_for(anext(watcher), 5)
    assert ev.type is EventType.DELETE
    watcher.stop()


async def test_a_quiet_watch_does_not_reread_the_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Polls read the rows only after a commit or when a lease runs out."""
    writer, reader = LocalRegistry(tmp_path), LocalRegistry(tmp_path, poll_interval=0.02)
    reads: list[str | None] = []
    read = reader._read

    def counted(conn: sqlite3.Connection, service: str | None) -> Any:
        reads.append(service)
        return read(conn, service)

    monkeypatch.setattr(reader, "_read", counted)
    watcher = reader.watch("greeter")
    await writer.register(rec("n1"), ttl=2.0)
    ev = await asyncio.wait_for(anext(watcher), 5)
    assert ev.type is EventType.CREATE
    reads.clear()
    polled = asyncio.ensure_future(anext(watcher))
    await asyncio.sleep(0.5)  # ~25 polls: nothing committed, no lease ran out
    assert not polled.done() and reads == []
    await writer.register(rec("n2"), ttl=2.0)  # a commit: read at the next poll
    ev = await asyncio.wait_for(polled, 5)
    assert ev.type is EventType.UPDATE and {n.id for n in ev.service.nodes} == {"n1", "n2"}
    # nobody renews: the leases run out, n1's first, with no commit to notice
    ev = await asyncio.wait_for(anext(watcher), 5)
    assert ev.type is EventType.UPDATE and [n.id for n in ev.service.nodes] == ["n2"]
    ev = await asyncio.wait_for(anext(watcher), 5)
    assert ev.type is EventType.DELETE
    watcher.stop()


def _open_files(path: Path) -> int:
    """How many file descriptors of this process point at ``path`` (Linux)."""
    fds = Path("/proc/self/fd")
    return sum(1 for fd in fds.iterdir() if os.path.realpath(fd) == str(path.resolve()))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
async def test_a_stopped_watch_closes_its_connection(tmp_path: Path) -> None:
    """Also when stopped while its poll waits (how a client's watch task ends)."""
    path = tmp_path / "registry.db"
    writer, reader = LocalRegistry(path), LocalRegistry(path, poll_interval=0.02)
    await writer.register(rec("n1"))
    before = _open_files(path)
    async with reader.watch("greeter") as watcher:
        waiting = asyncio.ensure_future(anext(watcher))
        await eventually(lambda: _open_files(path) > before, what="the watcher's connection")
        await asyncio.sleep(0.2)  # a few polls: the watcher holds its one connection
        assert _open_files(path) == before + 1
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    assert watcher.stopped
    # a poll cancelled mid-thread closes it when it returns
    await eventually(lambda: _open_files(path) == before, what="the connection closed")


async def test_killed_process_disappears_after_ttl(
    tmp_path: Path, children: list[asyncio.subprocess.Process]
) -> None:
    ttl = 1.0
    path = tmp_path / "registry.db"
    reg = LocalRegistry(path, poll_interval=0.05)
    await reg.register(rec("parent-node"), ttl=60)
    child = await spawn("heartbeat", str(path), "greeter", "child-node", "127.0.0.1:7001", str(ttl))
    children.append(child)
    await expect_line(child, "READY")

    [record] = await reg.get_service("greeter")
    child_node = next(n for n in record.nodes if n.id == "child-node")
    assert child_node.address == "127.0.0.1:7001"
    assert child_node.metadata["pid"] == str(child.pid)

    # The heartbeat keeps it alive well past one TTL.
    loop = asyncio.get_running_loop()
    end = loop.time() + ttl * 2
    while loop.time() < end:
        assert "child-node" in await node_ids(reg)
        await asyncio.sleep(0.1)

    watcher = reg.watch("greeter")
    child.send_signal(signal.SIGKILL)
    await asyncio.wait_for(child.wait(), 10)
    killed_at = loop.time()

    async def gone() -> bool:
        return "child-node" not in await node_ids(reg)

    await eventually(
        gone, timeout=killed_at + ttl + 2.0 - loop.time(), what="the dead process's node gone"
    )
    assert await node_ids(reg) == {"parent-node"}  # the other node is untouched

    ev = await asyncio.wait_for(anext(watcher), 5)
    assert ev.type is EventType.UPDATE  # greeter/1.0 still has parent-node
    assert [n.id for n in ev.service.nodes] == ["parent-node"]
    watcher.stop()


async def test_watcher_sees_delete_when_last_process_dies(
    tmp_path: Path, children: list[asyncio.subprocess.Process]
) -> None:
    ttl = 1.0
    path = tmp_path / "registry.db"
    reg = LocalRegistry(path, poll_interval=0.05)
    child = await spawn("heartbeat", str(path), "solo", "only", "127.0.0.1:7002", str(ttl))
    children.append(child)
    watcher = reg.watch("solo")
    await expect_line(child, "READY")
    ev = await asyncio.wait_for(anext(watcher), 5)
    assert ev.type is EventType.CREATE and ev.service.nodes[0].id == "only"

    child.kill()
    await asyncio.wait_for(child.wait(), 10)
    ev = await asyncio.wait_for(anext(watcher), ttl + 3.0)
    assert ev.type is EventType.DELETE
    assert ev.service.name == "solo" and ev.service.nodes[0].id == "only"
    with pytest.raises(NotFound):
        await reg.get_service("solo")
    watcher.stop()


async def test_two_processes_register_nodes_of_one_service(
    tmp_path: Path, children: list[asyncio.subprocess.Process]
) -> None:
    path = tmp_path / "registry.db"
    for i in (1, 2):
        children.append(
            await spawn("heartbeat", str(path), "greeter", f"p{i}", f"127.0.0.1:800{i}", "5")
        )
    for child in children:
        await expect_line(child, "READY")
    reg = LocalRegistry(path)
    [record] = await reg.get_service("greeter")
    assert {(n.id, n.address) for n in record.nodes} == {
        ("p1", "127.0.0.1:8001"),
        ("p2", "127.0.0.1:8002"),
    }
    assert {n.metadata["pid"] for n in record.nodes} == {str(c.pid) for c in children}


async def test_concurrent_writers_from_many_processes(
    tmp_path: Path, children: list[asyncio.subprocess.Process]
) -> None:
    path = tmp_path / "registry.db"
    procs, count = 4, 25
    for p in range(procs):
        children.append(await spawn("burst", str(path), "busy", f"w{p}", str(count)))
    # The parent writes at the same time too.
    reg = LocalRegistry(path)
    for i in range(count):
        await reg.register(rec(f"parent-{i}", "busy"))
    for child in children:
        await expect_line(child, "DONE")
        assert await asyncio.wait_for(child.wait(), 30) == 0
    ids = await node_ids(reg, "busy")
    expected = {f"w{p}-{i}" for p in range(procs) for i in range(count)}
    expected |= {f"parent-{i}" for i in range(count)}
    assert ids == expected
