"""The NATS registry against a real nats-server, with nodes in real processes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import micro
from micro.registry import EventType, Node, NotFound, RegistryError, ServiceRecord, from_env
from micro.registry.nats import NatsRegistry
from tests.cluster import ROOT
from tests.nats.server import NatsServer, free_port
from tests.runtime.procs import nodes
from tests.waiting import eventually


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def registry(nats_url: str) -> AsyncIterator[NatsRegistry]:
    async with NatsRegistry(nats_url) as reg:
        yield reg


async def test_register_lookup_watch_deregister_across_instances(
    nats_url: str, registry: NatsRegistry
) -> None:
    name = unique("svc")
    record = ServiceRecord(name, "1.0", (Node("n1", "127.0.0.1:1", {"zone": "a"}),))
    async with NatsRegistry(nats_url) as other:
        watcher = other.watch(name)
        first = asyncio.ensure_future(watcher.__anext__())

        # a watch on a registry not yet synced attaches on its first __anext__
        def attached() -> bool:
            return watcher._inner is not None  # type: ignore[attr-defined]

        await eventually(attached, what="the watcher attached")
        await registry.register(record, ttl=30)
        event = await asyncio.wait_for(first, 5)
        assert event.type is EventType.CREATE and event.service.nodes == record.nodes
        assert await other.get_service(name) == [record]
        assert record in await other.list_services()
        await registry.deregister(record)
        event = await asyncio.wait_for(watcher.__anext__(), 5)
        assert event.type is EventType.DELETE
        with pytest.raises(NotFound):
            await other.get_service(name)
        watcher.stop()


async def test_names_with_any_characters_are_keys(registry: NatsRegistry) -> None:
    name = unique("odd name/with:chars*>")
    record = ServiceRecord(name, "", (Node("node id ü", "127.0.0.1:2"),))
    await registry.register(record, ttl=30)
    assert await registry.get_service(name) == [record]
    await registry.deregister(record)


async def test_a_node_registered_elsewhere_a_moment_ago_is_found(
    nats_url: str, registry: NatsRegistry
) -> None:
    """A lookup that misses in the mirror reads the bucket before answering NotFound."""
    await registry.list_services()  # the mirror is synced and watching
    name = unique("fresh")
    record = ServiceRecord(name, "1", (Node("n1", "127.0.0.1:3"),))

    async def register_elsewhere() -> None:
        async with NatsRegistry(nats_url) as other:
            await other.register(record, ttl=30)

    # Registered from another thread while this loop is blocked: the mirror's watch
    # cannot have delivered the new key before the lookup looks at the mirror.
    thread = threading.Thread(target=asyncio.run, args=(register_elsewhere(),))
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert await registry.get_service(name) == [record]
    await registry.deregister(record)
    with pytest.raises(NotFound):
        await registry.get_service(name)


async def test_lookup_misses_leave_no_consumers_on_the_server(nats_url: str) -> None:
    """Each miss reads the bucket through a short-lived watch; the server must drop its
    consumer soon after, not keep one per miss for nats-py's default five minutes."""
    import nats

    bucket = unique("bucket")
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        async with NatsRegistry(nats_url, bucket=bucket) as registry:
            await registry.list_services()  # the mirror's own watch: one consumer
            for _ in range(10):
                with pytest.raises(NotFound):
                    await registry.get_service("nowhere")

            async def only_the_mirror_left() -> bool:
                info = await js.stream_info(f"KV_{bucket}")
                return info.state.consumer_count == 1

            await eventually(only_the_mirror_left, timeout=10, what="one consumer left")
        await js.delete_stream(f"KV_{bucket}")
    finally:
        await nc.close()


async def test_lookups_never_answer_from_an_unsynced_mirror(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client whose watch cannot start gets RegistryError, never a false NotFound."""
    config = """
    authorization {
      users = [{user: "svc", password: "pw",
                permissions: {publish: {deny: ["$JS.API.CONSUMER.>"]}}}]
    }
    """
    server = NatsServer(tmp_path / "store", config=config)
    server.start()
    try:
        monkeypatch.setattr("micro.registry.nats.SYNC_TIMEOUT", 1.0)
        url = f"nats://svc:pw@127.0.0.1:{server.port}"
        async with NatsRegistry(url) as registry:
            record = ServiceRecord("unseen", "1", (Node("n1", "127.0.0.1:4"),))
            await registry.register(record, ttl=30)  # writes need no watch
            with pytest.raises(RegistryError, match="no snapshot of bucket"):
                await registry.get_service("unseen")
            with pytest.raises(RegistryError, match="no snapshot of bucket"):
                await registry.list_services()
    finally:
        server.kill()


async def test_the_mirror_stops_even_when_nats_py_swallows_the_cancel(
    registry: NatsRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python 3.11's asyncio.wait_for, which nats-py waits with, drops a cancel that
    arrives together with its result. The mirror's loop must stop anyway: asyncio.run
    cancels it at exit and waits for it (a node once hung 30 s on SIGTERM so)."""
    from nats.js.kv import KeyValue

    real = KeyValue.KeyWatcher.updates
    swallowed = 0
    armed = False  # from now on the watch is quiet: nothing arrives
    waiting = False  # the loop is inside (awaiting) the quiet updates()

    async def updates(self: KeyValue.KeyWatcher, timeout: float = 5.0) -> object:
        nonlocal swallowed, waiting
        if not armed:  # syncing: the real watch (the shared server may have traffic)
            return await real(self, timeout)  # type: ignore[no-untyped-call]
        waiting = True
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            swallowed += 1
            return None  # as wait_for does when the entry was there at the same moment
        finally:
            waiting = False
        raise AssertionError("unreachable: the event is never set")

    monkeypatch.setattr(KeyValue.KeyWatcher, "updates", updates)
    await registry.list_services()  # synced: the loop waits in updates()
    assert registry._state is not None and registry._state.task is not None
    task = registry._state.task
    armed = True  # the real updates() in progress returns within its 5 s timeout
    await eventually(lambda: waiting, timeout=10, what="the loop waiting in updates()")
    task.cancel()  # now, while it is suspended there: the cancel is swallowed
    await asyncio.wait({task}, timeout=5)
    assert swallowed == 1
    assert task.cancelled()


async def test_sigkilled_node_disappears_within_its_ttl(
    nats_url: str, registry: NatsRegistry, tmp_path: Path
) -> None:
    name, ttl = unique("expiry"), 2.0
    env = {"MICRO_REGISTRY": "nats", "MICRO_REGISTRY_ADDRESS": nats_url}
    with nodes(env, tmp_path / "events") as group:
        node = group.start(name, "a", "--ttl", str(ttl))
        records = await registry.get_service(name)
        assert [n.address for r in records for n in r.nodes] == [node.address]
        watcher = registry.watch(name)
        # the registry is synced (get_service above), so the watch is attached at once
        pending = asyncio.ensure_future(watcher.__anext__())
        node.kill()  # SIGKILL: no deregistration, no more heartbeats
        killed = time.monotonic()
        event = await asyncio.wait_for(pending, ttl + 2)
        assert event.type is EventType.DELETE
        took = time.monotonic() - killed
        assert took <= ttl + 0.5, took
        with pytest.raises(NotFound):
            await registry.get_service(name)
        async with NatsRegistry(nats_url) as fresh:  # a newcomer never sees the dead node
            with pytest.raises(NotFound):
                await fresh.get_service(name)
        watcher.stop()


async def test_sigterm_deregisters_at_once(
    nats_url: str, registry: NatsRegistry, tmp_path: Path
) -> None:
    name = unique("graceful")
    env = {"MICRO_REGISTRY": "nats", "MICRO_REGISTRY_ADDRESS": nats_url}
    with nodes(env, tmp_path / "events") as group:
        node = group.start(name, "a", "--ttl", "30")
        await registry.get_service(name)
        assert node.terminate() == 0

        async def gone() -> bool:
            try:
                await registry.get_service(name)
            except NotFound:
                return True
            return False

        started = time.monotonic()
        await eventually(gone, timeout=5, what="the node gone from the registry")
        assert time.monotonic() - started < 5  # long before the 30 s lease


def test_env_selects_the_nats_registry() -> None:
    reg = from_env({"MICRO_REGISTRY": "nats", "MICRO_REGISTRY_ADDRESS": "nats://127.0.0.1:1"})
    assert isinstance(reg, NatsRegistry) and reg.address == "nats://127.0.0.1:1"
    with pytest.raises(ValueError, match="valid values: local, memory, nats"):
        from_env({"MICRO_REGISTRY": "etcd"})


def test_unreachable_nats_is_a_one_line_start_error(tmp_path: Path) -> None:
    env = {
        "MICRO_REGISTRY": "nats",
        "MICRO_REGISTRY_ADDRESS": f"nats://127.0.0.1:{free_port()}",
        "PYTHONPATH": str(ROOT),
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-m", "tests.runtime.event_node", "svc", "a"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot reach NATS" in lines[0], done.stderr


async def test_registry_is_usable_from_micro_namespace() -> None:
    assert micro.Registry is not None  # the protocol NatsRegistry implements
    assert isinstance(NatsRegistry(), micro.Registry)
