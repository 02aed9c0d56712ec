"""grpclib implementation of the transport boundary (HTTP/2, plain TCP)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import weakref
from collections.abc import Mapping
from typing import Any

import h2.errors
import h2.exceptions
from grpclib.client import Channel
from grpclib.client import Stream as ClientStream
from grpclib.const import Cardinality, Handler
from grpclib.const import Status as GrpclibStatus
from grpclib.encoding.base import CodecBase
from grpclib.exceptions import GRPCError, ProtocolError, StreamTerminatedError
from grpclib.metadata import decode_grpc_message, decode_metadata
from grpclib.protocol import H2Protocol
from grpclib.server import Server
from grpclib.server import Stream as ServerStream

from micro import codec
from micro.address import format_address, parse_address
from micro.codec import DecodeError
from micro.errors import ERROR_METADATA_KEY, Error, from_grpc
from micro.metadata import MetadataView, Pairs
from micro.spec import AnyMethod, Kind
from micro.status import Status
from micro.transport import _local as local
from micro.transport.base import Dispatch

__all__ = ["GrpclibClientTransport", "GrpclibServerTransport", "GrpclibTransport"]

log = logging.getLogger(__name__)

_CARDINALITY = {
    Kind.UNARY: Cardinality.UNARY_UNARY,
    Kind.SERVER_STREAM: Cardinality.UNARY_STREAM,
    Kind.CLIENT_STREAM: Cardinality.STREAM_UNARY,
    Kind.BIDI_STREAM: Cardinality.STREAM_STREAM,
}


class _Codec(CodecBase):
    """grpclib's codec interface (content subtype ``proto``) over :mod:`micro.codec`."""

    __content_subtype__ = "proto"

    def encode(self, message: Any, message_type: Any) -> bytes:
        return codec.encode(message, message_type)

    def decode(self, data: bytes, message_type: Any) -> Any:
        return codec.decode(data, message_type)


# -- server ---------------------------------------------------------------------------


class _InboundCall:
    """An incoming RPC on a grpclib server stream."""

    def __init__(self, stream: ServerStream[Any, Any], method: AnyMethod) -> None:
        self._stream = stream
        self._method = method
        self._header_sent = False
        metadata = stream.metadata
        self._metadata = MetadataView(metadata.items() if metadata is not None else ())
        deadline = stream.deadline
        self._deadline = None if deadline is None else time.monotonic() + deadline.time_remaining()
        self._peer: str | None = None  # looked up on first use: a syscall most calls skip

    @property
    def method(self) -> AnyMethod:
        return self._method

    @property
    def metadata(self) -> MetadataView:
        return self._metadata

    @property
    def deadline(self) -> float | None:
        return self._deadline

    @property
    def peer(self) -> str:
        if self._peer is None:
            try:
                addr = self._stream.peer.addr()
            except Exception:  # pragma: no cover - transport without peer info
                addr = None
            self._peer = format_address(str(addr[0]), int(addr[1])) if addr else ""
        return self._peer

    async def recv(self) -> Any | None:
        return await self._stream.recv_message()

    async def send_header(self, metadata: Pairs) -> None:
        if self._header_sent:
            return
        self._header_sent = True
        await self._stream.send_initial_metadata(metadata=metadata)

    async def send(self, message: Any) -> None:
        if not self._header_sent:
            await self.send_header([])
        await self._stream.send_message(message)

    async def finish(self, error: Error | None, trailers: Pairs) -> None:
        try:
            if error is None:
                await self._stream.send_trailing_metadata(metadata=trailers)
            else:
                await self._stream.send_trailing_metadata(
                    status=GrpclibStatus(error.grpc_status.value),
                    status_message=error.detail,
                    metadata=[*trailers, (ERROR_METADATA_KEY, error.to_json())],
                )
        except (h2.exceptions.StreamClosedError, StreamTerminatedError):
            log.debug("client went away before the status of %s was sent", self._method.path)


class _Server(Server):
    """grpclib Server that remembers its connections so close() can drop them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._protocols: weakref.WeakSet[H2Protocol] = weakref.WeakSet()

    def _protocol_factory(self) -> H2Protocol:
        protocol: H2Protocol = super()._protocol_factory()
        self._protocols.add(protocol)
        return protocol

    def drop_connections(self) -> None:
        for protocol in list(self._protocols):
            connection = getattr(protocol, "connection", None)
            if connection is not None:
                connection.close()


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket created with ``proto=IPPROTO_TCP``: asyncio enables
    TCP_NODELAY only on sockets whose proto says TCP (accepted sockets inherit it), and
    without it every unary reply waits ~40 ms for Nagle + delayed ACK."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        if os.name == "posix":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen()
    except BaseException:
        sock.close()
        raise
    return sock


class GrpclibServerTransport:
    """Serves ``routes`` (gRPC path -> Method) over grpclib, calling ``dispatch`` per RPC."""

    def __init__(self, routes: Mapping[str, AnyMethod], dispatch: Dispatch) -> None:
        self._routes = dict(routes)
        self._dispatch = dispatch
        self._server: _Server | None = None

    def __mapping__(self) -> dict[str, Handler]:
        return {
            path: Handler(
                self._make_handler(method),
                _CARDINALITY[method.kind],
                method.request_type,
                method.response_type,
            )
            for path, method in self._routes.items()
        }

    def _make_handler(self, method: AnyMethod) -> Any:
        dispatch = self._dispatch

        async def handle(stream: ServerStream[Any, Any]) -> None:
            await dispatch(_InboundCall(stream, method))

        return handle

    async def start(self, host: str, port: int) -> tuple[str, int]:
        if self._server is not None:
            raise RuntimeError("transport already started")
        sock = _listen(host, port)
        try:
            server = _Server([self], codec=_Codec())
            await server.start(sock=sock)
        except BaseException:
            sock.close()
            raise
        self._server = server
        bound = sock.getsockname()
        return str(bound[0]), int(bound[1])

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        server.drop_connections()
        await server.wait_closed()


# -- client ---------------------------------------------------------------------------


_FAILURES = (
    GRPCError,
    TimeoutError,
    StreamTerminatedError,
    OSError,
    h2.exceptions.StreamClosedError,
    DecodeError,
    ProtocolError,
    h2.exceptions.ProtocolError,
)  # not EncodeError: the caller's own mistake propagates as it is (a TypeError)


_REFUSED_STREAM = f"error_code: {h2.errors.ErrorCodes.REFUSED_STREAM:d}"


def _refused(exc: StreamTerminatedError) -> bool:
    """Whether grpclib ended the stream because the server reset it with REFUSED_STREAM."""
    text = str(exc)
    return text.endswith(_REFUSED_STREAM) or text.endswith("REFUSED_STREAM")


class _OutboundCall:
    """An outgoing RPC on a grpclib client stream; raises only micro Errors."""

    def __init__(
        self,
        channel: Channel,
        address: str,
        method: AnyMethod,
        metadata: Pairs,
        deadline: float | None,
    ) -> None:
        self._address = address
        self._method = method
        self._deadline = deadline
        timeout = None if deadline is None else deadline - time.monotonic()
        self._stream: ClientStream[Any, Any] = channel.request(
            method.path,
            _CARDINALITY[method.kind],
            method.request_type,
            method.response_type,
            timeout=timeout,
            metadata=metadata,
        )
        self._entered = False
        self._finished = False
        self._received = 0
        self._sent = False  # the request headers went out: a handler may run
        self._lost = False  # cut off after that, without a status

    @property
    def messages_received(self) -> int:
        return self._received

    @property
    def committed(self) -> bool:
        return self._received > 0 or self._lost

    @property
    def headers(self) -> MetadataView | None:
        md = self._stream.initial_metadata
        return None if md is None else MetadataView(md.items())

    @property
    def trailers(self) -> MetadataView | None:
        md = self._stream.trailing_metadata
        return None if md is None else MetadataView(md.items())

    def _error(self, exc: Exception) -> Error:
        """``exc``, raised by grpclib, h2 or the codec, as the micro Error it means."""
        if isinstance(exc, GRPCError):
            self._finished = True
            error = from_grpc(Status(exc.status.value), exc.message, self._stream.trailing_metadata)
            if error.grpc_status is Status.DEADLINE_EXCEEDED and not (error.id or error.detail):
                # A bare status, as grpclib servers send when their deadline timer beats
                # ours: the same error as ours, whichever fired first.
                return local.deadline_exceeded(self._method)
            return error
        if isinstance(exc, TimeoutError):  # asyncio.TimeoutError: grpclib's deadline timer
            return local.deadline_exceeded(self._method)
        if isinstance(exc, StreamTerminatedError):
            status_error = self._status_after_reset()
            if status_error is not None:
                self._finished = True
                return status_error
            # After the request went out the server may have handled it: the call is
            # committed (retried only if idempotent), and the message says so. Unless
            # the server refused the stream (RST_STREAM REFUSED_STREAM): it processed
            # nothing (RFC 9113, 8.7), so the call may go elsewhere.
            self._lost = self._sent and not _refused(exc)
            return local.connection_lost(self._method, self._address, self._received, exc)
        if isinstance(exc, (OSError, h2.exceptions.StreamClosedError)):
            return local.unreachable(self._method, self._address, exc)
        if isinstance(exc, DecodeError):
            return local.invalid_response(self._method, self._address, exc)
        return local.failed(self._method, exc)

    def _status_after_reset(self) -> Error | None:
        """The status the server sent before resetting the stream, if it sent one."""
        h2_stream = getattr(self._stream, "_stream", None)
        trailers = getattr(h2_stream, "trailers", None)
        if trailers is None:
            trailers = getattr(h2_stream, "headers", None)
        if not trailers:
            return None
        raw = dict(trailers)
        try:
            status = Status(int(raw["grpc-status"]))
        except (KeyError, ValueError):
            return None
        if status is Status.OK:
            return None
        message = raw.get("grpc-message")
        return from_grpc(
            status,
            None if message is None else decode_grpc_message(message),
            decode_metadata(trailers),
        )

    # Each call below maps what the libraries raise to micro Errors (_FAILURES); a
    # context manager per call cost more than the rest of this class.

    async def start(self) -> None:
        try:
            await self._start()
        except _FAILURES as exc:
            raise self._error(exc) from None

    async def _start(self) -> None:
        await self._stream.__aenter__()
        self._entered = True
        try:
            await self._stream.send_request()
            self._sent = True
        except AttributeError:
            # grpclib race: the cached connection was lost a moment ago and has no
            # transport any more; nothing was sent, so it is UNAVAILABLE (retryable)
            raise ConnectionResetError("connection closed") from None

    async def unary(self, message: Any) -> Any | None:
        # One coroutine for the whole exchange: unary calls are the hot path.
        try:
            await self._start()
            await self._stream.send_message(message, end=True)
            reply = await self._stream.recv_message()
            if reply is not None:
                self._received += 1
            await self._finish()
        except _FAILURES as exc:
            raise self._error(exc) from None
        self._entered = False
        await self._stream.__aexit__(None, None, None)  # completed: releases the stream
        return reply

    async def send(self, message: Any, *, end: bool = False) -> None:
        try:
            await self._stream.send_message(message, end=end)
        except _FAILURES as exc:
            raise self._error(exc) from None

    async def end(self) -> None:
        if self._finished:
            return
        try:
            await self._stream.end()
        except _FAILURES as exc:
            raise self._error(exc) from None

    async def recv(self) -> Any | None:
        try:
            message = await self._stream.recv_message()
            if message is None:
                await self._finish()
                return None
        except _FAILURES as exc:
            raise self._error(exc) from None
        self._received += 1
        return message

    async def _finish(self) -> None:
        if self._finished:
            return
        if self._stream.initial_metadata is None:
            await self._stream.recv_initial_metadata()
        if not self._finished:
            # The server may end the call before the client half-closed (e.g. an error
            # status mid bidi-stream). HTTP/2 allows reading its trailers then, but
            # grpclib 0.4 refuses to until the outgoing side ended: lift that guard.
            self._stream._end_done = True
            await self._stream.recv_trailing_metadata()
        self._finished = True

    async def finish(self) -> None:
        try:
            await self._finish()
        except _FAILURES as exc:
            raise self._error(exc) from None

    async def aclose(self) -> None:
        if not self._entered:
            return
        self._entered = False
        # Exiting as "cancelled" never waits for the peer: it resets the HTTP/2 stream
        # if still open (cancelling the call server-side) and releases it.
        cancelled = asyncio.CancelledError()
        try:
            await self._stream.__aexit__(asyncio.CancelledError, cancelled, None)
        except asyncio.CancelledError:
            raise
        except Exception:  # pragma: no cover - best effort cleanup
            log.debug("error while closing call %s", self._method.path, exc_info=True)


class GrpclibClientTransport:
    """One grpclib :class:`~grpclib.client.Channel` (one HTTP/2 connection) per address."""

    def __init__(self) -> None:
        self._channels: dict[str, Channel] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._codec = _Codec()

    def _channel(self, address: str) -> Channel:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # channels are bound to the loop that created them (e.g. a new asyncio.run)
            self._discard()
            self._loop = loop
        channel = self._channels.get(address)
        if channel is None:
            host, port = parse_address(address)
            channel = Channel(host, port, codec=self._codec)
            self._channels[address] = channel
        return channel

    def _discard(self) -> None:
        channels, self._channels = self._channels, {}
        for channel in channels.values():
            try:
                channel.close()
            except Exception:  # pragma: no cover - loop already closed
                log.debug("error closing channel", exc_info=True)

    def open(
        self, address: str, method: AnyMethod, metadata: Pairs, deadline: float | None
    ) -> _OutboundCall:
        return _OutboundCall(self._channel(address), address, method, metadata, deadline)

    async def close(self) -> None:
        self._discard()


class GrpclibTransport:
    """gRPC over grpclib (pure Python HTTP/2 on plain TCP): ``MICRO_TRANSPORT=grpclib``."""

    name = "grpclib"

    def server(self, routes: Mapping[str, AnyMethod], dispatch: Dispatch) -> GrpclibServerTransport:
        return GrpclibServerTransport(routes, dispatch)

    def client(self) -> GrpclibClientTransport:
        return GrpclibClientTransport()

    def __repr__(self) -> str:
        return "GrpclibTransport()"
