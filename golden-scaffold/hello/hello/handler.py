"""The hello service's handlers: this file is yours to edit.

Regeneration (`make generate`) only rewrites gen/, never this file. The generated
base class HelloHandler (in gen/hello/v1/hello_micro.py)
answers UNIMPLEMENTED for every rpc not overridden here: add an rpc to
proto/hello/v1/hello.proto, run `make generate`, then implement it below.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import micro

from gen.hello.v1 import CallRequest, CallResponse, StreamRequest, StreamResponse
from gen.hello.v1.hello_micro import HelloHandler

SERVICE = "hello"
MAX_COUNT = 1000


class Hello(HelloHandler):
    async def call(self, request: CallRequest, context: micro.Context) -> CallResponse:
        if not request.name:
            raise micro.errors.bad_request(SERVICE, "name is required")
        return CallResponse(message=f"Hello {request.name}")

    async def stream(
        self, request: StreamRequest, context: micro.Context
    ) -> AsyncIterator[StreamResponse]:
        if not 1 <= request.count <= MAX_COUNT:
            raise micro.errors.bad_request(SERVICE, f"count must be 1 to {MAX_COUNT}")
        for index in range(request.count):
            yield StreamResponse(message=f"Hello {request.name}", index=index)
