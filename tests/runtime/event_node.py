"""One service node in its own process, for the broker/registry tests (not a test module).

    python -m tests.runtime.event_node NAME NODE [--ttl S] [--broadcast] [--durable]

Serves the e2e Streamer (Echo answers "<text> from NODE") and subscribes to
``NODE_TOPIC`` (an EchoRequest event; ``--durable``: a durable one), appending
``NODE TEXT REDELIVERED`` per message to ``NODE_EVENTS``. A message whose text starts
with ``raise`` makes the subscriber raise (``raise-once``: only on first delivery).
Registry and broker come from the environment (MICRO_REGISTRY, MICRO_BROKER, ...).
Prints ``READY <address>`` once serving; SIGTERM stops it gracefully.
"""

from __future__ import annotations

import argparse
import asyncio
import os

import micro
from golden.streaming.v1 import EchoRequest
from tests.e2e.app import build_service


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("node")
    parser.add_argument("--ttl", type=float, default=15.0)
    parser.add_argument("--broadcast", action="store_true")
    parser.add_argument("--durable", action="store_true")
    args = parser.parse_args()
    service = build_service(args.name, args.node, register_ttl=args.ttl)
    topic = os.environ.get("NODE_TOPIC")
    if topic:
        event = micro.Event(topic, EchoRequest, durable=args.durable)

        @service.subscriber(event, broadcast=args.broadcast)
        async def record(message: EchoRequest, delivery: micro.Delivery) -> None:
            if message.sleep_ms:
                await asyncio.sleep(message.sleep_ms / 1000)
            with open(os.environ["NODE_EVENTS"], "a") as fh:
                fh.write(f"{args.node} {message.text} {int(delivery.redelivered)}\n")
            if message.text.startswith("raise-once") and not delivery.redelivered:
                raise RuntimeError(f"failing once on {message.text}")
            if message.text.startswith("raise") and not message.text.startswith("raise-once"):
                raise RuntimeError(f"failing on {message.text}")

    @service.on_start
    def announce(_: micro.Service) -> None:
        print(f"READY {service.address}", flush=True)

    service.run()


if __name__ == "__main__":
    main()
