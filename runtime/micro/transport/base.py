"""The transport boundary: what the server dispatcher and the client need from HTTP/2.

Nothing outside :mod:`micro.transport` imports a gRPC library; the dispatcher
(:mod:`micro.server`), the service, the embedded broker and the client (:mod:`micro.client`)
speak only these Protocols. A :class:`Transport` builds both sides; ``Service`` and
``Client`` take one (``transport=``, default from ``MICRO_TRANSPORT``).

Server side: a :class:`ServerTransport` is built from the routes (gRPC path ->
:class:`~micro.spec.Method`) and a :data:`Dispatch` coroutine; it calls
``dispatch(call)`` with one :class:`InboundCall` per incoming RPC.

Client side: a :class:`ClientTransport` opens one :class:`OutboundCall` per RPC to a
node address. Every error an OutboundCall raises is a :class:`micro.errors.Error`
(connection failures and lost connections are 503/``UNAVAILABLE``, deadline
expiry 408/``DEADLINE_EXCEEDED``, undecodable responses 500/``INTERNAL``), except a
request the codec cannot encode: that :class:`micro.codec.EncodeError` (a ``TypeError``)
is the caller's mistake and propagates unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from micro.errors import Error
from micro.metadata import MetadataView, Pairs
from micro.spec import AnyMethod
from micro.tls import TLS
from micro.transport.options import TransportOptions

__all__ = [
    "ClientTransport",
    "Dispatch",
    "InboundCall",
    "OutboundCall",
    "ServerTransport",
    "Transport",
]


class InboundCall(Protocol):
    """One incoming RPC (server side)."""

    @property
    def method(self) -> AnyMethod: ...

    @property
    def metadata(self) -> MetadataView: ...

    @property
    def deadline(self) -> float | None:
        """Absolute ``time.monotonic()`` deadline sent by the client, or ``None``."""
        ...

    @property
    def peer(self) -> str: ...

    async def recv(self) -> Any | None:
        """The next request message, ``None`` once the client half-closed.

        Raises :class:`micro.codec.DecodeError` on undecodable bytes."""
        ...

    def set_compression(self, encoding: str) -> None:
        """Compress the replies with ``encoding`` (before :meth:`send_header`), where the
        client accepts it."""
        ...

    async def send_header(self, metadata: Pairs) -> None:
        """Send response headers now (implicitly empty before the first :meth:`send`)."""
        ...

    async def send(self, message: Any) -> None: ...

    async def finish(self, error: Error | None, trailers: Pairs) -> None:
        """End the call: OK if ``error`` is None, else the error's status + ``micro-error``."""
        ...


Dispatch = Callable[[InboundCall], Awaitable[None]]


class ServerTransport(Protocol):
    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Bind and serve; returns the actual (host, port) (``port=0``: a free one)."""
        ...

    async def close(self) -> None:
        """Stop listening, drop connections, cancel remaining calls and wait for them."""
        ...


class OutboundCall(Protocol):
    """One outgoing RPC (client side). Use :meth:`start` first, :meth:`aclose` always."""

    @property
    def messages_received(self) -> int: ...

    @property
    def committed(self) -> bool:
        """Whether the server may have handled the request, so that running it again could
        run it twice: a response message arrived, or the call was cut off after its
        request went out. False for a call the server provably refused or never got
        (connection refused, REFUSED_STREAM), and for a status the server answered with:
        whether a handler ran then is for the client to tell (:mod:`micro.client`)."""
        ...

    @property
    def headers(self) -> MetadataView | None:
        """Response headers, once received."""
        ...

    @property
    def trailers(self) -> MetadataView | None:
        """Response trailers, once received."""
        ...

    async def start(self) -> None:
        """Connect and send the request headers."""
        ...

    async def unary(self, message: Any) -> Any | None:
        """A whole unary exchange: start, send ``message`` and half-close, receive the
        reply and the final status, release the call. ``None`` if no reply came."""
        ...

    async def send(self, message: Any, *, end: bool = False) -> None: ...

    async def end(self) -> None:
        """Half-close the request stream."""
        ...

    async def recv(self) -> Any | None:
        """Next response message; ``None`` at the end (after an OK status was received)."""
        ...

    async def finish(self) -> None:
        """Wait for the final status; raise :class:`~micro.errors.Error` if not OK."""
        ...

    async def aclose(self) -> None:
        """Release the call; cancels it (RST_STREAM) if it has not completed."""
        ...


class ClientTransport(Protocol):
    def open(
        self,
        address: str,
        method: AnyMethod,
        metadata: Pairs,
        deadline: float | None,
        *,
        compression: str | None = None,
    ) -> OutboundCall:
        """Prepare a call to ``address`` (``host:port``); nothing is sent yet.
        ``compression`` (``"gzip"`` / ``"identity"``) overrides the client's default."""
        ...

    async def close(self) -> None: ...


class Transport(Protocol):
    """One implementation of gRPC on the wire: it builds servers and clients."""

    @property
    def name(self) -> str: ...

    def server(
        self,
        routes: Mapping[str, AnyMethod],
        dispatch: Dispatch,
        *,
        tls: TLS | None = None,
        options: TransportOptions = ...,
    ) -> ServerTransport:
        """A server for ``routes`` (gRPC path -> Method) calling ``dispatch`` per RPC;
        serving TLS with ``tls`` (:class:`~micro._config.ConfigError` if it cannot), with
        the limits, compression and connection management of ``options``."""
        ...

    def client(self, *, tls: TLS | None = None, options: TransportOptions = ...) -> ClientTransport:
        """A client side, holding its own connections until ``close()``; every connection
        is TLS with ``tls``, verified as it says (never plaintext), and follows
        ``options``."""
        ...
