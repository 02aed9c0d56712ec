"""A node serving the `_pb2` e2e service: `python -m tests.e2e_pb2.server NAME NODE`.

With `PB2_TOPIC` set it also subscribes a `_pb2` EchoRequest event on that topic and
appends `NODE TEXT` per message to `E2E_EVENTS`."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "golden-pb2"))

from streaming.v1 import streaming_pb2

import micro
from tests.e2e_pb2.app import build_service


async def main(name: str, node: str) -> None:
    service = build_service(name, node)
    topic = os.environ.get("PB2_TOPIC")
    if topic:

        @service.subscriber(micro.Event(topic, streaming_pb2.EchoRequest))
        async def record(message: streaming_pb2.EchoRequest) -> None:
            with open(os.environ["E2E_EVENTS"], "a") as fh:
                fh.write(f"{node} {message.text}\n")

    @service.on_start
    async def announce(_: object) -> None:
        print(f"READY {service.address}", flush=True)

    await service.serve()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
