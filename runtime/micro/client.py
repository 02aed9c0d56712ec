"""The client: discovery, node selection, retries, deadlines, metadata, middleware.

Retry rules: a call is retried (up to ``retries`` more attempts, waiting
``backoff * 2**attempt`` seconds between attempts, never past the deadline) when it
fails with gRPC status ``UNAVAILABLE`` and either

* the request provably reached no handler: the node could not be reached (connection
  refused), it reset the stream with ``REFUSED_STREAM``, or it refused the call while
  draining (its status carries :data:`micro.errors.UNPROCESSED_METADATA_KEY`); or
* the call is *idempotent* (:attr:`ClientCall.idempotent`): its method is marked
  ``option idempotency_level = IDEMPOTENT`` or ``NO_SIDE_EFFECTS`` in the proto
  (:attr:`micro.Method.idempotent`), the caller passed ``idempotent=True`` for this call,
  or the client was built with ``assume_idempotent=True``. Then a call that may have run
  (the connection was lost after the request went out, or a handler answered
  ``UNAVAILABLE``) runs again on another node, as long as no response message arrived.

So a non-idempotent call in flight on a node that dies fails with ``UNAVAILABLE``
(the caller decides what to do): it is never run twice. The next attempt prefers a node
not tried yet for this call (with a static ``address``: the same address). Per kind:

* unary and server-streaming: the request is replayable, so any such failure is retried;
* bidi-streaming: only opening the call (connecting, sending headers) is retried;
* client-streaming: a ``Sequence`` of requests (list, tuple) is replayed; any other
  iterable is retried only if the failure happened before its first item was taken.

Middleware (:data:`ClientMiddleware`) wrap every outgoing call, the first one
outermost::

    async def auth(call: ClientCall, next: ClientNext) -> object:
        call.metadata.append(("authorization", "Bearer ..."))
        return await next(call)

``next(call)`` performs the call (with its retries). For unary and client-streaming
calls it returns the response, and ``call.headers`` / ``call.trailers`` hold the
response metadata afterwards (callers get them with :meth:`Client.unary_reply` and
:meth:`Client.client_stream_reply`, which return a :class:`Reply`). For server-streaming
calls it returns once the stream is open (the first response received, so
``call.headers`` are there); for bidi-streaming once the request headers were sent
(``call.headers`` come with the first response); the return value is then an internal
handle to pass through unchanged. A stream's ``call.trailers`` are there once it ended.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeAlias, TypeVar

from micro import auth as auth_mod
from micro import registry as registry_mod
from micro import telemetry
from micro import tls as tls_mod
from micro import transport as transport_mod
from micro._aclosing import AsyncClosing
from micro._chain import chain
from micro._per_loop import PerLoop
from micro._requests import encoding_error, type_name, wrong_request
from micro.context import outgoing_deadline, outgoing_metadata
from micro.errors import CLIENT_ID, UNPROCESSED_METADATA_KEY, Error, Origin
from micro.lookup import NodeCache
from micro.metadata import Metadata, MetadataView, Pairs, redacted
from micro.registry import Node, Registry
from micro.selector import Selector
from micro.selector import from_env as selector_from_env
from micro.spec import AnyMethod, Kind, Method, Req, Resp
from micro.status import Status
from micro.streams import BidiStream, ServerStream
from micro.tls import TLSSetting
from micro.transport import (
    ClientTransport,
    OutboundCall,
    Transport,
    TransportOptions,
    wire_settings,
)

__all__ = ["Client", "ClientCall", "ClientMiddleware", "ClientNext", "Reply", "default"]


R = TypeVar("R")


@dataclass
class ClientCall:
    """One outgoing call as seen by client middleware.

    ``metadata`` (already including metadata propagated from the current handler) and
    ``deadline`` (absolute ``time.monotonic()``) may be changed before calling ``next``.
    ``request`` is the request message, the requests iterable (client-streaming) or
    ``None`` (bidi).
    """

    method: AnyMethod
    service: str | None
    address: str | None
    request: Any
    metadata: Pairs = field(default_factory=list)
    deadline: float | None = None
    #: ``"gzip"`` or ``"identity"``: this call's request compression (None: the client's)
    compression: str | None = None
    #: whether the call may run twice: retried after its request went out (see the
    #: module docs); from the method, the call's ``idempotent=`` or the client's
    #: ``assume_idempotent``
    idempotent: bool = False
    _outbound: OutboundCall | None = field(default=None, repr=False, compare=False)

    def __repr__(self) -> str:  # the metadata without credentials
        return (
            f"ClientCall(method={self.method.name!r}, service={self.service!r}, "
            f"address={self.address!r}, metadata={redacted(self.metadata)!r}, "
            f"deadline={self.deadline!r})"
        )

    @property
    def headers(self) -> MetadataView | None:
        """The response headers, once the call returned (read only when asked)."""
        return None if self._outbound is None else self._outbound.headers

    @property
    def trailers(self) -> MetadataView | None:
        return None if self._outbound is None else self._outbound.trailers


@dataclass(frozen=True)
class Reply(Generic[Resp]):
    """A unary or client-streaming call's response message with its response metadata."""

    message: Resp
    headers: MetadataView
    trailers: MetadataView

    @classmethod
    def of(cls, message: Resp, call: ClientCall) -> Reply[Resp]:
        empty = MetadataView()
        return cls(message, call.headers or empty, call.trailers or empty)


ClientNext: TypeAlias = Callable[[ClientCall], Awaitable[Any]]
ClientMiddleware: TypeAlias = Callable[[ClientCall, ClientNext], Awaitable[Any]]


def _builtin_middleware() -> tuple[ClientMiddleware, ...]:
    """The client middleware micro installs itself, outermost first, before the user's:
    telemetry (none when it is off)."""
    return telemetry.client_middleware()


class Client(AsyncClosing):
    """Calls services by registry name (or static address) over gRPC.

    * ``registry``: where service names are resolved (default: the process-wide
      registry from ``MICRO_REGISTRY``); lookups are cached, refreshed by a registry
      watch (``cache_ttl`` seconds without one), and the last known nodes are used
      while the registry is unreachable (see :mod:`micro.lookup`);
    * ``selector``: picks a node per attempt (default from ``MICRO_SELECTOR``, random);
    * ``retries`` / ``backoff``: see the module docs;
    * ``assume_idempotent``: retry every call as if its method were idempotent, even after
      its request went out (so a call may run twice); default ``False``: only methods
      marked idempotent in the proto, or calls made with ``idempotent=True``;
    * ``timeout``: default per-call timeout in seconds (``None``: no deadline);
    * ``middleware``: see :data:`ClientMiddleware`;
    * ``transport``: the gRPC implementation (default: ``MICRO_TRANSPORT``, grpcio);
    * ``tls``: a :class:`micro.tls.TLS` (default: the ``MICRO_TLS_*`` variables;
      ``False``: plaintext). A client with TLS calls only nodes that registered as TLS
      (never downgrading to a plaintext one); one without calls only plaintext nodes,
      and a service with TLS nodes only fails with an error saying what to set.
    * ``token``: the bearer token every call carries as ``authorization`` (default:
      ``MICRO_TOKEN``, or the file ``MICRO_TOKEN_FILE`` names; ``""``: none);
    * ``forward_token``: inside a handler, send the token of the call being served
      instead (default: ``MICRO_AUTH_FORWARD``, off; see :mod:`micro.auth` for why).
      Explicit ``authorization`` metadata on a call wins over both.

    One HTTP/2 connection per node address is kept until :meth:`close`.
    """

    def __init__(
        self,
        registry: Registry | None = None,
        selector: Selector | None = None,
        *,
        retries: int = 2,
        backoff: float = 0.05,
        middleware: Sequence[ClientMiddleware] = (),
        timeout: float | None = None,
        cache_ttl: float = 1.0,
        transport: Transport | None = None,
        tls: TLSSetting = None,
        token: str | None = None,
        forward_token: bool | None = None,
        transport_options: TransportOptions | None = None,
        assume_idempotent: bool = False,
    ) -> None:
        if retries < 0:
            raise ValueError("retries must be >= 0")
        resolved = tls_mod.resolve(tls)
        self._tls = resolved is not None
        self._assume_idempotent = assume_idempotent
        self._registry = registry
        self._selector: Selector = selector if selector is not None else selector_from_env()
        self._retries = retries
        self._backoff = backoff
        self._middleware = (*_builtin_middleware(), *middleware)
        # unary calls, the most frequent, through a chain built once (not one per call)
        self._unary_chain = chain(self._middleware, self._unary_call)
        self._timeout = timeout
        self._cache_ttl = cache_ttl
        self._nodes = NodeCache(lambda: self.registry, cache_ttl)
        wire = transport if transport is not None else transport_mod.from_env()
        self._transport: ClientTransport = wire.client(**wire_settings(resolved, transport_options))
        self._token = (auth_mod.client_token() if token is None else token) or None
        self._forward_token = (
            auth_mod.forward_from_env() if forward_token is None else forward_token
        )

    # -- lifecycle ---------------------------------------------------------------------

    async def close(self) -> None:
        """Close all connections (the client stays usable: they reopen on demand)."""
        await self._nodes.close()
        await self._transport.close()

    # -- discovery ---------------------------------------------------------------------

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = registry_mod.default()
        return self._registry

    async def lookup(self, service: str) -> list[Node]:
        """The live nodes of ``service`` (cached); raises 503 if there are none."""
        return await self._nodes.lookup(service)

    async def _pick(self, call: ClientCall, tried: set[str]) -> str:
        if call.address is not None:
            return call.address
        if call.service is None:
            raise ValueError("a call needs a service name or an address")
        nodes = await self.lookup(call.service)
        return self._select(call.service, nodes, tried)

    def _pick_cached(self, call: ClientCall, tried: set[str]) -> str | None:
        service = call.service
        nodes = None if service is None else self._nodes.cached(service)
        if service is None or not nodes:
            return None
        return self._select(service, nodes, tried)

    def _select(self, service: str, nodes: list[Node], tried: set[str]) -> str:
        nodes = self._reachable(service, nodes)
        if tried:
            nodes = [n for n in nodes if n.address not in tried] or nodes
        return self._selector.select(nodes, service=service).address

    def _reachable(self, service: str, nodes: list[Node]) -> list[Node]:
        """The nodes this client may call: TLS nodes with TLS (never a plaintext one),
        plaintext nodes without; an error saying what to set when none is left."""
        tls = self._tls
        usable = [n for n in nodes if tls_mod.speaks_tls(n.metadata) is tls]
        if usable:
            return usable
        if tls:
            why = (
                f"{service}: no node serves TLS ({len(nodes)} plaintext node(s)); this "
                "client uses TLS and never downgrades (serve TLS there, or call with tls=False)"
            )
        else:
            why = (
                f"{service}: every node serves TLS and this client is plaintext: set "
                f"{tls_mod.ENV['ca']} (and {tls_mod.ENV['cert']} / {tls_mod.ENV['key']} "
                "for mTLS), or pass tls=micro.tls.TLS(...)"
            )
        raise Error(CLIENT_ID, 503, why, grpc_status=Status.UNAVAILABLE)

    # -- calls -------------------------------------------------------------------------

    def _new_call(
        self,
        method: AnyMethod,
        request: Any,
        service: str | None,
        address: str | None,
        timeout: float | None,
        metadata: Metadata | None,
        kind: Kind,
        idempotent: bool | None = None,
    ) -> ClientCall:
        if method.kind is not kind:
            raise TypeError(f"{method.name} is a {method.kind.value} method, not {kind.value}")
        if not kind.client_streaming and not isinstance(request, method.request_type):
            raise wrong_request(method, request)  # before anything is sent
        if service is None and address is None:
            raise ValueError("a call needs a service name or an address")
        return ClientCall(
            method=method,
            service=service,
            address=address,
            request=request,
            metadata=self._credentials(
                outgoing_metadata(metadata, forward_token=self._forward_token)
            ),
            deadline=outgoing_deadline(timeout if timeout is not None else self._timeout),
            idempotent=(
                idempotent
                if idempotent is not None
                else method.idempotent or self._assume_idempotent
            ),
        )

    def _credentials(self, metadata: Pairs) -> Pairs:
        """The client's own token, unless the call already carries one (explicit, or
        forwarded): the one place where the client adds credentials."""
        if self._token is not None and not any(k == "authorization" for k, _ in metadata):
            metadata.append(("authorization", f"Bearer {self._token}"))
        return metadata

    def _through_middleware(self, call: ClientCall, last: ClientNext) -> Awaitable[Any]:
        return chain(self._middleware, last)(call)

    async def _attempt(
        self,
        call: ClientCall,
        run: Callable[[OutboundCall, ClientCall], Awaitable[R]],
        replayable: Callable[[], bool] = lambda: True,
    ) -> tuple[OutboundCall, R]:
        """Open the call and ``run`` its first phase, retrying per the module rules.

        On success the call is returned still open (the caller closes it), and
        ``call.headers`` / ``call.trailers`` read from it."""
        tried: set[str] = set()
        attempt = 0
        while True:
            # usually no await: a static address, or nodes the cache holds
            address = (
                call.address or self._pick_cached(call, tried) or await self._pick(call, tried)
            )
            outbound = self._transport.open(
                address, call.method, call.metadata, call.deadline, compression=call.compression
            )
            try:
                result = await run(outbound, call)
                call._outbound = outbound
                return outbound, result
            except Error as exc:
                await outbound.aclose()
                if not (
                    exc.grpc_status is Status.UNAVAILABLE
                    and attempt < self._retries
                    and replayable()
                    and _may_run_again(call, outbound, exc)
                ):
                    raise
                delay = self._backoff * (2**attempt)
                if call.deadline is not None and time.monotonic() + delay >= call.deadline:
                    raise
                tried.add(address)
                if telemetry.metrics.active is not None:
                    telemetry.metrics.active.retries.child(
                        call.service or "-", call.method.name
                    ).inc()
                if call.service is not None:
                    self._nodes.invalidate(call.service)
                attempt += 1
                await asyncio.sleep(delay)
            except BaseException as exc:
                await outbound.aclose()
                if isinstance(exc, Exception) and not call.method.kind.client_streaming:
                    mistake = encoding_error(call.method, call.request)
                    if mistake is not None:
                        raise mistake from exc
                raise

    async def unary(
        self,
        method: Method[Req, Resp],
        request: Req,
        *,
        service: str | None = None,
        address: str | None = None,
        timeout: float | None = None,
        metadata: Metadata | None = None,
        idempotent: bool | None = None,
    ) -> Resp:
        """Call a unary method; returns the response message. ``idempotent``: whether the
        call may run twice (retried after it was sent; default: the method's
        ``idempotency_level``, or the client's ``assume_idempotent``)."""
        call = self._new_call(
            method, request, service, address, timeout, metadata, Kind.UNARY, idempotent
        )
        # The transport decoded the reply as method.response_type.
        response: Resp = await self._unary_chain(call)
        return response

    async def unary_reply(
        self,
        method: Method[Req, Resp],
        request: Req,
        *,
        service: str | None = None,
        address: str | None = None,
        timeout: float | None = None,
        metadata: Metadata | None = None,
        idempotent: bool | None = None,
    ) -> Reply[Resp]:
        """Call a unary method; returns the response message with its headers and trailers."""
        call = self._new_call(
            method, request, service, address, timeout, metadata, Kind.UNARY, idempotent
        )
        response: Resp = await self._unary_chain(call)
        return Reply.of(response, call)

    async def _unary_call(self, call: ClientCall) -> Any:
        outbound, reply = await self._attempt(call, _exchange_unary)
        await outbound.aclose()
        if reply is None:
            raise _no_response(call.method)
        return reply

    def server_stream(
        self,
        method: Method[Req, Resp],
        request: Req,
        *,
        service: str | None = None,
        address: str | None = None,
        timeout: float | None = None,
        metadata: Metadata | None = None,
        idempotent: bool | None = None,
    ) -> ServerStream[Resp]:
        """Start a server-streaming call (opened on first use); see :class:`ServerStream`."""
        call = self._new_call(
            method, request, service, address, timeout, metadata, Kind.SERVER_STREAM, idempotent
        )

        async def last(call: ClientCall) -> Any:
            async def run(outbound: OutboundCall, call: ClientCall) -> Any:
                await outbound.start()
                await outbound.send(call.request, end=True)
                return await outbound.recv()

            return await self._attempt(call, run)

        async def opener() -> tuple[OutboundCall, Any]:
            result: tuple[OutboundCall, Any] = await self._through_middleware(call, last)
            return result

        return ServerStream(opener)

    async def client_stream(
        self,
        method: Method[Req, Resp],
        requests: Iterable[Req] | AsyncIterable[Req],
        *,
        service: str | None = None,
        address: str | None = None,
        timeout: float | None = None,
        metadata: Metadata | None = None,
        idempotent: bool | None = None,
    ) -> Resp:
        """Send every request of ``requests``, then return the single response."""
        return (
            await self.client_stream_reply(
                method,
                requests,
                service=service,
                address=address,
                timeout=timeout,
                metadata=metadata,
                idempotent=idempotent,
            )
        ).message

    async def client_stream_reply(
        self,
        method: Method[Req, Resp],
        requests: Iterable[Req] | AsyncIterable[Req],
        *,
        service: str | None = None,
        address: str | None = None,
        timeout: float | None = None,
        metadata: Metadata | None = None,
        idempotent: bool | None = None,
    ) -> Reply[Resp]:
        """Like :meth:`client_stream`, with the response's headers and trailers."""
        if isinstance(requests, method.request_type) or not isinstance(
            requests, (Iterable, AsyncIterable)
        ):
            raise TypeError(
                f"{method.name} is client-streaming: it takes an iterable or async iterable "
                f"of {type_name(method.request_type)}, got {type_name(type(requests))}"
            )
        call = self._new_call(
            method, requests, service, address, timeout, metadata, Kind.CLIENT_STREAM, idempotent
        )

        async def last(call: ClientCall) -> Any:
            source = call.request
            taken = False

            def replayable() -> bool:
                return isinstance(source, Sequence) or not taken

            async def run(outbound: OutboundCall, call: ClientCall) -> Any:
                nonlocal taken
                await outbound.start()
                request_type = call.method.request_type
                if isinstance(source, AsyncIterable):
                    async for item in source:
                        taken = True
                        if not isinstance(item, request_type):
                            raise wrong_request(call.method, item)
                        await outbound.send(item)
                else:
                    for item in source:
                        taken = True
                        if not isinstance(item, request_type):
                            raise wrong_request(call.method, item)
                        await outbound.send(item)
                await outbound.end()
                reply = await outbound.recv()
                if reply is None:
                    raise _no_response(call.method)
                await outbound.finish()
                return reply

            outbound, reply = await self._attempt(call, run, replayable)
            await outbound.aclose()
            return reply

        response: Resp = await self._through_middleware(call, last)
        return Reply.of(response, call)

    def bidi_stream(
        self,
        method: Method[Req, Resp],
        *,
        service: str | None = None,
        address: str | None = None,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> BidiStream[Req, Resp]:
        """Start a bidi-streaming call (opened on ``async with`` or first use)."""
        call = self._new_call(method, None, service, address, timeout, metadata, Kind.BIDI_STREAM)

        async def last(call: ClientCall) -> Any:
            async def run(outbound: OutboundCall, call: ClientCall) -> None:
                await outbound.start()

            outbound, _ = await self._attempt(call, run)
            return outbound

        async def opener() -> OutboundCall:
            result: OutboundCall = await self._through_middleware(call, last)
            return result

        return BidiStream(opener, method=method)

    def __repr__(self) -> str:  # never the token
        return f"Client(registry={self._registry!r}, selector={self._selector!r})"


def _may_run_again(call: ClientCall, outbound: OutboundCall, exc: Error) -> bool:
    """Whether a call that failed with ``UNAVAILABLE`` may be sent again (module docs)."""
    if outbound.messages_received:
        return False  # the caller may have seen part of the answer: never replayed
    if exc.origin is not Origin.LOCAL:  # a status the server sent
        trailers = outbound.trailers
        refused = trailers is not None and UNPROCESSED_METADATA_KEY in trailers
        return refused or call.idempotent  # else a handler may have run and answered it
    return not outbound.committed or call.idempotent


def _exchange_unary(outbound: OutboundCall, call: ClientCall) -> Awaitable[Any]:
    return outbound.unary(call.request)


def _no_response(method: AnyMethod) -> Error:
    return Error(
        CLIENT_ID,
        500,
        f"{method.name}: server sent no response message",
        grpc_status=Status.INTERNAL,
    )


_defaults: PerLoop[Client] = PerLoop(Client, lambda client: client.close())


def default() -> Client:
    """The default client of the running event loop (registry from ``MICRO_REGISTRY``),
    built on first use and closed when the loop shuts down (at the end of
    ``asyncio.run``). One per loop: channels belong to the loop that opened them, so a
    script that calls ``asyncio.run()`` twice, or a sync client's background loop, gets
    its own."""
    return _defaults.get()
