"""The local registry refuses planted paths (checked with lstat) and heals: a database
deleted, replaced or corrupted under running processes is recreated and they re-register
on their next heartbeat; a read-only file still serves readers.

The tests run as root in CI: root owns every file it creates, so "another user's"
directory is made with ``os.chown`` to uid 65534 (possible as root; as another user,
pre-creating one is what an attacker does, so the test skips that case only when it
cannot chown). Root also ignores permission bits, which is why read-only is judged from
the mode bits rather than from a failed write.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from micro.registry import LocalRegistry, Node, NotFound, RegistryError, ServiceRecord, from_env
from tests.waiting import eventually

CHILD = Path(__file__).with_name("registry_child.py")
STARTUP_TIMEOUT = 30.0
pytestmark = pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions")


def rec(node_id: str, service: str = "greeter") -> ServiceRecord:
    return ServiceRecord(service, "1.0", (Node(node_id, "127.0.0.1:1"),))


async def ids(reg: LocalRegistry, service: str = "greeter") -> set[str]:
    try:
        records = await reg.get_service(service)
    except NotFound:
        return set()
    return {n.id for r in records for n in r.nodes}


@pytest.fixture
def tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temp dir the default path lives in, shared (sticky, 1777) like /tmp."""
    shared = tmp_path / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    return shared


def default_dir(tempdir: Path) -> Path:
    return tempdir / f"micro-{os.getuid()}"


# -- planted paths ------------------------------------------------------------------------


async def test_symlinked_default_directory_is_refused(tempdir: Path, tmp_path: Path) -> None:
    attacker = tmp_path / "attacker"
    attacker.mkdir(mode=0o700)
    default_dir(tempdir).symlink_to(attacker)
    with pytest.raises(RegistryError) as info:
        await LocalRegistry().register(rec("victim"))
    message = str(info.value)
    assert "symbolic link" in message and str(attacker) in message
    assert "MICRO_REGISTRY_PATH" in message
    assert list(attacker.iterdir()) == []  # nothing was written through the link
    # The documented way out: a path of one's own.
    own = tmp_path / "mine" / "registry.db"
    reg = from_env({"MICRO_REGISTRY_PATH": str(own)})
    await reg.register(rec("victim"))
    assert isinstance(reg, LocalRegistry) and await ids(reg) == {"victim"}


async def test_open_mode_default_directory_is_refused(tempdir: Path) -> None:
    default_dir(tempdir).mkdir(mode=0o700)
    default_dir(tempdir).chmod(0o777)
    with pytest.raises(RegistryError, match=r"mode 0777.*chmod 700"):
        await LocalRegistry().list_services()
    default_dir(tempdir).chmod(0o700)
    assert await LocalRegistry().list_services() == []


async def test_default_directory_of_another_user_is_refused(tempdir: Path) -> None:
    planted = default_dir(tempdir)
    planted.mkdir(mode=0o700)
    try:
        os.chown(planted, 65534, 65534)
    except PermissionError:
        pytest.skip("only root can make a directory another user's here")
    with pytest.raises(RegistryError, match=r"owned by uid 65534.*MICRO_REGISTRY_PATH"):
        await LocalRegistry().register(rec("a"))


async def test_database_file_checks(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.db"
    await LocalRegistry(target).register(rec("a"))
    link = tmp_path / "registry.db"
    link.symlink_to(target)
    with pytest.raises(RegistryError, match="is a symbolic link"):
        await LocalRegistry(link).list_services()
    link.unlink()
    await LocalRegistry(link).register(rec("b"))
    assert link.stat().st_mode & 0o777 == 0o600  # created private
    link.chmod(0o666)
    with pytest.raises(RegistryError, match=r"mode 0666: other users may write it; chmod 600"):
        await LocalRegistry(link).list_services()
    link.chmod(0o600)
    with contextlib.suppress(PermissionError):
        os.chown(link, 65534, 65534)
        with pytest.raises(RegistryError, match="owned by uid 65534"):
            await LocalRegistry(link).list_services()


# -- healing ------------------------------------------------------------------------------


async def spawn(path: Path, node: str) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        "heartbeat",
        str(path),
        "greeter",
        node,
        "127.0.0.1:1",
        "1.5",
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), STARTUP_TIMEOUT)
    assert line.decode().strip() == "READY"
    return proc


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[tuple[Path, LocalRegistry]]:
    """Two heartbeating processes (ttl 1.5 s) on one database, and a reader."""
    path = tmp_path / "registry.db"
    procs = [await spawn(path, "p1"), await spawn(path, "p2")]
    reader = LocalRegistry(path)
    assert await ids(reader) == {"p1", "p2"}
    yield path, reader
    for proc in procs:
        assert proc.returncode is None, "a heartbeat process died"
        proc.kill()
        await proc.wait()


async def back(reader: LocalRegistry) -> None:
    async def both() -> bool:
        return await ids(reader) == {"p1", "p2"}

    # Until they have, a lookup is a RegistryError ("not re-registered yet", so clients
    # keep the nodes they knew), not NotFound.
    await eventually(
        both, timeout=10, what="both processes registered again", retry_on=(RegistryError,)
    )


async def test_deleted_database_is_recreated_and_services_reregister(
    running: tuple[Path, LocalRegistry],
) -> None:
    path, reader = running
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}{suffix}")
    await back(reader)
    assert path.exists() and path.stat().st_mode & 0o777 == 0o600


async def test_replaced_database_is_reopened_and_services_reregister(
    running: tuple[Path, LocalRegistry], tmp_path: Path
) -> None:
    path, reader = running
    fresh = tmp_path / "fresh.db"
    sqlite3.connect(fresh).close()  # an empty (valid) database
    fresh.chmod(0o600)
    os.replace(fresh, path)
    await back(reader)


async def test_corrupted_database_is_recreated_and_services_reregister(
    running: tuple[Path, LocalRegistry],
) -> None:
    path, reader = running
    with open(path, "r+b") as f:  # overwritten in place: same file, garbage inside
        f.write(b"garbage!" * 4096)
    await back(reader)
    assert Path(f"{path}.corrupt").exists()


async def test_read_only_database_serves_readers_and_refuses_writers(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    await LocalRegistry(path).register(rec("a"), ttl=30)
    path.chmod(0o400)
    reader = LocalRegistry(path)
    assert await ids(reader) == {"a"}
    assert [r.name for r in await reader.list_services()] == ["greeter"]
    watcher = reader.watch()
    watcher.stop()
    with pytest.raises(RegistryError) as info:
        await reader.register(rec("b"))
    message = str(info.value)
    assert "read-only" in message and "chmod 600" in message and "\n" not in message
    path.chmod(0o600)
    await reader.register(rec("b"))
    assert await ids(reader) == {"a", "b"}
