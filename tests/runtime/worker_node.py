"""One worker process of a service sharing a port with its siblings (not a test module).

    python -m tests.runtime.worker_node NODE PORT

Serves the test Echo service as `workers` on 127.0.0.1:PORT with SO_REUSEPORT (the grpcio
transport's `reuse_port=True`), answering with NODE; prints `READY <address>` once up.
"""

from __future__ import annotations

import sys

import micro
from micro.transport import GrpcioTransport
from tests.runtime.echo_kit import ECHO_SPEC, Echo


def main() -> None:
    node, port = sys.argv[1], int(sys.argv[2])
    service = micro.Service(
        "workers", address=f"127.0.0.1:{port}", transport=GrpcioTransport(reuse_port=True)
    )
    service.handle(ECHO_SPEC, Echo(node))

    @service.on_start
    def announce(_: micro.Service) -> None:
        print(f"READY {service.address}", flush=True)

    service.run()


if __name__ == "__main__":
    main()
