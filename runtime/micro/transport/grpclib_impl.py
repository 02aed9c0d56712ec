"""grpclib implementation of the transport boundary (HTTP/2 on TCP, or TLS with stdlib
``ssl`` contexts, ALPN ``h2``)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
import time
import weakref
from collections.abc import Mapping
from typing import Any

import h2.errors
import h2.events
import h2.exceptions
from grpclib.client import Channel
from grpclib.client import Handler as ClientHandler
from grpclib.client import Stream as ClientStream
from grpclib.config import Configuration
from grpclib.const import Cardinality, Handler
from grpclib.const import Status as GrpclibStatus
from grpclib.encoding.base import CodecBase
from grpclib.exceptions import GRPCError, ProtocolError, StreamTerminatedError
from grpclib.metadata import (
    USER_AGENT,
    decode_grpc_message,
    decode_metadata,
    encode_grpc_message,
    encode_metadata,
    encode_timeout,
)
from grpclib.protocol import EventsProcessor, H2Protocol
from grpclib.protocol import Stream as H2Stream
from grpclib.server import Handler as ConnectionHandler
from grpclib.server import Server
from grpclib.server import Stream as ServerStream
from h2.connection import ConnectionInputs, ConnectionState, H2ConnectionStateMachine
from h2.errors import ErrorCodes
from h2.settings import SettingCodes

from micro import codec
from micro.address import format_address, parse_address
from micro.codec import DecodeError
from micro.errors import CLIENT_ID, ERROR_METADATA_KEY, Error, from_grpc
from micro.metadata import MetadataView, Pairs
from micro.spec import AnyMethod, Kind
from micro.status import Status
from micro.tls import TLS, Files
from micro.transport import _local as local
from micro.transport.base import Dispatch
from micro.transport.options import (
    CLOSE_SETTLE,
    DEFAULT,
    ENCODINGS,
    DecompressError,
    TransportOptions,
    compress,
    decompress,
    receive_too_large,
    send_too_large,
)

__all__ = ["GrpclibClientTransport", "GrpclibServerTransport", "GrpclibTransport"]


class _NoHeaderDumps(logging.Filter):
    """hpack logs every header it encodes or decodes at DEBUG, values included, so a
    process logging at DEBUG would write each call's bearer token: those records are
    dropped (hpack's warnings and errors pass)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


for _hpack_logger in ("hpack.hpack", "hpack.table"):
    logging.getLogger(_hpack_logger).addFilter(_NoHeaderDumps())

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


# -- framing: length prefix, limits and compression -------------------------------------
# grpclib's own framing buffers a whole message whatever its length prefix claims, and
# refuses compressed messages: messages cross here instead, on grpclib's HTTP/2 streams.

_ACCEPT_ENCODING = ",".join(ENCODINGS)
_CONTENT_TYPE = "application/grpc"


def _encoding_of(headers: Any) -> str:
    for key, value in headers or ():
        if key == "grpc-encoding":
            return str(value)
    return "identity"


def _accepts(headers: Any, encoding: str) -> bool:
    for key, value in headers or ():
        if key == "grpc-accept-encoding":
            return encoding in (part.strip() for part in str(value).split(","))
    return False


def _bad(message_type: type, why: str) -> DecodeError:
    return DecodeError(message_type, ValueError(why))


async def _read_frame(
    stream: H2Stream, limit: int | None, encoding: str, message_type: type, who: str = ""
) -> Any | None:
    """The next message, ``None`` at the end of the stream. The length prefix is checked
    against ``limit`` before a byte of the message is buffered."""
    try:
        prefix = await stream.recv_data(5)
        if not prefix:
            return None
        if len(prefix) < 5:
            raise DecodeError(
                message_type, ValueError("truncated message: incomplete length prefix")
            )
        size = int.from_bytes(prefix[1:5], "big")
        if limit is not None and size > limit:
            raise receive_too_large(size, limit, who)
        data = await stream.recv_data(size) if size else b""
    except AssertionError:  # grpclib's buffer: the stream ended inside a message
        raise DecodeError(
            message_type, ValueError("truncated message: the stream ended inside it")
        ) from None
    if len(data) != size:
        raise _bad(message_type, "truncated message: the stream ended inside it")
    if prefix[0]:
        if encoding == "identity":  # the peer's protocol error (gRPC's compression spec)
            raise Error(
                who,
                500,
                "compressed message without a grpc-encoding",
                grpc_status=Status.INTERNAL,
            )
        try:
            data = decompress(data, encoding, limit)
        except DecompressError as exc:
            if limit is not None and "larger than max" in str(exc):
                raise receive_too_large(limit + 1, limit, who) from None
            raise DecodeError(message_type, exc) from None
    return codec.decode(data, message_type)


def _frame(data: bytes, limit: int | None, encoding: str, who: str = "") -> bytes:
    if limit is not None and len(data) > limit:
        raise send_too_large(len(data), limit, who)
    flag = b"\x00"
    if encoding != "identity":
        data = compress(data, encoding)
        flag = b"\x01"
    return flag + len(data).to_bytes(4, "big") + data


# -- coalesced writes -------------------------------------------------------------------
# grpclib writes to the socket once per HEADERS or DATA frame. micro instead *stages*
# frames in the connection's h2 buffer and writes them together: a unary request (headers
# and message) in one write, a unary reply (headers, message, trailers) in one, a stream's
# headers with its first message. h2 keeps the buffer in order, so frames of other streams
# written meanwhile only take the staged ones along. Staging happens only when grpclib
# would not have waited (the transport is not paused, flow control lets the message go
# whole); otherwise the staged frames are written and grpclib's own path takes over.


def _can_stage(stream: H2Stream) -> bool:
    return stream.connection.write_ready.is_set() and stream.id in stream._h2_connection.streams


def _stage_data(stream: H2Stream, frame: bytes, end: bool) -> bool:
    """Put ``frame`` in the connection's buffer as one DATA frame, if it can go now."""
    if not _can_stage(stream):
        return False
    h2_conn = stream._h2_connection
    assert stream.id is not None
    size = len(frame)
    if size > h2_conn.max_outbound_frame_size or size > h2_conn.local_flow_control_window(
        stream.id
    ):
        return False
    h2_conn.send_data(stream.id, frame, end_stream=end)
    stream.data_sent += size
    stream.connection.data_sent += size
    stream.connection.data_send_process()
    return True


async def _send_data(
    stream: H2Stream, frame: bytes, end: bool = False, *, write: bool = True
) -> None:
    """Send ``frame`` after what is staged: in one write when it can go whole (or left
    staged too, with ``write=False``, for the next write to take), else through grpclib's
    flow-controlled path."""
    if _stage_data(stream, frame, end):
        if write:
            stream.connection.flush()
        return
    stream.connection.flush()
    await stream.send_data(frame, end_stream=end)


async def _open_staged(stream: H2Stream, headers: list[tuple[str, str]], processor: Any) -> Any:
    """grpclib's ``Stream.send_request``, leaving the HEADERS frame staged (the request
    message follows at once)."""
    connection = stream.connection
    h2_conn = stream._h2_connection
    while True:
        await connection.write_ready.wait()
        if getattr(processor, "goaway_received", False):  # nothing sent: a retry is safe
            raise ConnectionResetError("the server is closing the connection (GOAWAY)")
        # as in grpclib: no await between taking the id and sending its headers
        stream_id = h2_conn.get_next_available_stream_id()
        try:
            h2_conn.send_headers(stream_id, headers)
        except h2.exceptions.TooManyStreamsError:
            connection.stream_close_waiter.clear()
            await connection.stream_close_waiter.wait()
            continue
        stream.init_stream(stream_id, connection)
        release = processor.register(stream)
        connection.headers_send_process()
        return release


# -- server ---------------------------------------------------------------------------


class _InboundCall:
    """An incoming RPC on a grpclib server stream."""

    def __init__(
        self,
        stream: ServerStream[Any, Any],
        method: AnyMethod,
        options: TransportOptions = DEFAULT,
        encoding: str = "identity",
    ) -> None:
        self._stream = stream
        self._method = method
        self._header_sent = False
        self._options = options
        self._request_headers = getattr(stream._stream, "request_headers", None)
        self._encoding = encoding  # of the requests (checked by the handler)
        self._reply_encoding = "identity"
        if options.compression != "identity":
            self.set_compression(options.compression)  # the service's default
        self._metadata: MetadataView | None = None  # built on first use
        deadline = stream.deadline
        self._deadline = None if deadline is None else time.monotonic() + deadline.time_remaining()
        self._peer: str | None = None  # looked up on first use: a syscall most calls skip

    def set_compression(self, encoding: str) -> None:
        """The replies' encoding: ``encoding`` where the client accepts it."""
        accepted = encoding == "identity" or _accepts(self._request_headers, encoding)
        self._reply_encoding = encoding if accepted else "identity"

    @property
    def method(self) -> AnyMethod:
        return self._method

    @property
    def metadata(self) -> MetadataView:
        if self._metadata is None:
            metadata = self._stream.metadata
            self._metadata = MetadataView(metadata.items() if metadata is not None else ())
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
        return await _read_frame(
            self._stream._stream,
            self._options.max_receive_message_length,
            self._encoding,
            self._method.request_type,
        )

    async def send_header(self, metadata: Pairs) -> None:
        if self._header_sent:
            return
        self._header_sent = True
        headers = [(":status", "200"), ("content-type", _CONTENT_TYPE)]
        if self._reply_encoding != "identity":
            headers.append(("grpc-encoding", self._reply_encoding))
        headers.append(("grpc-accept-encoding", _ACCEPT_ENCODING))
        headers.extend(encode_metadata(metadata))
        stream = self._stream._stream
        if _can_stage(stream):  # a message follows at once (send), or the trailers
            assert stream.id is not None
            stream._h2_connection.send_headers(stream.id, headers)
            stream.connection.headers_send_process()
        else:
            await stream.send_headers(headers)
        self._stream._send_initial_metadata_done = True

    async def send(self, message: Any) -> None:
        data = codec.encode(message, self._method.response_type)
        frame = _frame(data, self._options.max_send_message_length, self._reply_encoding)
        if not self._header_sent:
            await self.send_header([])
        # after the headers; a unary reply's message waits, staged, for the trailers, so
        # that the whole reply is one write
        await _send_data(self._stream._stream, frame, write=self._method.kind.server_streaming)
        self._stream._send_message_done = True

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
        finally:
            if not self._stream._stream._transport.is_closing():
                self._stream._stream.connection.flush()  # nothing staged stays behind


async def _trailers_only(
    stream: ServerStream[Any, Any], status: Status, message: str, *extra: tuple[str, str]
) -> None:
    """End ``stream`` with a status and no message, as a proper gRPC reply (with its
    content-type: grpclib's own early replies lack one, which clients read as UNKNOWN)."""
    headers = [
        (":status", "200"),
        ("content-type", _CONTENT_TYPE),
        ("grpc-status", str(status.value)),
        ("grpc-message", encode_grpc_message(message)),
        *extra,
    ]
    try:
        await stream._stream.send_headers(headers, end_stream=True)
    except (h2.exceptions.StreamClosedError, StreamTerminatedError):
        return
    stream._send_initial_metadata_done = True
    stream._send_trailing_metadata_done = True
    if stream._stream.closable:
        stream._stream.reset_nowait()  # no request bytes are read: stop the client's


async def _unknown_method(stream: ServerStream[Any, Any]) -> None:
    await _trailers_only(stream, Status.UNIMPLEMENTED, f"unknown method {stream._method_name}")


_UNKNOWN = Handler(_unknown_method, Cardinality.STREAM_STREAM, None, None)


class _Routes(dict[str, Handler]):
    """grpclib's method mapping, answering unknown paths with :func:`_unknown_method`."""

    def get(self, key: str, default: Any = None) -> Handler:
        return super().get(key, _UNKNOWN)


class _ConnectionHandler(ConnectionHandler):
    """grpclib's per-connection handler, keeping each request's headers on its stream
    (grpclib decodes only the metadata; the framing needs grpc-encoding)."""

    def accept(self, stream: H2Stream, headers: Any, release_stream: Any) -> None:
        stream.request_headers = headers  # type: ignore[attr-defined]
        super().accept(stream, headers, release_stream)


class _Protocol(H2Protocol):
    """grpclib's server side of one connection, with connection management: a handshake
    timeout, an idle timeout (GOAWAY, then close), max concurrent streams in SETTINGS, a
    bound on streams reset by the client (GOAWAY ENHANCE_YOUR_CALM), and frames of
    unknown types ignored as RFC 9113 says."""

    def __init__(self, *args: Any, options: TransportOptions, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._options = options
        self._timer: asyncio.TimerHandle | None = None
        self._handshaken = False
        self._last_active = time.monotonic()
        self._resets: list[float] = []

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        h2_conn = self.connection._connection
        h2_conn.update_settings(
            {SettingCodes.MAX_CONCURRENT_STREAMS: self._options.max_concurrent_streams}
        )
        self.connection.flush()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._options.handshake_timeout, self._handshake_expired)

    def _handshake_expired(self) -> None:
        if not self._handshaken:
            log.debug("closing a connection that did not complete the HTTP/2 handshake")
            self.goaway(ErrorCodes.NO_ERROR)

    def _check_idle(self) -> None:
        idle = self._options.server_idle_timeout()
        now = time.monotonic()
        if getattr(self.processor, "streams", None):
            self._last_active = now
        elif now - self._last_active >= idle:
            log.debug("closing a connection idle for %.0f s", idle)
            self.goaway(ErrorCodes.NO_ERROR)
            return
        self._timer = asyncio.get_running_loop().call_later(
            max(0.01, self._last_active + idle - now), self._check_idle
        )

    def goaway(self, code: ErrorCodes) -> None:
        """Send GOAWAY (when the connection still can) and close the connection."""
        connection = getattr(self, "connection", None)
        if connection is None or connection.is_closing():
            return
        try:
            connection._connection.close_connection(error_code=code)
            connection.flush()
        except h2.exceptions.ProtocolError:
            pass
        self.processor.close("GOAWAY sent")

    def data_received(self, data: bytes) -> None:
        try:
            events = self.connection.feed(data)
        except h2.exceptions.ProtocolError:
            log.debug("HTTP/2 protocol error", exc_info=True)
            self.connection.flush()  # h2's GOAWAY
            self.processor.close("Protocol error")
            return
        self.connection.flush()
        for event in events:
            processors = getattr(self.processor, "processors", None)
            if processors is None:  # closed meanwhile
                return
            kind = type(event)
            if kind is h2.events.RemoteSettingsChanged and not self._handshaken:
                self._handshaken = True
                if self._timer is not None:
                    self._timer.cancel()
                self._timer = asyncio.get_running_loop().call_later(
                    self._options.server_idle_timeout(), self._check_idle
                )
            elif kind is h2.events.RequestReceived:
                self._last_active = time.monotonic()
            elif (
                isinstance(event, h2.events.StreamReset)
                and event.remote_reset
                and self._reset_flood()
            ):
                return
            if kind in processors:  # others (unknown frame types, ...) are ignored
                self.processor.process(event)
        self.connection.flush()

    def _reset_flood(self) -> bool:
        now = time.monotonic()
        window = self._options.reset_window
        self._resets.append(now)
        if len(self._resets) > self._options.max_resets_per_connection:
            if now - self._resets[0] <= window:
                log.warning("closing a connection that reset %d streams", len(self._resets))
                self.goaway(ErrorCodes.ENHANCE_YOUR_CALM)
                return True
            self._resets = [t for t in self._resets if now - t <= window]
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        super().connection_lost(exc)


class _Server(Server):
    """grpclib Server with micro's connection management, remembering its connections so
    close() can drop them (GOAWAY first)."""

    def __init__(self, *args: Any, options: TransportOptions, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._mapping = _Routes(self._mapping)
        self._options = options
        self._protocols: weakref.WeakSet[_Protocol] = weakref.WeakSet()

    def _protocol_factory(self) -> H2Protocol:
        self.__gc_step__()
        handler = _ConnectionHandler(
            self._mapping, self._codec, self._status_details_codec, self.__dispatch__
        )
        self._handlers.add(handler)
        protocol = _Protocol(handler, self._config, self._h2_config, options=self._options)
        self._protocols.add(protocol)
        return protocol

    def drop_connections(self) -> None:
        for protocol in list(self._protocols):
            protocol.goaway(ErrorCodes.NO_ERROR)

    async def settle(self, timeout: float) -> None:
        """Stop listening and let the calls under way run for up to ``timeout`` seconds
        (a draining service answers new ones at once, refusing them).

        No GOAWAY goes out first: a plain grpclib client reads any GOAWAY as the end of
        the connection and fails the calls under way (micro's reads it as the RFC says:
        :class:`_ClientEvents`), which would cut off the very calls this is for.
        :meth:`drop_connections` sends it after."""
        if self._server is not None:
            self._server.close()
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            running = [
                task
                for handler in self._handlers
                for task in handler._tasks.values()
                if not task.done()
            ]
            if not running:
                return
            await asyncio.wait(running, timeout=left)


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

    def __init__(
        self,
        routes: Mapping[str, AnyMethod],
        dispatch: Dispatch,
        *,
        tls: TLS | None = None,
        options: TransportOptions = DEFAULT,
    ) -> None:
        self._routes = dict(routes)
        self._dispatch = dispatch
        self._options = options
        self._server: _Server | None = None
        self._ssl = None if tls is None else tls.rotating_server_context()

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

        options = self._options

        async def handle(stream: ServerStream[Any, Any]) -> None:
            encoding = _encoding_of(getattr(stream._stream, "request_headers", None))
            if encoding not in ENCODINGS:
                await _trailers_only(
                    stream,
                    Status.UNIMPLEMENTED,
                    f"unsupported grpc-encoding {encoding!r}; accepted: {_ACCEPT_ENCODING}",
                    ("grpc-accept-encoding", _ACCEPT_ENCODING),
                )
                return
            await dispatch(_InboundCall(stream, method, options, encoding))

        return handle

    async def start(self, host: str, port: int) -> tuple[str, int]:
        if self._server is not None:
            raise RuntimeError("transport already started")
        sock = _listen(host, port)
        try:
            config = Configuration(
                _keepalive_time=self._options.server_keepalive_time(),
                _keepalive_timeout=self._options.keepalive_timeout,
            )
            server = _Server([self], codec=_Codec(), config=config, options=self._options)
            await server.start(sock=sock, ssl=self._ssl)
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
        await server.settle(CLOSE_SETTLE)
        server.close()  # cancels what still runs
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


# -- a client that lets a server shut down gracefully ------------------------------------
# A server shutting down sends GOAWAY and finishes the streams it took (RFC 9113, 6.8);
# grpcio's sends GOAWAY at once and keeps answering for its grace. grpclib's client fails
# every stream on any GOAWAY, and h2 itself takes no frame after one (its connection state
# machine is closed by it, so the answers still coming are a protocol error): the calls the
# server was about to answer, a draining node's refusals among them, were cut off.


class _GoawayTolerantMachine(H2ConnectionStateMachine):
    """h2's connection states, except that a client stays open on a GOAWAY."""

    _transitions = {  # noqa: RUF012 - h2's own table, read, never changed
        **H2ConnectionStateMachine._transitions,
        (ConnectionState.CLIENT_OPEN, ConnectionInputs.RECV_GOAWAY): (
            None,
            ConnectionState.CLIENT_OPEN,
        ),
    }


class _ClientEvents(EventsProcessor):
    """grpclib's client side of a connection, reading a GOAWAY without an error as the
    RFC says: no new call opens on the connection (the channel connects anew), the
    streams up to its last stream id go on to their end, and those after it end as
    refused, which they were (a retry is safe). A GOAWAY with an error code ends them
    all, as grpclib does."""

    goaway_received = False

    def process_connection_terminated(self, event: h2.events.ConnectionTerminated) -> None:
        last = event.last_stream_id
        if event.error_code != ErrorCodes.NO_ERROR or last is None:
            super().process_connection_terminated(event)
            return
        self.goaway_received = True
        self.handler.close()  # connection_lost: the next call connects anew
        for stream_id, stream in list(self.streams.items()):
            if stream_id > last:
                stream.__terminated__(f"not processed before GOAWAY; {_REFUSED_STREAM}")


class _ClientProtocol(H2Protocol):
    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        h2_conn = self.connection._connection
        machine = _GoawayTolerantMachine()
        machine.state = h2_conn.state_machine.state
        h2_conn.state_machine = machine
        self.processor = _ClientEvents(self.handler, self.connection)


class _Channel(Channel):
    """grpclib's Channel, whose connections read a GOAWAY as :class:`_ClientEvents`
    does."""

    def _protocol_factory(self) -> H2Protocol:
        return _ClientProtocol(ClientHandler(), self._config, self._h2_config)


class _OutboundCall:
    """An outgoing RPC on a grpclib client stream; raises only micro Errors."""

    def __init__(
        self,
        channel: Channel,
        address: str,
        method: AnyMethod,
        metadata: Pairs,
        deadline: float | None,
        plaintext: bool = True,
        options: TransportOptions = DEFAULT,
        compression: str | None = None,
    ) -> None:
        self._address = address
        self._method = method
        self._deadline = deadline
        self._plaintext = plaintext
        self._options = options
        self._channel = channel
        self._metadata = metadata
        self._encoding = compression if compression is not None else options.compression
        if self._encoding not in ENCODINGS:
            raise ValueError(
                f"compression must be one of {_ACCEPT_ENCODING}, not {self._encoding!r}"
            )
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
            why = str(exc)
            if self._plaintext and not self._received:
                why += local.PLAINTEXT_HINT  # a TLS server hangs up on plaintext
            return local.connection_lost(self._method, self._address, self._received, why)
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

    async def _start(self, stage: bool = False) -> None:
        await self._stream.__aenter__()
        self._entered = True
        try:
            await self._send_request(stage)
            self._sent = True
        except AttributeError:
            # grpclib race: the cached connection was lost a moment ago and has no
            # transport any more; nothing was sent, so it is UNAVAILABLE (retryable)
            raise ConnectionResetError("connection closed") from None

    async def _send_request(self, stage: bool) -> None:
        """grpclib's ``send_request``, with the grpc-encoding headers it cannot send; the
        headers stay staged with ``stage`` (the request message follows at once)."""
        grpc_stream = self._stream
        channel = self._channel
        with grpc_stream._wrapper:
            protocol = await channel.__connect__()
            stream = protocol.processor.connection.create_stream(wrapper=grpc_stream._wrapper)
            headers = [
                (":method", "POST"),
                (":scheme", channel._scheme),
                (":path", self._method.path),
                (":authority", channel._authority),
            ]
            if self._deadline is not None:
                remaining = max(0.0, self._deadline - time.monotonic())
                headers.append(("grpc-timeout", encode_timeout(remaining)))
            headers += [
                ("te", "trailers"),
                ("content-type", _CONTENT_TYPE),
                ("user-agent", USER_AGENT),
                ("grpc-accept-encoding", _ACCEPT_ENCODING),
            ]
            if self._encoding != "identity":
                headers.append(("grpc-encoding", self._encoding))
            headers.extend(encode_metadata(self._metadata))
            if stage:
                release = await _open_staged(stream, headers, protocol.processor)
            else:
                release = await stream.send_request(headers, _processor=protocol.processor)
            grpc_stream._stream = stream
            grpc_stream._release_stream = release
            grpc_stream.peer = stream.connection.get_peer()
            grpc_stream._send_request_done = True

    def _encode(self, message: Any) -> bytes:
        data = codec.encode(message, self._method.request_type)
        return _frame(data, self._options.max_send_message_length, self._encoding, CLIENT_ID)

    async def _send(self, message: Any, end: bool) -> None:
        await self._send_frame(self._encode(message), end)

    async def _send_frame(self, frame: bytes, end: bool) -> None:
        grpc_stream = self._stream
        if grpc_stream._end_done:
            raise ProtocolError("Stream is ended")
        end = end or not self._method.kind.client_streaming
        with grpc_stream._wrapper:
            await _send_data(grpc_stream._stream, frame, end)
        grpc_stream._send_message_done = True
        if end:
            grpc_stream._end_done = True

    async def _recv(self) -> Any | None:
        grpc_stream = self._stream
        if not grpc_stream._recv_initial_metadata_done:
            await grpc_stream.recv_initial_metadata()
        with grpc_stream._wrapper:
            return await _read_frame(
                grpc_stream._stream,
                self._options.max_receive_message_length,
                _encoding_of(grpc_stream._stream.headers),
                self._method.response_type,
                CLIENT_ID,
            )

    async def unary(self, message: Any) -> Any | None:
        # One coroutine for the whole exchange: unary calls are the hot path.
        frame = self._encode(message)  # the caller's mistake, before a stream is opened
        try:
            await self._start(stage=True)  # headers and message leave in one write
            await self._send_frame(frame, True)
            reply = await self._recv()
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
            await self._send(message, end)
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
            message = await self._recv()
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
        h2_stream = getattr(self._stream, "_stream", None)
        try:
            if h2_stream is not None and h2_stream.closable:
                h2_stream.reset_nowait(ErrorCodes.CANCEL)  # CANCEL, not grpclib's NO_ERROR
            await self._stream.__aexit__(asyncio.CancelledError, cancelled, None)
        except asyncio.CancelledError:
            raise
        except Exception:  # pragma: no cover - best effort cleanup
            log.debug("error while closing call %s", self._method.path, exc_info=True)


class GrpclibClientTransport:
    """One grpclib :class:`~grpclib.client.Channel` (one HTTP/2 connection) per address."""

    def __init__(self, *, tls: TLS | None = None, options: TransportOptions = DEFAULT) -> None:
        self._options = options
        self._channels: dict[str, Channel] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._codec = _Codec()
        self._swept = time.monotonic()
        self._tls = tls
        self._files: Files | None = None
        self._ssl: ssl.SSLContext | None = None
        if tls is not None:
            self._files = tls.client_files()
            self._ssl = tls.client_context()
        self._config = Configuration(
            _keepalive_time=options.keepalive_time,
            _keepalive_timeout=options.keepalive_timeout,
            ssl_target_name_override=None if tls is None else tls.server_name,
        )

    def _channel(self, address: str) -> Channel:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # channels are bound to the loop that created them (e.g. a new asyncio.run)
            self._discard()
            self._loop = loop
        now = time.monotonic()
        if now - self._swept >= 1.0:
            self._swept = now
            self._close_idle(now)
        channel = self._channels.get(address)
        if channel is None:
            host, port = parse_address(address)
            if self._tls is not None and self._files is not None and self._files.reload():
                self._ssl = self._tls.client_context()  # rotated files
            channel = _Channel(host, port, codec=self._codec, ssl=self._ssl, config=self._config)
            self._channels[address] = channel
        return channel

    def _close_idle(self, now: float) -> None:
        """Close the connections without calls for ``idle_timeout`` (checked as calls are
        made, at most once a second; servers close idle connections on their side too)."""
        idle = self._options.client_idle_timeout()
        for address, channel in list(self._channels.items()):
            protocol = channel._protocol
            if protocol is None or getattr(protocol.processor, "streams", None):
                continue
            if now - (channel._last_call_started or 0.0) >= idle:
                del self._channels[address]
                channel.close()

    def _discard(self) -> None:
        channels, self._channels = self._channels, {}
        for channel in channels.values():
            try:
                channel.close()
            except Exception:  # pragma: no cover - loop already closed
                log.debug("error closing channel", exc_info=True)

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
            self._channel(address),
            address,
            method,
            metadata,
            deadline,
            plaintext=self._ssl is None,
            options=self._options,
            compression=compression,
        )

    async def close(self) -> None:
        self._discard()


class GrpclibTransport:
    """gRPC over grpclib (pure Python HTTP/2 on TCP or TLS): ``MICRO_TRANSPORT=grpclib``."""

    name = "grpclib"

    def server(
        self,
        routes: Mapping[str, AnyMethod],
        dispatch: Dispatch,
        *,
        tls: TLS | None = None,
        options: TransportOptions = DEFAULT,
    ) -> GrpclibServerTransport:
        return GrpclibServerTransport(routes, dispatch, tls=tls, options=options)

    def client(
        self, *, tls: TLS | None = None, options: TransportOptions = DEFAULT
    ) -> GrpclibClientTransport:
        return GrpclibClientTransport(tls=tls, options=options)

    def __repr__(self) -> str:
        return "GrpclibTransport()"
