"""``python -m tests.conformance.echo_server grpcio|grpclib``: serves the echo service on a
free port of 127.0.0.1 and prints the port, for tests that watch a server process."""

from __future__ import annotations

import asyncio
import sys

from micro.transport import GrpcioTransport
from micro.transport.grpclib_impl import GrpclibTransport
from tests.runtime.echo_kit import serving


async def main(wire: str) -> None:
    transport = GrpcioTransport() if wire == "grpcio" else GrpclibTransport()
    async with serving(transport=transport) as service:
        assert service.address is not None
        print(service.address.rpartition(":")[2], flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
