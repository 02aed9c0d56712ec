"""Calls the hello service by name: `python client.py [NAME]` (or `make client`).

Start the service first (`make run`); the registry finds it, no address needed.
"""

from __future__ import annotations

import asyncio
import sys

import micro

from gen.hello.v1 import CallRequest, StreamRequest
from gen.hello.v1.hello_micro import HelloClient


async def main(name: str) -> None:
    async with micro.Client() as client:
        service = HelloClient("hello", client=client)
        reply = await service.call(CallRequest(name=name), timeout=5)
        print(reply.message)
        async for item in service.stream(StreamRequest(name=name, count=3), timeout=5):
            print(f"{item.index}: {item.message}")


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "world"))
    except micro.Error as exc:
        sys.exit(f"{exc.id}: {exc.detail} ({exc.status})")
