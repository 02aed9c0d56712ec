"""The helloworld service. Run `python server.py` after generating gen/ (demo.py does both)."""

from __future__ import annotations

from gen.helloworld.v1 import HelloReply, HelloRequest
from gen.helloworld.v1.helloworld_micro import GreeterHandler, register_greeter_handler

import micro


class Greeter(GreeterHandler):
    async def say_hello(self, request: HelloRequest, context: micro.Context) -> HelloReply:
        return HelloReply(message=f"Hello, {request.name}!")


service = micro.Service("helloworld")
register_greeter_handler(service, Greeter())


@service.on_start
async def announce(service: micro.Service) -> None:
    print(f"serving helloworld on {service.address}", flush=True)


if __name__ == "__main__":
    service.run()  # SIGINT/SIGTERM: deregister, drain in-flight calls, stop
