"""Limits, compression and connection management of a transport: :class:`TransportOptions`.

One frozen dataclass for both sides of every transport. ``Service(transport_options=...)``
and ``Client(transport_options=...)`` take one (or ``Transport.server(..., options=)`` /
``Transport.client(options=)``); the defaults are grpcio's where grpcio has one, and
bounded where grpcio's is not (see docs/hardening.md).

On grpcio each field becomes the channel argument named beside it; on grpclib the
transport implements it in code.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass

from micro.errors import Error
from micro.status import Status

__all__ = [
    "DEFAULT",
    "ENCODINGS",
    "MiB",
    "TransportOptions",
    "compress",
    "decompress",
    "receive_too_large",
    "send_too_large",
]

MiB = 1024 * 1024

#: the message encodings both transports speak (gRPC compression spec), in preference order
ENCODINGS = ("gzip", "identity")


@dataclass(frozen=True)
class TransportOptions:
    """What a server or a client transport accepts and keeps open.

    * ``max_receive_message_length`` (``grpc.max_receive_message_length``): the largest
      message received, checked against its length prefix before it is buffered; a larger
      one ends the call with ``RESOURCE_EXHAUSTED``. Default 4 MiB; ``None``: unlimited.
    * ``max_send_message_length`` (``grpc.max_send_message_length``): the largest message
      sent (``RESOURCE_EXHAUSTED`` on the sending side). Default ``None``: unlimited.
    * ``compression``: ``"identity"`` (default) or ``"gzip"``: how this side compresses
      the messages it sends (a client's calls, a server's replies to clients that accept
      it). Either side always accepts both.
    * ``keepalive_time`` / ``keepalive_timeout`` (``grpc.keepalive_time_ms`` /
      ``grpc.keepalive_timeout_ms``), seconds: ping the peer after ``keepalive_time``
      without activity and close the connection when no answer comes within
      ``keepalive_timeout``. Default: servers ping every 2 h (grpcio's), clients never.
    * ``idle_timeout`` (server: ``grpc.max_connection_idle_ms``, client:
      ``grpc.client_idle_timeout_ms``), seconds: a connection without calls for this
      long is closed (server: GOAWAY then close). Default 300 s on servers, 30 min on
      clients.
    * ``handshake_timeout`` (``grpc.server_handshake_timeout_ms``), seconds: a server
      closes a connection that has not completed the HTTP/2 preface within it (20 s).
    * ``max_concurrent_streams`` (``grpc.max_concurrent_streams``): calls a client may
      run at once on one connection to a server (HTTP/2 SETTINGS). Default 1000.
    * ``max_resets_per_connection``: how many streams a client may reset on one
      connection (the HTTP/2 "rapid reset" attack) before a grpclib server sends
      GOAWAY and closes it: per ``reset_window`` seconds. grpcio bounds it on its own.
    """

    max_receive_message_length: int | None = 4 * MiB
    max_send_message_length: int | None = None
    compression: str = "identity"
    keepalive_time: float | None = None
    keepalive_timeout: float = 20.0
    idle_timeout: float | None = None
    handshake_timeout: float = 20.0
    max_concurrent_streams: int = 1000
    max_resets_per_connection: int = 1000
    reset_window: float = 10.0

    def __post_init__(self) -> None:
        if self.compression not in ENCODINGS:
            raise ValueError(
                f"compression must be one of {', '.join(ENCODINGS)}, not {self.compression!r}"
            )
        for name in ("max_receive_message_length", "max_send_message_length"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0 or None")
        for name in ("keepalive_time", "idle_timeout"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be > 0 or None")
        for name in ("keepalive_timeout", "handshake_timeout", "reset_window"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
        for name in ("max_concurrent_streams", "max_resets_per_connection"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")

    def server_keepalive_time(self) -> float:
        return 7200.0 if self.keepalive_time is None else self.keepalive_time

    def server_idle_timeout(self) -> float:
        return 300.0 if self.idle_timeout is None else self.idle_timeout

    def client_idle_timeout(self) -> float:
        return 1800.0 if self.idle_timeout is None else self.idle_timeout


DEFAULT = TransportOptions()

#: seconds a closing server transport gives the calls it took last to answer (a draining
#: service's refusals, telling clients to fail over) before it cuts off what is left
CLOSE_SETTLE = 0.25


def receive_too_large(size: int, limit: int, who: str = "") -> Error:
    """The error for a received message of ``size`` bytes over ``limit`` (``who``: the
    error's id, the client's own on a client)."""
    return Error(
        who,
        429,
        f"received message larger than max ({size} vs. {limit})",
        grpc_status=Status.RESOURCE_EXHAUSTED,
    )


def send_too_large(size: int, limit: int, who: str = "") -> Error:
    return Error(
        who,
        429,
        f"sent message larger than max ({size} vs. {limit})",
        grpc_status=Status.RESOURCE_EXHAUSTED,
    )


def compress(data: bytes, encoding: str) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0) if encoding == "gzip" else data


class DecompressError(ValueError):
    """Compressed bytes that do not decompress, or that grow past the receive limit."""


def decompress(data: bytes, encoding: str, limit: int | None) -> bytes:
    """``data`` (a message compressed with ``encoding``), at most ``limit`` bytes once
    decompressed: a gzip bomb is refused as it grows, not after."""
    if encoding != "gzip":
        raise DecompressError(f"message compressed with unsupported encoding {encoding!r}")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, (limit + 1) if limit is not None else 0)
    except zlib.error as exc:
        raise DecompressError(f"invalid gzip message: {exc}") from None
    if limit is not None and len(out) > limit:
        raise DecompressError(f"decompressed message larger than max (> {limit})")
    if not inflater.eof:
        raise DecompressError("truncated gzip message")
    return out
