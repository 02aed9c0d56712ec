"""A node serving the `_pb2` e2e service: `python -m tests.e2e_pb2.server NAME NODE`."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "golden-pb2"))

from tests.e2e_pb2.app import build_service


async def main(name: str, node: str) -> None:
    service = build_service(name, node)

    @service.on_start
    async def announce(_: object) -> None:
        print(f"READY {service.address}", flush=True)

    await service.serve()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
