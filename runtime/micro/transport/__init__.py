"""Transport boundary (:mod:`micro.transport.base`) and its grpclib implementation."""

from micro.transport.base import (
    ClientTransport,
    Dispatch,
    InboundCall,
    OutboundCall,
    ServerTransport,
)
from micro.transport.grpclib_impl import (
    GrpclibClientTransport,
    GrpclibServerTransport,
    format_address,
    parse_address,
)

__all__ = [
    "ClientTransport",
    "Dispatch",
    "GrpclibClientTransport",
    "GrpclibServerTransport",
    "InboundCall",
    "OutboundCall",
    "ServerTransport",
    "format_address",
    "parse_address",
]
