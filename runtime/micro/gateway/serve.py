"""Run the gateway on uvicorn until SIGTERM/SIGINT.

On a signal, uvicorn stops accepting connections, lets the requests in flight finish (up
to `grace` seconds, then cancels them), then the gateway closes its client and registry.
"""

from __future__ import annotations

import asyncio
import math
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from starlette.applications import Starlette

import micro
from micro.gateway.app import Gateway, GatewayConfig, build_app
from micro.tls import TLS

__all__ = ["bind", "serve"]


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio turns Nagle off (TCP_NODELAY) only on sockets whose
    # proto says TCP; with proto 0 every keep-alive response would wait ~40 ms for an ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def _announce(
    app: Starlette, gateway: Gateway, sock: socket.socket, log_ready: bool, scheme: str = "http"
) -> None:
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: Starlette) -> AsyncIterator[None]:
        async with inner(app_):
            host, port = sock.getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            if log_ready:
                print(
                    f"micro api listening on {scheme}://{shown}:{port} "
                    f"({len(gateway.table)} routes)",
                    flush=True,
                )
            yield

    app.router.lifespan_context = lifespan


def serve(
    registry: micro.Registry,
    config: GatewayConfig,
    sock: socket.socket,
    *,
    grace: float = 30.0,
    log_level: str = "warning",
    access_log: bool = False,
    https: TLS | None = None,
) -> None:
    """Serve until a signal; HTTPS with ``https`` (its cert and key; with a CA and
    ``client_auth``, client certificates), its files re-read when they change."""
    gateway = Gateway(registry, config)
    app = build_app(gateway)
    _announce(app, gateway, sock, log_ready=True, scheme="http" if https is None else "https")
    uvicorn_config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=access_log,
        lifespan="on",
        timeout_graceful_shutdown=math.ceil(grace),
        server_header=False,
    )
    if https is not None:
        context = https.rotating_server_context(alpn=("http/1.1",))
        uvicorn_config.load()
        uvicorn_config.ssl = context  # uvicorn serves the sockets with config.ssl
    server = uvicorn.Server(uvicorn_config)
    # uvicorn re-raises the signal it stopped on once it is done; a no-op handler makes
    # that a clean exit (status 0) instead of dying by the signal.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    asyncio.run(server.serve(sockets=[sock]))
    if not server.started:
        sys.exit(1)
