"""Child process for the cross-process LocalRegistry tests (not a test module).

python registry_child.py heartbeat PATH SERVICE NODE_ID ADDRESS TTL
    register, print READY, re-register every TTL/3 until killed (or 60 s pass,
    or the parent goes away)
python registry_child.py burst PATH SERVICE PREFIX COUNT
    register COUNT nodes PREFIX-0..COUNT-1 one by one (ttl 60 s), print DONE
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from micro.registry import LocalRegistry, Node, ServiceRecord

MAX_LIFETIME = 60.0


async def heartbeat(path: str, service: str, node_id: str, address: str, ttl: float) -> None:
    registry = LocalRegistry(path)
    record = ServiceRecord(service, "1.0", (Node(node_id, address, {"pid": str(os.getpid())}),))
    await registry.register(record, ttl=ttl)
    print("READY", flush=True)
    parent = os.getppid()
    deadline = time.monotonic() + MAX_LIFETIME
    while time.monotonic() < deadline and os.getppid() == parent:
        await asyncio.sleep(ttl / 3)
        await registry.register(record, ttl=ttl)


async def burst(path: str, service: str, prefix: str, count: int) -> None:
    registry = LocalRegistry(path)
    for i in range(count):
        node = Node(f"{prefix}-{i}", f"127.0.0.1:{10000 + i}")
        await registry.register(ServiceRecord(service, "1.0", (node,)), ttl=60.0)
    print("DONE", flush=True)


def main(argv: list[str]) -> None:
    mode, *args = argv
    if mode == "heartbeat":
        path, service, node_id, address, ttl = args
        asyncio.run(heartbeat(path, service, node_id, address, float(ttl)))
    elif mode == "burst":
        path, service, prefix, count = args
        asyncio.run(burst(path, service, prefix, int(count)))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
