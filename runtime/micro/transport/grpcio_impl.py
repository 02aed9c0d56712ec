"""grpcio (``grpc.aio``, the gRPC team's C-core) implementation of the transport boundary.

Messages cross grpcio as bytes: grpcio's serializer hooks are left empty and
:mod:`micro.codec` encodes and decodes here, so an undecodable request is this runtime's
``INVALID_ARGUMENT`` (not grpcio's generic deserialization failure) and both message
backends work the same way. Every method is registered with its own cardinality, so
unary calls take grpcio's fast unary path.

Server: one ``grpc.aio.server`` per :class:`GrpcioServerTransport`, unknown methods
answered ``UNIMPLEMENTED`` by grpcio itself. Client: one ``grpc.aio`` channel (one
HTTP/2 connection, reconnecting on its own) per node address and event loop.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote

import grpc
import grpc.aio

from micro import codec
from micro._config import ConfigError
from micro.address import format_address, parse_address
from micro.codec import DecodeError
from micro.errors import ERROR_METADATA_KEY, Error, Origin, from_grpc
from micro.metadata import MetadataView, Pairs
from micro.spec import AnyMethod, Kind
from micro.status import Status
from micro.tls import TLS, Files
from micro.transport import _local as local
from micro.transport.base import Dispatch
from micro.transport.options import CLOSE_SETTLE, DEFAULT, ENCODINGS, TransportOptions

__all__ = ["GrpcioClientTransport", "GrpcioServerTransport", "GrpcioTransport"]

log = logging.getLogger(__name__)

#: options (grpcio's ``grpc.*`` channel arguments) a server gets unless given others
SERVER_OPTIONS: tuple[tuple[str, Any], ...] = (
    # grpcio sets SO_REUSEPORT by default, so a second server on a taken port would
    # silently share it: off unless asked for (GrpcioTransport(reuse_port=True))
    ("grpc.so_reuseport", 0),
)

try:  # see _OutboundCall._write
    from grpc._cython.cygrpc import InternalError as _InternalError
except ImportError:  # pragma: no cover - a grpcio without it
    _InternalError = None
#: how long a failed write waits for the status the server sent
_STATUS_WAIT = 5.0

_STATUS_CODES = {status: grpc.StatusCode[status.name] for status in Status}
_STATUSES = {code: Status(code.value[0]) for code in grpc.StatusCode}
_NO_REQUEST = object()


def _peer(raw: str) -> str:
    """grpcio's ``ipv4:127.0.0.1:5000`` / ``ipv6:%5B::1%5D:5000`` as ``host:port``."""
    scheme, _, rest = raw.partition(":")
    if scheme not in ("ipv4", "ipv6") or not rest:
        return ""
    host, _, port = unquote(rest).rpartition(":")
    return format_address(host.strip("[]"), int(port)) if port.isdigit() else ""


# -- server ---------------------------------------------------------------------------


class _InboundCall:
    """One incoming RPC on a grpcio servicer context."""

    __slots__ = (
        "_compressed",
        "_context",
        "_deadline",
        "_header_sent",
        "_metadata",
        "_method",
        "_peer",
        "_request",
        "error",
        "reply",
        "trailers",
    )

    def __init__(self, context: Any, method: AnyMethod, request: Any) -> None:
        self._context = context
        self._method = method
        self._request = request  # raw bytes for unary-request kinds, else _NO_REQUEST
        self._header_sent = False
        self._compressed = False
        self._metadata: MetadataView | None = None
        remaining = context.time_remaining()
        self._deadline = None if remaining is None else time.monotonic() + remaining
        self._peer: str | None = None
        self.reply: bytes | None = None
        self.error: Error | None = None
        self.trailers: Pairs = []

    @property
    def method(self) -> AnyMethod:
        return self._method

    @property
    def metadata(self) -> MetadataView:
        if self._metadata is None:
            self._metadata = MetadataView(tuple(m) for m in self._context.invocation_metadata())
        return self._metadata

    @property
    def deadline(self) -> float | None:
        return self._deadline

    @property
    def peer(self) -> str:
        if self._peer is None:
            self._peer = _peer(self._context.peer())
        return self._peer

    async def recv(self) -> Any | None:
        if self._request is not _NO_REQUEST:
            data, self._request = self._request, None
            return None if data is None else codec.decode(data, self._method.request_type)
        data = await self._context.read()
        if data is grpc.aio.EOF:
            # A client that cancels also ends the requests with EOF; grpcio cancels the
            # handler's task once its core reports the cancel, most often within a turn
            # of the loop. Take those turns here, so that the handler usually sees the
            # cancel, not a half-close (docs/hardening.md, "Streams").
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            return None
        return codec.decode(data, self._method.request_type)

    def set_compression(self, encoding: str) -> None:
        self._context.set_compression(_COMPRESSION[encoding])
        self._compressed = True

    async def send_header(self, metadata: Pairs) -> None:
        if self._header_sent:
            return
        self._header_sent = True
        # else grpcio sends empty headers with the first message, without the encoding
        # a handler chose
        if metadata or self._compressed:
            await self._context.send_initial_metadata(tuple(metadata))

    async def send(self, message: Any) -> None:
        if not self._header_sent:
            self._header_sent = True
        data = codec.encode(message, self._method.response_type)
        if self._method.kind.server_streaming:
            await self._context.write(data)
        else:
            self.reply = data

    async def finish(self, error: Error | None, trailers: Pairs) -> None:
        if error is None:
            if trailers:
                self._context.set_trailing_metadata(tuple(trailers))
        else:
            self.error = error
            self.trailers = [*trailers, (ERROR_METADATA_KEY, error.to_json())]


def _handler(method: AnyMethod, dispatch: Dispatch) -> grpc.RpcMethodHandler:
    async def answer(call: _InboundCall) -> bytes | None:
        await dispatch(call)
        if call.error is not None:
            await call._context.abort(
                _STATUS_CODES[call.error.grpc_status],
                call.error.detail,
                trailing_metadata=tuple(call.trailers),
            )
        return call.reply

    async def unary_request(request: bytes, context: Any) -> bytes | None:
        return await answer(_InboundCall(context, method, request))

    async def stream_request(requests: Any, context: Any) -> bytes | None:
        return await answer(_InboundCall(context, method, _NO_REQUEST))

    factory = {
        Kind.UNARY: grpc.unary_unary_rpc_method_handler,
        Kind.SERVER_STREAM: grpc.unary_stream_rpc_method_handler,
        Kind.CLIENT_STREAM: grpc.stream_unary_rpc_method_handler,
        Kind.BIDI_STREAM: grpc.stream_stream_rpc_method_handler,
    }[method.kind]
    behaviour = stream_request if method.kind.client_streaming else unary_request
    return factory(behaviour)


class _Routes(grpc.GenericRpcHandler):  # type: ignore[misc]  # grpcio ships no types
    def __init__(self, handlers: Mapping[str, grpc.RpcMethodHandler]) -> None:
        self._handlers = dict(handlers)

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Any:
        return self._handlers.get(handler_call_details.method)


def _server_credentials(tls: TLS) -> Any:
    """Server credentials that look at the certificate files again on new connections
    (grpcio's certificate-configuration fetcher runs at each handshake; :class:`Files`
    looks at the files once a second at most), so rotated files are used without a
    restart."""
    if tls.client_auth == "request":
        raise ConfigError(
            f"{tls.names['client_auth']}=request is not available on the grpcio transport "
            "(it can require client certificates or not ask for them): use require, or "
            "MICRO_TRANSPORT=grpclib"
        )
    files = tls.server_files()
    require = tls.client_auth == "require"

    def configuration() -> Any:
        return grpc.ssl_server_certificate_configuration(
            [(files.key, files.cert)], root_certificates=files.ca if require else None
        )

    def fetch() -> Any:
        return configuration() if files.reload() else None

    return grpc.dynamic_ssl_server_credentials(
        configuration(), fetch, require_client_authentication=require
    )


_COMPRESSION = {"gzip": grpc.Compression.Gzip, "identity": grpc.Compression.NoCompression}


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def server_arguments(options: TransportOptions) -> tuple[tuple[str, Any], ...]:
    """``options`` as grpcio server channel arguments."""
    receive = options.max_receive_message_length
    send = options.max_send_message_length
    return (
        ("grpc.max_receive_message_length", -1 if receive is None else receive),
        ("grpc.max_send_message_length", -1 if send is None else send),
        ("grpc.keepalive_time_ms", _ms(options.server_keepalive_time())),
        ("grpc.keepalive_timeout_ms", _ms(options.keepalive_timeout)),
        # what the C-core waits for a PING's ACK (60 s by default, whatever the above)
        ("grpc.http2.ping_timeout_ms", _ms(options.keepalive_timeout)),
        ("grpc.max_connection_idle_ms", _ms(options.server_idle_timeout())),
        ("grpc.server_handshake_timeout_ms", _ms(options.handshake_timeout)),
        ("grpc.max_concurrent_streams", options.max_concurrent_streams),
    )


def channel_arguments(options: TransportOptions) -> tuple[tuple[str, Any], ...]:
    """``options`` as grpcio client channel arguments."""
    receive = options.max_receive_message_length
    send = options.max_send_message_length
    arguments: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", -1 if receive is None else receive),
        ("grpc.max_send_message_length", -1 if send is None else send),
        ("grpc.client_idle_timeout_ms", _ms(options.client_idle_timeout())),
        ("grpc.keepalive_timeout_ms", _ms(options.keepalive_timeout)),
        ("grpc.http2.ping_timeout_ms", _ms(options.keepalive_timeout)),
    ]
    if options.keepalive_time is not None:
        arguments.append(("grpc.keepalive_time_ms", _ms(options.keepalive_time)))
    return tuple(arguments)


def _probe(host: str, port: int, *, reuse_port: bool) -> None:
    """Bind ``host:port`` once and let go, raising the OSError grpcio would hide."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as grpcio binds
        if reuse_port:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        probe.bind((host, port))


class GrpcioServerTransport:
    """Serves ``routes`` (gRPC path -> Method) on a ``grpc.aio`` server."""

    def __init__(
        self,
        routes: Mapping[str, AnyMethod],
        dispatch: Dispatch,
        *,
        options: Sequence[tuple[str, Any]] = SERVER_OPTIONS,
        tls: TLS | None = None,
        transport_options: TransportOptions = DEFAULT,
    ) -> None:
        self._handlers = {path: _handler(method, dispatch) for path, method in routes.items()}
        # grpcio's channel arguments given explicitly win over those of transport_options
        self._options = (*server_arguments(transport_options), *options)
        self._compression = _COMPRESSION[transport_options.compression]
        self._credentials = None if tls is None else _server_credentials(tls)
        self._server: grpc.aio.Server | None = None
        self._guard: asyncio.Task[None] | None = None
        self._released = asyncio.Event()

    async def start(self, host: str, port: int) -> tuple[str, int]:
        if self._server is not None:
            raise RuntimeError("transport already started")
        if port:  # the OS's reason, where grpcio would only log one
            _probe(host, port, reuse_port=bool(dict(self._options).get("grpc.so_reuseport")))
        server = grpc.aio.server(options=self._options, compression=self._compression)
        server.add_generic_rpc_handlers((_Routes(self._handlers),))
        try:
            where = format_address(host, port)
            if self._credentials is None:
                bound = server.add_insecure_port(where)
            else:
                bound = server.add_secure_port(where, self._credentials)
        except RuntimeError as exc:  # grpcio's only word for "cannot bind"
            await server.stop(None)
            raise OSError(errno.EADDRNOTAVAIL, f"cannot listen: {exc}") from exc
        await server.start()
        self._server = server
        self._released = asyncio.Event()
        self._guard = asyncio.create_task(self._stop_with_the_loop(server, self._released))
        return host, bound

    @staticmethod
    async def _stop_with_the_loop(server: grpc.aio.Server, released: asyncio.Event) -> None:
        """Stop ``server`` when this task is cancelled: ``asyncio.run`` cancels what is left
        before it closes the loop, so a server nobody closed (a default broker's, say) stops
        while its loop still runs, not later in grpcio's ``__del__`` with a traceback.
        :meth:`close` releases it instead: a cancel would stop the server with no grace,
        cancelling at once the calls close() gives a moment to answer."""
        try:
            await released.wait()
        except asyncio.CancelledError:
            await server.stop(None)
            raise

    async def close(self) -> None:
        server, self._server = self._server, None
        guard, self._guard = self._guard, None
        if guard is not None:  # done already if asyncio.run's end cancelled it
            self._released.set()
            await asyncio.wait([guard])
        if server is not None:
            # A short grace, not none: the C-core stops taking calls (GOAWAY) at once, but
            # a call it took just before reaches the dispatcher, which answers it as
            # unprocessed (a draining service refuses, and the client fails over),
            # instead of the C-core cancelling it unseen (CANCELLED: never retried).
            # What still runs after it is cancelled.
            await server.stop(CLOSE_SETTLE)


# -- client ---------------------------------------------------------------------------


class _Channel:
    """A ``grpc.aio`` channel and its multi-callables, one per method path."""

    def __init__(
        self,
        address: str,
        options: Sequence[tuple[str, Any]],
        credentials: Any = None,
        compression: grpc.Compression = grpc.Compression.NoCompression,
    ) -> None:
        self.channel = (
            grpc.aio.insecure_channel(address, options=options, compression=compression)
            if credentials is None
            else grpc.aio.secure_channel(
                address, credentials, options=options, compression=compression
            )
        )
        self.plaintext = credentials is None
        self._callables: dict[str, Any] = {}

    def callable(self, method: AnyMethod) -> Any:
        found = self._callables.get(method.path)
        if found is None:
            make = {
                Kind.UNARY: self.channel.unary_unary,
                Kind.SERVER_STREAM: self.channel.unary_stream,
                Kind.CLIENT_STREAM: self.channel.stream_unary,
                Kind.BIDI_STREAM: self.channel.stream_stream,
            }[method.kind]
            found = self._callables[method.path] = make(method.path, _registered_method=True)
        return found


#: what grpcio's details say when no connection to the address could be made at all
_CONNECT_FAILURES = ("failed to connect", "connection refused", "dns resolution failed")
#: what they say when the connection went away under a call (any other UNAVAILABLE
#: without headers is a bare status the server sent, which grpcio cannot tell apart)
_CONNECTION_LOSSES = (
    "stream removed",
    "socket closed",
    "connection reset",
    "broken pipe",
    "goaway",
    "transport closed",
    "connection aborted",
    "keepalive",
    "endpoint closing",
)


def _never_connected(details: str | None) -> bool:
    text = (details or "").lower()
    return any(marker in text for marker in _CONNECT_FAILURES)


def _lost_connection(details: str | None) -> bool:
    text = (details or "").lower()
    return any(marker in text for marker in _CONNECTION_LOSSES)


def _view(metadata: Any) -> MetadataView:
    return MetadataView(tuple(m) for m in metadata) if metadata else MetadataView()


class _OutboundCall:
    """An outgoing RPC on a ``grpc.aio`` channel; raises only micro Errors."""

    __slots__ = (
        "_address",
        "_call",
        "_callable",
        "_compression",
        "_ended",
        "_finished",
        "_headers",
        "_lost",
        "_metadata",
        "_method",
        "_plaintext",
        "_received",
        "_timeout",
        "_trailers",
    )

    def __init__(
        self,
        channel: _Channel,
        address: str,
        method: AnyMethod,
        metadata: Pairs,
        deadline: float | None,
        compression: str | None = None,
    ) -> None:
        self._callable = channel.callable(method)
        self._plaintext = channel.plaintext
        self._compression = None if compression is None else _compression(compression)
        self._address = address
        self._method = method
        self._metadata = tuple(metadata) if metadata else None
        self._timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        self._call: Any = None
        self._received = 0
        self._finished = False
        self._lost = False  # cut off after the request went out, without a status
        self._headers: MetadataView | None = None
        self._trailers: MetadataView | None = None
        self._ended: Any = None  # see _metadata_of_done_call

    @property
    def messages_received(self) -> int:
        return self._received

    @property
    def committed(self) -> bool:
        return self._received > 0 or self._lost

    @property
    def headers(self) -> MetadataView | None:
        if self._headers is None and self._ended is not None:
            self._headers = _view(self._ended._initial_metadata)
        return self._headers

    @property
    def trailers(self) -> MetadataView | None:
        if self._trailers is None and self._ended is not None:
            self._trailers = _view(self._ended._status.trailing_metadata())
        return self._trailers

    def _error(self, exc: Exception) -> Error:
        """``exc``, raised by grpcio or the codec, as the micro Error it means."""
        if isinstance(exc, grpc.aio.AioRpcError):
            self._finished = True
            self._headers = _view(exc.initial_metadata())
            self._trailers = _view(exc.trailing_metadata())
            status = _STATUSES[exc.code()]
            error = from_grpc(status, exc.details(), self._trailers)
            if error.origin is not Origin.STATUS:
                return error
            if status is Status.DEADLINE_EXCEEDED and exc.details() in ("", "Deadline Exceeded"):
                return local.deadline_exceeded(
                    self._method
                )  # ours or the server's timer: one error
            if status is Status.UNAVAILABLE and not self._headers:
                if _never_connected(exc.details()):
                    why = exc.details() or ""
                    if self._plaintext and "socket closed" in why.lower():
                        why += local.PLAINTEXT_HINT  # a TLS server hangs up on plaintext
                    return local.unreachable(self._method, self._address, why)
                if not _lost_connection(exc.details()):
                    return error  # the server's own bare status
                # Lost after the request went out: the server may have handled it (and
                # grpcio does not say whether a unary reply had arrived).
                self._lost = True
                return local.connection_lost(
                    self._method, self._address, self._received, exc.details()
                )
            return error
        if isinstance(exc, DecodeError):
            return local.invalid_response(self._method, self._address, exc)
        return local.failed(self._method, exc)

    def _open(self, request: bytes | None) -> None:
        extra = {} if self._compression is None else {"compression": self._compression}
        if request is None:
            self._call = self._callable(timeout=self._timeout, metadata=self._metadata, **extra)
        else:
            self._call = self._callable(
                request, timeout=self._timeout, metadata=self._metadata, **extra
            )

    async def _metadata_of_done_call(self) -> None:
        """The response metadata of a call whose response arrived, read when asked (most
        callers never look): grpcio keeps the ended call's metadata and status on its
        Cython object. A grpcio without them: read now, through its public API."""
        ended = getattr(self._call, "_cython_call", None)
        if hasattr(ended, "_initial_metadata") and getattr(ended, "_status", None) is not None:
            self._ended = ended
            return
        self._headers = _view(await self._call.initial_metadata())
        self._trailers = _view(await self._call.trailing_metadata())

    async def start(self) -> None:
        if not self._method.kind.client_streaming:
            return  # the call starts with its request message (send)
        try:
            self._open(None)
            await self._call.wait_for_connection()
        except (grpc.aio.AioRpcError, OSError) as exc:
            raise self._error(exc) from None

    async def unary(self, message: Any) -> Any | None:
        try:
            self._open(codec.encode(message, self._method.request_type))
            data = await self._call
            await self._metadata_of_done_call()
            self._finished = True
            reply = codec.decode(data, self._method.response_type)
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.OK:  # OK without a message: grpcio's EOF
                self._finished = True
                return None
            raise self._error(exc) from None
        except DecodeError as exc:
            raise self._error(exc) from None
        # an EncodeError is the caller's own mistake: it propagates as it is (a TypeError)
        self._received = 1
        return reply

    async def send(self, message: Any, *, end: bool = False) -> None:
        try:
            data = codec.encode(message, self._method.request_type)
            if not self._method.kind.client_streaming:
                self._open(data)  # the one request message starts a server stream
                return
            await self._write(data)
            if end:
                await self._call.done_writing()
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc) from None
        except asyncio.InvalidStateError:
            raise self._error(await self._status()) from None

    async def _write(self, data: bytes) -> None:
        """``call.write(data)``, keeping the server's status when the write loses a race
        with it: grpcio replaces that status with INTERNAL "Internal error from Core"
        when a write fails because the server already ended the call (grpc/grpc#36066).
        So the message goes out through the call's own Cython object, as ``write`` does,
        and the status the server sent is what a failed write raises."""
        cython_call = getattr(self._call, "_cython_call", None)
        send = getattr(cython_call, "send_serialized_message", None)
        if send is None or _InternalError is None:  # another grpcio: its public write
            await self._call.write(data)
            return
        if not self._call.done():
            try:
                await send(data)
                return
            except _InternalError:
                pass
        try:
            async with asyncio.timeout(_STATUS_WAIT):
                ended = await self._status()
        except TimeoutError:
            await self._call.write(data)  # no status came: grpcio's own error
            return
        if ended.code() is not grpc.StatusCode.OK:  # type: ignore[attr-defined]
            raise ended
        # the server answered before taking every request: recv() has the reply

    async def _status(self) -> Exception:
        """The error a finished call ended with (a write after the end raises no status)."""
        code = await self._call.code()
        details = await self._call.details()
        error: Exception = grpc.aio.AioRpcError(
            code,
            await self._call.initial_metadata(),
            await self._call.trailing_metadata(),
            details=details,
        )
        return error

    async def end(self) -> None:
        if self._finished or not self._method.kind.client_streaming:
            return
        try:
            await self._call.done_writing()
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc) from None

    async def recv(self) -> Any | None:
        if self._finished:
            return None
        try:
            if self._method.kind.server_streaming:
                data = await self._call.read()
                if self._headers is None:
                    self._headers = _view(await self._call.initial_metadata())
                if data is grpc.aio.EOF:
                    await self._finish()
                    return None
            else:
                if self._received:
                    return None
                data = await self._call
                await self._metadata_of_done_call()
                self._finished = True
            message = codec.decode(data, self._method.response_type)
        except (grpc.aio.AioRpcError, DecodeError) as exc:
            raise self._error(exc) from None
        self._received += 1
        return message

    async def _finish(self) -> None:
        if self._finished:
            return
        code = await self._call.code()
        if code is not grpc.StatusCode.OK:
            raise await self._status()
        self._trailers = _view(await self._call.trailing_metadata())
        self._finished = True

    async def finish(self) -> None:
        try:
            if self._method.kind.server_streaming:
                await self._finish()
            elif not self._finished:
                await self.recv()
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc) from None

    async def aclose(self) -> None:
        call = self._call
        if call is not None and not call.done():
            call.cancel()  # RST_STREAM CANCEL


def _compression(name: str) -> grpc.Compression:
    if name not in ENCODINGS:
        raise ValueError(f"compression must be one of {', '.join(ENCODINGS)}, not {name!r}")
    return _COMPRESSION[name]


class GrpcioClientTransport:
    """One ``grpc.aio`` channel per node address, bound to the running event loop."""

    def __init__(
        self,
        *,
        options: Sequence[tuple[str, Any]] = (),
        tls: TLS | None = None,
        transport_options: TransportOptions = DEFAULT,
    ) -> None:
        self._options = (*channel_arguments(transport_options), *options)
        self._compression = _COMPRESSION[transport_options.compression]
        self._files: Files | None = None
        self._credentials: Any = None
        if tls is not None:
            if tls.insecure_skip_verify:
                raise ConfigError(
                    f"{tls.names['insecure_skip_verify']} is not available on the grpcio "
                    "transport (grpcio cannot skip verifying the server): give "
                    f"{tls.names['ca']} the server's CA, or use MICRO_TRANSPORT=grpclib"
                )
            self._files = tls.client_files()
            self._credentials = self._channel_credentials(self._files)
            if tls.server_name is not None:
                self._options += (("grpc.ssl_target_name_override", tls.server_name),)
        self._channels: dict[str, _Channel] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def _channel(self, address: str) -> _Channel:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # channels belong to the loop that created them (e.g. a new asyncio.run);
            # that loop is gone or elsewhere, so they are dropped, not closed from here
            self._channels, self._loop = {}, loop
        channel = self._channels.get(address)
        if channel is None:
            parse_address(address)  # "host:port" or a clear error, before grpcio resolves it
            if self._files is not None and self._files.reload():  # rotated files
                self._credentials = self._channel_credentials(self._files)
            channel = self._channels[address] = _Channel(
                address, self._options, self._credentials, self._compression
            )
        return channel

    @staticmethod
    def _channel_credentials(files: Files) -> Any:
        return grpc.ssl_channel_credentials(
            root_certificates=files.ca, private_key=files.key, certificate_chain=files.cert
        )

    def open(
        self,
        address: str,
        method: AnyMethod,
        metadata: Pairs,
        deadline: float | None,
        *,
        compression: str | None = None,
    ) -> _OutboundCall:
        return _OutboundCall(
            self._channel(address), address, method, metadata, deadline, compression
        )

    async def close(self) -> None:
        channels, self._channels = self._channels, {}
        if self._loop is not asyncio.get_running_loop():
            return
        for channel in channels.values():
            await channel.channel.close()


class GrpcioTransport:
    """gRPC over grpcio (the C-core): ``MICRO_TRANSPORT=grpcio``, the default.

    ``server_options`` / ``channel_options`` are grpcio channel arguments (``grpc.*``);
    ``reuse_port=True`` lets several processes serve one port (SO_REUSEPORT), the
    kernel spreading connections across them."""

    name = "grpcio"

    def __init__(
        self,
        *,
        reuse_port: bool = False,
        server_options: Sequence[tuple[str, Any]] = (),
        channel_options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        self.reuse_port = reuse_port
        self._server_options = (("grpc.so_reuseport", int(reuse_port)), *server_options)
        self._channel_options = tuple(channel_options)

    def server(
        self,
        routes: Mapping[str, AnyMethod],
        dispatch: Dispatch,
        *,
        tls: TLS | None = None,
        options: TransportOptions = DEFAULT,
    ) -> GrpcioServerTransport:
        return GrpcioServerTransport(
            routes, dispatch, options=self._server_options, tls=tls, transport_options=options
        )

    def client(
        self, *, tls: TLS | None = None, options: TransportOptions = DEFAULT
    ) -> GrpcioClientTransport:
        return GrpcioClientTransport(
            options=self._channel_options, tls=tls, transport_options=options
        )

    def __repr__(self) -> str:
        return f"GrpcioTransport(reuse_port={self.reuse_port})"
