"""One `library` node: `python -m tests.gateway.server NAME NODE`; prints `READY <address>`."""

from __future__ import annotations

import asyncio
import sys

from tests.gateway.app import build_service


async def main(name: str, node: str) -> None:
    service = build_service(name, node)

    async def announce(_: object) -> None:
        print(f"READY {service.address}", flush=True)

    service.on_start(announce)
    await service.serve()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
