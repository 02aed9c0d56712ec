"""Static description of services and methods, as emitted by the code generator.

These are plain frozen dataclasses; the runtime never inspects protobuf descriptors.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["AnyMethod", "HttpRule", "Idempotency", "Kind", "Method", "ProtoFile", "ServiceSpec"]


class Kind(enum.Enum):
    """The four gRPC call shapes."""

    UNARY = "unary"
    SERVER_STREAM = "server_stream"
    CLIENT_STREAM = "client_stream"
    BIDI_STREAM = "bidi_stream"

    @classmethod
    def of(cls, client_streaming: bool, server_streaming: bool) -> Kind:
        """The kind of an rpc from its descriptor's two streaming flags."""
        return _KINDS[(client_streaming, server_streaming)]

    @property
    def client_streaming(self) -> bool:
        return self in (Kind.CLIENT_STREAM, Kind.BIDI_STREAM)

    @property
    def server_streaming(self) -> bool:
        return self in (Kind.SERVER_STREAM, Kind.BIDI_STREAM)


_KINDS = {
    (False, False): Kind.UNARY,
    (False, True): Kind.SERVER_STREAM,
    (True, False): Kind.CLIENT_STREAM,
    (True, True): Kind.BIDI_STREAM,
}


class Idempotency(enum.Enum):
    """An rpc's ``option idempotency_level`` (google.protobuf.MethodOptions).

    A method that is ``IDEMPOTENT`` or has ``NO_SIDE_EFFECTS`` may run twice without
    harm, so the client retries it on another node even after its request went out."""

    UNKNOWN = "unknown"
    NO_SIDE_EFFECTS = "no_side_effects"
    IDEMPOTENT = "idempotent"


@dataclass(frozen=True)
class HttpRule:
    """One ``google.api.http`` binding of a method."""

    method: str
    path: str
    body: str = ""
    response_body: str = ""
    custom: bool = False


Req = TypeVar("Req")
Resp = TypeVar("Resp")


@dataclass(frozen=True)
class Method(Generic[Req, Resp]):
    """One rpc: ``name`` is ``"Greeter.SayHello"``, ``path`` the gRPC path.

    Generic in its request and response types, so calls through it are typed end to end.
    """

    name: str
    path: str
    kind: Kind
    request_type: type[Req]
    response_type: type[Resp]
    handler_attr: str
    http_rules: tuple[HttpRule, ...] = ()
    deprecated: bool = False
    doc: str = ""
    #: full proto names of the message types, e.g. ``"helloworld.v1.HelloRequest"``
    request_name: str = ""
    response_name: str = ""
    idempotency: Idempotency = Idempotency.UNKNOWN

    @property
    def idempotent(self) -> bool:
        """Whether running the method twice is harmless (``IDEMPOTENT`` or
        ``NO_SIDE_EFFECTS``): the client may then retry it after it was sent."""
        return self.idempotency is not Idempotency.UNKNOWN


@dataclass(frozen=True)
class ProtoFile:
    """A .proto file as compiled: what a server needs to answer gRPC reflection."""

    name: str  # "helloworld/v1/helloworld.proto"
    descriptor: bytes  # serialized google.protobuf.FileDescriptorProto
    dependencies: tuple[str, ...] = ()
    symbols: tuple[str, ...] = ()  # fully qualified names it defines

    @staticmethod
    def collect(*groups: tuple[ProtoFile, ...]) -> tuple[ProtoFile, ...]:
        """The files of every group, in order, each name once.

        A generated module embeds its own .proto and collects the rest from the modules
        generated for its imports.
        """
        unique: dict[str, ProtoFile] = {}
        for group in groups:
            for file in group:
                unique.setdefault(file.name, file)
        return tuple(unique.values())


#: A method whose message types do not matter where it is used.
AnyMethod = Method[Any, Any]


@dataclass(frozen=True)
class ServiceSpec:
    """One proto service: ``name`` is the full proto name (``"helloworld.v1.Greeter"``)."""

    name: str
    methods: tuple[AnyMethod, ...]
    deprecated: bool = False
    doc: str = ""
    #: the service's .proto first, then its transitive dependencies (for reflection)
    files: tuple[ProtoFile, ...] = ()
