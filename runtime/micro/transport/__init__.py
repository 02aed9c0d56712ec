"""The transport boundary (:mod:`micro.transport.base`) and its implementations.

``MICRO_TRANSPORT`` picks the default (:func:`from_env`); only this package imports a gRPC
library.
"""

from collections.abc import Mapping

from micro._backends import Backends
from micro.transport.base import (
    ClientTransport,
    Dispatch,
    InboundCall,
    OutboundCall,
    ServerTransport,
    Transport,
)
from micro.transport.grpclib_impl import (
    GrpclibClientTransport,
    GrpclibServerTransport,
    GrpclibTransport,
)

__all__ = [
    "DEFAULT_BACKEND",
    "ClientTransport",
    "Dispatch",
    "GrpclibClientTransport",
    "GrpclibServerTransport",
    "GrpclibTransport",
    "InboundCall",
    "OutboundCall",
    "ServerTransport",
    "Transport",
    "backends",
    "from_env",
]

DEFAULT_BACKEND = "grpclib"

_BACKENDS: Backends[Transport] = Backends(
    "MICRO_TRANSPORT", DEFAULT_BACKEND, {"grpclib": lambda environ: GrpclibTransport()}
)


def backends() -> list[str]:
    """Names accepted in ``MICRO_TRANSPORT``."""
    return _BACKENDS.names()


def from_env(environ: Mapping[str, str] | None = None) -> Transport:
    """The transport ``MICRO_TRANSPORT`` names (default ``grpclib``)."""
    return _BACKENDS.from_env(environ) if environ is not None else _BACKENDS.from_env()
