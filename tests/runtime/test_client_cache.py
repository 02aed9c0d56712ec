"""Client lookups: cached, refreshed by a registry watch, kept through a registry outage."""

from __future__ import annotations

import asyncio
import logging

import pytest

import micro
from micro.registry import MemoryRegistry, Node, ServiceRecord
from tests.waiting import eventually


def record(node: str) -> ServiceRecord:
    return ServiceRecord("cached", nodes=(Node(node, f"127.0.0.1:{1000 + len(node)}"),))


async def nodes(client: micro.Client, count: int) -> bool:
    return len(await client.lookup("cached")) == count


async def test_a_watch_refreshes_a_long_lived_cache() -> None:
    registry = MemoryRegistry()
    async with micro.Client(registry=registry, cache_ttl=60) as client:
        await registry.register(record("a"))
        assert [n.id for n in await client.lookup("cached")] == ["a"]
        await registry.register(record("bb"))
        await eventually(lambda: nodes(client, 2), what="the new node in the cache")
        assert sorted(n.id for n in await client.lookup("cached")) == ["a", "bb"]
        await registry.deregister(record("a"))
        await eventually(lambda: nodes(client, 1), what="the old node out of the cache")
        assert [n.id for n in await client.lookup("cached")] == ["bb"]


async def test_a_failing_registry_leaves_the_last_known_nodes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = MemoryRegistry()
    async with micro.Client(registry=registry, cache_ttl=0.01) as client:
        await registry.register(record("a"))
        assert [n.id for n in await client.lookup("cached")] == ["a"]
        await registry.close()  # every registry call now raises RegistryClosed
        caplog.set_level(logging.WARNING, logger="micro.client")
        for _ in range(5):
            await asyncio.sleep(0.02)
            assert [n.id for n in await client.lookup("cached")] == ["a"]
        warnings = [r for r in caplog.records if "last known node" in r.getMessage()]
        assert len(warnings) == 1
        with pytest.raises(micro.Error, match="registry unavailable"):
            await client.lookup("never-seen")  # nothing to fall back on
