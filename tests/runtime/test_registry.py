"""Registry data model, from_env, and behaviour shared by every backend."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from micro.registry import (
    Endpoint,
    Event,
    EventType,
    FrozenMap,
    LocalRegistry,
    MemoryRegistry,
    Node,
    NotFound,
    Registry,
    RegistryClosed,
    ServiceRecord,
    Watcher,
    backends,
    from_env,
    register_backend,
)
from tests.waiting import eventually


def record(
    name: str = "greeter",
    version: str = "1.0",
    *node_ids: str,
    metadata: dict[str, str] | None = None,
) -> ServiceRecord:
    ids = node_ids or ("n1",)
    return ServiceRecord(
        name=name,
        version=version,
        nodes=tuple(Node(i, f"127.0.0.1:{9000 + k}", {"zone": "a"}) for k, i in enumerate(ids)),
        endpoints=(
            Endpoint(
                "Greeter.SayHello",
                "/helloworld.v1.Greeter/SayHello",
                "unary",
                "helloworld.v1.HelloRequest",
                "helloworld.v1.HelloReply",
            ),
        ),
        metadata=metadata or {"team": "x"},
    )


async def next_event(watcher: Watcher, timeout: float = 5.0) -> Event:
    return await asyncio.wait_for(anext(watcher), timeout)


async def no_event(watcher: Watcher, within: float) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(anext(watcher), within)


# -- data model -------------------------------------------------------------------------


def test_record_json_round_trip() -> None:
    rec = record("greeter", "2", "a", "b")
    data = json.loads(json.dumps(rec.to_dict()))
    assert ServiceRecord.from_dict(data) == rec
    assert Node.from_dict(rec.nodes[0].to_dict()) == rec.nodes[0]
    assert Endpoint.from_dict(rec.endpoints[0].to_dict()) == rec.endpoints[0]


def test_records_are_immutable_hashable_values() -> None:
    a = record("greeter", "1", "a")
    b = ServiceRecord.from_dict(a.to_dict())
    assert a == b and hash(a) == hash(b)
    assert len({a, b}) == 1
    assert isinstance(a.metadata, FrozenMap)
    assert a.metadata == {"team": "x"}
    with pytest.raises(TypeError):
        a.metadata["team"] = "y"  # type: ignore[index]
    with pytest.raises(AttributeError):
        a.name = "other"  # type: ignore[misc]
    # lists passed at runtime become tuples
    c = ServiceRecord("s", "1", [Node("n", "h:1")])  # type: ignore[arg-type]
    assert c.nodes == (Node("n", "h:1"),)
    assert Node("n", "h:1", {"b": "2", "a": "1"}) == Node("n", "h:1", {"a": "1", "b": "2"})


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"name": 3},
        {"name": "s", "nodes": [{"id": "n"}]},
        {"name": "s", "nodes": "x"},
        {"name": "s", "metadata": {"k": 1}},
        {"name": "s", "endpoints": [{"path": "/x"}]},
        [],
    ],
)
def test_from_dict_rejects_malformed(bad: object) -> None:
    with pytest.raises(ValueError):
        ServiceRecord.from_dict(bad)  # type: ignore[arg-type]


def test_validation() -> None:
    with pytest.raises(ValueError):
        Node("", "h:1")
    with pytest.raises(ValueError):
        Node("n", "")
    with pytest.raises(ValueError):
        ServiceRecord("")
    with pytest.raises(TypeError):
        Node("n", "h:1", {"k": 1})  # type: ignore[dict-item]


# -- from_env ---------------------------------------------------------------------------


def test_from_env_default_is_local(tmp_path: Path) -> None:
    reg = from_env({"MICRO_REGISTRY_PATH": str(tmp_path / "r.db")})
    assert isinstance(reg, LocalRegistry)
    assert reg.path == tmp_path / "r.db"
    assert isinstance(
        from_env({"MICRO_REGISTRY": " Local ", "MICRO_REGISTRY_PATH": str(tmp_path)}), LocalRegistry
    )


def test_from_env_memory() -> None:
    reg = from_env({"MICRO_REGISTRY": "memory"})
    assert isinstance(reg, MemoryRegistry)
    assert isinstance(reg, Registry)


def test_from_env_unknown_lists_valid_values() -> None:
    with pytest.raises(ValueError) as info:
        from_env({"MICRO_REGISTRY": "zookeeper"})
    msg = str(info.value)
    assert "zookeeper" in msg and "MICRO_REGISTRY" in msg
    for name in ("local", "memory"):
        assert name in msg


def test_register_backend_is_pluggable() -> None:
    made: list[MemoryRegistry] = []

    def factory(environ: object) -> Registry:
        made.append(MemoryRegistry())
        return made[-1]

    register_backend("test-fake", factory)
    assert "test-fake" in backends()
    assert from_env({"MICRO_REGISTRY": "TEST-FAKE"}) is made[0]


# -- behaviour shared by both backends --------------------------------------------------

Factory = Callable[[], Registry]


@pytest.fixture(params=["memory", "local"])
async def registry(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Registry]:
    reg: Registry
    if request.param == "memory":
        reg = MemoryRegistry()
    else:
        reg = LocalRegistry(tmp_path / "registry.db", poll_interval=0.05)
    yield reg
    await reg.close()


async def test_register_get_list_deregister(registry: Registry) -> None:
    with pytest.raises(NotFound) as info:
        await registry.get_service("greeter")
    assert isinstance(info.value, LookupError) and "greeter" in str(info.value)
    assert await registry.list_services() == []

    await registry.register(record("greeter", "1.0", "a"))
    await registry.register(record("greeter", "1.0", "b"))
    await registry.register(record("greeter", "2.0", "c"))
    await registry.register(record("other", "1.0", "d"))

    got = await registry.get_service("greeter")
    assert [(r.version, [n.id for n in r.nodes]) for r in got] == [
        ("1.0", ["a", "b"]),
        ("2.0", ["c"]),
    ]
    assert got[0].endpoints == record().endpoints
    assert got[0].metadata == {"team": "x"}
    assert got[0].nodes[0] == Node("a", "127.0.0.1:9000", {"zone": "a"})

    listed = await registry.list_services()
    assert [(r.name, r.version) for r in listed] == [
        ("greeter", "1.0"),
        ("greeter", "2.0"),
        ("other", "1.0"),
    ]

    await registry.deregister(record("greeter", "1.0", "a"))
    got = await registry.get_service("greeter")
    assert [[n.id for n in r.nodes] for r in got] == [["b"], ["c"]]

    await registry.deregister(record("greeter", "1.0", "b"))
    await registry.deregister(record("greeter", "2.0", "c"))
    await registry.deregister(record("greeter", "2.0", "never-registered"))  # no-op
    with pytest.raises(NotFound):
        await registry.get_service("greeter")
    assert [r.name for r in await registry.list_services()] == ["other"]


async def test_reregister_updates_address_and_metadata(registry: Registry) -> None:
    await registry.register(record("greeter", "1", "a"))
    moved = ServiceRecord("greeter", "1", (Node("a", "10.0.0.1:1"),), (), {"team": "y"})
    await registry.register(moved)
    [got] = await registry.get_service("greeter")
    assert got == moved


async def test_register_validates(registry: Registry) -> None:
    with pytest.raises(ValueError, match="no nodes"):
        await registry.register(ServiceRecord("empty", "1"))
    with pytest.raises(ValueError, match="ttl"):
        await registry.register(record(), ttl=0)
    with pytest.raises(ValueError, match="ttl"):
        await registry.register(record(), ttl=-1)


async def test_ttl_expiry_and_refresh(registry: Registry) -> None:
    ttl = 0.4
    await registry.register(record("greeter", "1", "short"), ttl=ttl)
    await registry.register(record("greeter", "1", "long"), ttl=30)
    # Refreshing keeps "short" alive past its first deadline.
    loop = asyncio.get_running_loop()
    end = loop.time() + ttl * 2
    while loop.time() < end:
        await registry.register(record("greeter", "1", "short"), ttl=ttl)
        await asyncio.sleep(ttl / 4)
    [got] = await registry.get_service("greeter")
    assert {n.id for n in got.nodes} == {"short", "long"}

    # Stop refreshing: it disappears once the TTL passes.
    async def only_long() -> bool:
        [got] = await registry.get_service("greeter")
        return {n.id for n in got.nodes} == {"long"}

    await eventually(only_long, timeout=ttl + 2.0, what="the expired node unlisted")


async def test_watch_create_update_delete(registry: Registry) -> None:
    async with registry.watch() as watcher:
        await registry.register(record("greeter", "1", "a"))
        ev = await next_event(watcher)
        assert ev.type is EventType.CREATE
        assert ev.service == record("greeter", "1", "a")

        await registry.register(record("greeter", "1", "b"))
        ev = await next_event(watcher)
        assert ev.type is EventType.UPDATE
        assert [n.id for n in ev.service.nodes] == ["a", "b"]

        await registry.deregister(record("greeter", "1", "a", "b"))
        ev = await next_event(watcher)
        assert ev.type is EventType.DELETE
        assert ev.service.name == "greeter" and ev.service.version == "1"
        assert [n.id for n in ev.service.nodes] == ["a", "b"]

        # Heartbeats that change nothing produce no events.
        await registry.register(record("greeter", "1", "a"))
        assert (await next_event(watcher)).type is EventType.CREATE
        await registry.register(record("greeter", "1", "a"))
        await no_event(watcher, 0.3)
    assert watcher.stopped
    with pytest.raises(StopAsyncIteration):
        await anext(watcher)


async def test_watch_filters_by_service(registry: Registry) -> None:
    watcher = registry.watch("greeter")
    await registry.register(record("other", "1", "x"))
    await registry.register(record("greeter", "1", "a"))
    ev = await next_event(watcher)
    assert (ev.type, ev.service.name) == (EventType.CREATE, "greeter")
    await registry.deregister(record("other", "1", "x"))
    await no_event(watcher, 0.3)
    watcher.stop()


async def test_watch_reports_expiry_as_delete(registry: Registry) -> None:
    watcher = registry.watch()
    await registry.register(record("greeter", "1", "a"), ttl=0.3)
    assert (await next_event(watcher)).type is EventType.CREATE
    ev = await next_event(watcher, timeout=3.0)  # nobody touches the registry meanwhile
    assert ev.type is EventType.DELETE
    assert ev.service.nodes[0].id == "a"
    watcher.stop()


async def test_stop_wakes_a_blocked_iterator(registry: Registry) -> None:
    watcher = registry.watch()
    task = asyncio.create_task(anext(watcher))
    await asyncio.sleep(0.05)
    watcher.stop()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(task, 2.0)


async def test_async_for_ends_on_close(registry: Registry) -> None:
    watcher = registry.watch()
    seen: list[EventType] = []

    async def consume() -> None:
        async for ev in watcher:
            seen.append(ev.type)

    task = asyncio.create_task(consume())
    await registry.register(record("greeter", "1", "a"))
    await eventually(lambda: seen, what="the CREATE event consumed")
    await registry.close()
    await asyncio.wait_for(task, 2.0)
    assert seen == [EventType.CREATE]
    with pytest.raises(RegistryClosed):
        await registry.get_service("greeter")
    with pytest.raises(RegistryClosed):
        registry.watch()
    await registry.close()  # idempotent


async def test_concurrent_registrations(registry: Registry) -> None:
    await asyncio.gather(
        *(registry.register(record("greeter", "1", f"n{i:02d}")) for i in range(20))
    )
    [got] = await registry.get_service("greeter")
    assert [n.id for n in got.nodes] == [f"n{i:02d}" for i in range(20)]


async def test_memory_default_ttl() -> None:
    async with MemoryRegistry(default_ttl=0.2) as reg:
        await reg.register(record("greeter", "1", "a"))

        async def expired() -> bool:
            try:
                await reg.get_service("greeter")
            except NotFound:
                return True
            return False

        await eventually(expired, timeout=3, what="the node expired by the default TTL")
    with pytest.raises(ValueError):
        MemoryRegistry(default_ttl=0)


async def test_watch_reports_only_changes_after_it_starts(registry: Registry) -> None:
    assert isinstance(registry, Registry)
    await registry.register(record("greeter", "1", "a"))
    watcher = registry.watch()
    await no_event(watcher, 0.3)  # the existing service is the baseline, not a CREATE
    await registry.register(record("greeter", "1", "b"))  # right after watch(): not lost
    ev = await next_event(watcher)
    assert ev.type is EventType.UPDATE
    assert [n.id for n in ev.service.nodes] == ["a", "b"]
    watcher.stop()
