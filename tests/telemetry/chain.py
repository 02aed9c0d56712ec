"""The processes of the trace test: `python -m tests.telemetry.chain front|back`.

``front`` serves the gateway's Library; its GetBook calls ``back``'s Greeter.SayHello,
and it subscribes to ``telemetry.greeted``. ``back`` answers SayHello and publishes
``telemetry.greeted`` first. Each prints ``READY <address>`` once it is registered; the
subscriber prints ``GREETED <message>`` for each event (with its log fields in the log).
"""

from __future__ import annotations

import asyncio
import logging
import sys

import micro
from golden.gateway.v1 import Book, GetBookRequest
from golden.gateway.v1.gateway_micro import LibraryHandler, register_library_handler
from golden.helloworld.v1 import HelloReply, HelloRequest
from golden.helloworld.v1.helloworld_micro import (
    GreeterClient,
    GreeterHandler,
    register_greeter_handler,
)

GREETED = micro.Event("telemetry.greeted", HelloReply)

log = logging.getLogger("micro.test.chain")


class Front(LibraryHandler):
    async def get_book(self, request: GetBookRequest, context: micro.Context) -> Book:
        log.info("front: get_book %s", request.name)
        reply = await GreeterClient("back").say_hello(HelloRequest(name=request.name))
        return Book(name=request.name, title=reply.message)


class Back(GreeterHandler):
    def __init__(self, service: micro.Service) -> None:
        self.service = service

    async def say_hello(self, request: HelloRequest, context: micro.Context) -> HelloReply:
        reply = HelloReply(message=f"Hello, {request.name}!")
        await self.service.publish(GREETED, reply)
        return reply


def build(role: str) -> micro.Service:
    service = micro.Service(role)
    if role == "front":
        register_library_handler(service, Front())

        @service.subscriber(GREETED)
        async def greeted(message: HelloReply) -> None:
            log.info("front: greeted")
            print(f"GREETED {message.message}", flush=True)

    else:
        register_greeter_handler(service, Back(service))
    return service


async def main(role: str) -> None:
    service = build(role)

    async def announce(_: object) -> None:
        print(f"READY {service.address}", flush=True)

    service.on_start(announce)
    await service.serve()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
