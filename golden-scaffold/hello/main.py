"""Runs the hello service: `python main.py` (or `make run`).

It registers as "hello" in the registry named by MICRO_REGISTRY (default: a local
SQLite file shared by the processes of this machine) and stops cleanly on Ctrl-C or
SIGTERM. MICRO_SERVER_ADDRESS=host:port picks the address (default: 127.0.0.1, any port);
MICRO_SERVER_ADVERTISE=host, the host it registers instead of the one it binds (in
Kubernetes, the pod's IP: k8s/deployment.yaml).
"""

from __future__ import annotations

import os
import sys

import micro

from gen.hello.v1.hello_micro import register_hello_handler
from hello.handler import SERVICE, Hello


def build() -> micro.Service:
    address = os.environ.get("MICRO_SERVER_ADDRESS", "127.0.0.1:0")
    advertise = os.environ.get("MICRO_SERVER_ADVERTISE") or None
    service = micro.Service(SERVICE, address=address, advertise=advertise)
    register_hello_handler(service, Hello())

    @service.on_start
    async def announce(service: micro.Service) -> None:
        print(f"serving {service.name} on {service.address}", flush=True)

    return service


if __name__ == "__main__":
    try:
        service = build()
    except micro.ConfigError as exc:  # a bad MICRO_SERVER_ADDRESS: one line, exit 2
        print(f"micro: {exc}", file=sys.stderr)
        sys.exit(2)
    service.run()  # a bad MICRO_REGISTRY / MICRO_SELECTOR: exit 2; port taken: exit 1
