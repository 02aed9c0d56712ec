"""The issue's measurement, now healed: registry.db deleted (then overwritten with
garbage) while two micro services in real processes serve calls under load."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from pathlib import Path

import micro
from micro.registry import LocalRegistry
from tests.nats.load import Load
from tests.runtime.procs import nodes
from tests.waiting import eventually


async def run(tmp_path: Path, damage: str) -> tuple[int, int]:
    path = tmp_path / "registry.db"
    env = {"MICRO_REGISTRY": "local", "MICRO_REGISTRY_PATH": str(path)}
    name = f"heal-{uuid.uuid4().hex[:8]}"
    with nodes(env, tmp_path / "events") as group:
        group.start(name, "a", "--ttl", "3")
        group.start(name, "b", "--ttl", "3")
        async with micro.Client(registry=LocalRegistry(path), retries=2) as client:
            load = Load(client, name, workers=8)
            load.start()
            await eventually(
                lambda: {o.node for o in load.outcomes} >= {"a", "b"}, what="both nodes"
            )
            if damage == "delete":
                for suffix in ("", "-wal", "-shm"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(f"{path}{suffix}")
            else:
                with open(path, "r+b") as f:
                    f.write(b"garbage!" * 4096)
            await asyncio.sleep(4.0)  # over a lease: the records must have come back
            outcomes = await load.stop()
            registered = {n.id for r in await client.registry.get_service(name) for n in r.nodes}
        assert len(registered) == 2
        for node in group.started:
            assert node.process.poll() is None
    return len(load.failures()), len(outcomes)


async def test_deleted_database_under_load(tmp_path: Path) -> None:
    failed, total = await run(tmp_path, "delete")
    print(f"deleted: {failed} of {total} calls failed")
    assert failed == 0 and total > 0


async def test_corrupted_database_under_load(tmp_path: Path) -> None:
    failed, total = await run(tmp_path, "corrupt")
    print(f"corrupted: {failed} of {total} calls failed")
    assert failed == 0 and total > 0
