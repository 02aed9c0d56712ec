"""Calls helloworld by name: no address, the embedded registry finds it."""

from __future__ import annotations

import asyncio
import sys

from gen.helloworld.v1 import HelloRequest
from gen.helloworld.v1.helloworld_micro import GreeterClient


async def main(name: str) -> None:
    greeter = GreeterClient("helloworld")
    reply = await greeter.say_hello(HelloRequest(name=name), timeout=5)
    print(reply.message)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "world"))
