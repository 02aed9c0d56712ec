"""A script that leaves the default client and broker of its ``asyncio.run`` open (not a
test module): ``python -m tests.runtime.loop_defaults_child TARGET``.

It holds both, as a program may, and prints ``broker <address>`` (the subscription
server), ``called <text>`` (an Echo call to TARGET answered), ``ran`` (the loop ended),
and ``subscribers <n>`` (the subscriber nodes the registry lists after it). Then it waits
for a line on stdin before it exits. Registry and transport come from the environment.
"""

from __future__ import annotations

import asyncio
import sys

import micro
from micro import broker as broker_mod
from micro.broker import Delivery
from micro.broker.embedded import topic_service
from micro.registry import NotFound
from tests.runtime.echo_kit import EchoClient, EchoRequest

TOPIC = "loop.defaults"
held: list[object] = []


async def ignore(delivery: Delivery) -> None:
    pass


async def subscribers() -> int:
    try:
        records = await micro.registry.default().get_service(topic_service(TOPIC))
    except NotFound:
        return 0
    return sum(len(record.nodes) for record in records)


async def main(target: str) -> None:
    held.append(micro.client.default())
    broker = broker_mod.default()
    held.append(broker)
    await broker.subscribe(TOPIC, ignore)
    records = await micro.registry.default().get_service(topic_service(TOPIC))
    print("broker", records[0].nodes[0].address, flush=True)
    reply = await EchoClient(address=target).echo(EchoRequest(text="hi"), timeout=10)
    print("called", reply.text, flush=True)


asyncio.run(main(sys.argv[1]))
print("ran", flush=True)
print("subscribers", asyncio.run(subscribers()), flush=True)
sys.stdin.readline()
