"""The transport boundary (:mod:`micro.transport.base`) and its implementations.

* ``grpcio`` (:class:`GrpcioTransport`, the default): grpcio's ``grpc.aio``, the gRPC team's
  C-core: fast unary calls, TLS, compression, keepalive, limits, channelz.
* ``grpclib`` (:class:`~micro.transport.grpclib_impl.GrpclibTransport`): pure-Python HTTP/2,
  about 3x faster for streaming here; ``pip install 'micro-runtime[grpclib]'``.

``MICRO_TRANSPORT`` picks the default (:func:`from_env`); ``Service``, ``Client`` and the
embedded broker also take one in code (``transport=``). Only this package imports a gRPC
library.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from micro._backends import Backends
from micro.tls import TLS
from micro.transport.base import (
    ClientTransport,
    Dispatch,
    InboundCall,
    OutboundCall,
    ServerTransport,
    Transport,
)
from micro.transport.grpcio_impl import GrpcioTransport
from micro.transport.options import TransportOptions

if TYPE_CHECKING:
    from micro.transport.grpclib_impl import GrpclibTransport

__all__ = [
    "DEFAULT_BACKEND",
    "ClientTransport",
    "Dispatch",
    "GrpcioTransport",
    "GrpclibTransport",
    "InboundCall",
    "OutboundCall",
    "ServerTransport",
    "Transport",
    "TransportOptions",
    "backends",
    "from_env",
    "wire_settings",
]

DEFAULT_BACKEND = "grpcio"


def _grpclib(environ: Mapping[str, str]) -> Transport:
    return grpclib_transport()


def grpclib_transport() -> GrpclibTransport:
    """A :class:`GrpclibTransport`, with a clear error where grpclib is not installed."""
    try:
        from micro.transport.grpclib_impl import GrpclibTransport
    except ImportError as exc:
        raise ImportError(
            f"the grpclib transport needs grpclib ({exc}): pip install 'micro-runtime[grpclib]'"
        ) from None
    return GrpclibTransport()


_BACKENDS: Backends[Transport] = Backends(
    "MICRO_TRANSPORT",
    DEFAULT_BACKEND,
    {"grpcio": lambda environ: GrpcioTransport(), "grpclib": _grpclib},
)


def wire_settings(tls: TLS | None, options: TransportOptions | None) -> dict[str, Any]:
    """The keywords of ``Transport.server()`` / ``client()`` for these settings: only those
    set, so that a transport written before a keyword existed still serves without it."""
    settings: dict[str, Any] = {}
    if tls is not None:
        settings["tls"] = tls
    if options is not None:
        settings["options"] = options
    return settings


def backends() -> list[str]:
    """Names accepted in ``MICRO_TRANSPORT``."""
    return _BACKENDS.names()


def from_env(environ: Mapping[str, str] = os.environ) -> Transport:
    """The transport ``MICRO_TRANSPORT`` names (default ``grpcio``)."""
    return _BACKENDS.from_env(environ)


def __getattr__(name: str) -> Any:
    if name == "GrpclibTransport":  # imported on use: grpclib is an extra
        return type(grpclib_transport())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
