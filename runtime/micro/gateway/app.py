"""The gateway as an ASGI app (starlette): route, transcode, call, answer.

The route table follows the registry: read at startup, re-read on every registry watch
event (and every `resync` seconds in case a watch misses one), so routes appear and
disappear as services come and go.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import Message
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount
from starlette.types import Receive, Scope, Send

import micro
from micro import auth as auth_mod
from micro import registry as registry_mod
from micro import telemetry
from micro.dynamic import DynamicMethod
from micro.gateway.catalog import Catalog
from micro.gateway.errors import HttpError, from_micro
from micro.gateway.headers import TIMEOUT_HEADER, HeaderPolicy
from micro.gateway.routes import DefaultRoutes, Match, Route, RouteTable
from micro.gateway.streaming import DuplexResponse, StreamFormat, feed, ndjson_lines, next_answer
from micro.gateway.transcode import build_request, parse_body, reply_json
from micro.tls import TLSSetting

__all__ = ["Gateway", "GatewayConfig", "build_app"]

log = logging.getLogger("micro.api")

DEFAULT_MAX_BODY = 4 * 1024 * 1024


@dataclass(frozen=True)
class GatewayConfig:
    headers: HeaderPolicy = field(default_factory=HeaderPolicy)
    max_body: int = DEFAULT_MAX_BODY
    cors_origins: tuple[str, ...] = ()
    resync: float = 30.0
    #: TLS of the calls to services (micro.tls: None from MICRO_TLS_*, False plaintext)
    tls: TLSSetting = None
    #: checked before any call: the same rules as a service's (401 / 403 from the gateway)
    auth: auth_mod.Auth | None = None
    default_routes: DefaultRoutes = field(default_factory=DefaultRoutes)


def _signatures(records: Sequence[micro.ServiceRecord]) -> dict[str, tuple[object, ...]]:
    grouped: dict[str, set[tuple[str, str, str, str, str]]] = {}
    for record in records:
        for e in record.endpoints:
            grouped.setdefault(record.name, set()).add(
                (e.name, e.path, e.kind, e.request, e.response)
            )
    return {name: tuple(sorted(items)) for name, items in grouped.items()}


class Gateway:
    def __init__(self, registry: micro.Registry, config: GatewayConfig) -> None:
        self.config = config
        self.registry = registry
        telemetry.tracing.name_process("micro.api")  # before the client reads the settings
        # calls carry only the HTTP request's own Authorization: the gateway never lends
        # its token (MICRO_TOKEN, for reflection behind auth) to an anonymous request
        self.client = micro.Client(registry=registry, tls=config.tls, token="")
        self._reflection_client = micro.Client(registry=registry, tls=config.tls)
        self.catalog = Catalog(self._reflection_client)
        self.table = RouteTable()
        self._signatures: dict[str, tuple[object, ...]] = {}
        self._follower: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    # -- the route table ---------------------------------------------------------------

    async def refresh(self) -> None:
        records = await self.registry.list_services()
        self._signatures = _signatures(records)
        self.catalog.forget_changed(self._signatures)
        table = RouteTable.from_records(records, self.config.default_routes)
        if [r.to_dict() for r in table.routes] != [r.to_dict() for r in self.table.routes]:
            log.info("route table: %d routes from %d services", len(table), len(records))
        self.table = table

    async def _watch(self) -> None:
        while True:
            try:
                async with self.registry.watch() as watcher:
                    async for _ in watcher:
                        self._changed.set()
            except registry_mod.RegistryError as exc:
                log.warning("registry watch failed: %s", exc)
            await asyncio.sleep(1.0)

    async def _follow(self) -> None:
        watch = asyncio.create_task(self._watch())
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.config.resync):
                        await self._changed.wait()
                self._changed.clear()
                try:
                    await self.refresh()
                except (registry_mod.RegistryError, OSError) as exc:
                    log.warning("registry unavailable, keeping the last routes: %s", exc)
        finally:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch

    async def start(self) -> None:
        try:
            await self.refresh()
        except (registry_mod.RegistryError, OSError) as exc:
            log.warning("registry unavailable, starting with no routes: %s", exc)
        self._follower = asyncio.create_task(self._follow())

    async def stop(self) -> None:
        follower, self._follower = self._follower, None
        if follower is not None:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
        await self.catalog.close()
        await self._reflection_client.close()
        await self.client.close()

    # -- requests ----------------------------------------------------------------------

    async def handle(self, request: Request) -> Response | DuplexResponse | _SpanUntilDone:
        if telemetry.tracing.enabled() or telemetry.metrics.active is not None:
            return await self._observed(request)
        return await self._respond(request)

    async def _observed(self, request: Request) -> Response | DuplexResponse | _SpanUntilDone:
        """:meth:`_respond` in a server span (the child of the HTTP request's
        ``traceparent``), counted by route and status."""
        method = request.method.upper()
        started = time.perf_counter()
        span = telemetry.tracing.http_server_span(
            method,
            request.headers.items(),
            {
                "http.request.method": method,
                "url.path": request.url.path,
                "url.scheme": request.url.scheme,
            },
        )
        with contextlib.nullcontext() if span is None else telemetry.tracing.using(span):
            try:
                response = await self._respond(request)
            except BaseException:
                if span is not None:
                    span.end()
                raise
        route: Route | None = request.scope.get("micro.route")
        status = getattr(response, "status_code", 200)
        m = telemetry.metrics.active
        if m is not None:
            label = route.label if route is not None else "unmatched"
            m.gateway_requests.child(label, str(status)).inc()
            m.gateway_duration.child(label, str(status)).observe(time.perf_counter() - started)
        if span is None:
            return response
        telemetry.tracing.http_answered(span, method, None if route is None else route.path, status)
        if isinstance(response, (StreamingResponse, DuplexResponse)):
            return _SpanUntilDone(response, span)  # a streamed body: the span lasts as it does
        span.end()
        return response

    async def _respond(self, request: Request) -> Response | DuplexResponse:
        try:
            return await self._handle(request)
        except HttpError as exc:
            return _error_response(exc)
        except micro.Error as exc:
            return _error_response(from_micro(exc))
        except ClientDisconnect:
            return Response(status_code=499)

    def _route(self, request: Request) -> Match:
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        path = raw_path.decode("latin-1").partition("?")[0]
        method = request.method.upper()
        found = self.table.match(method, path)
        if found is None and method == "HEAD":
            found = self.table.match("GET", path)
        if found is not None:
            request.scope["micro.route"] = found.route  # for the span and the metrics
            return found
        allowed = self.table.allowed(path)
        if allowed:
            raise HttpError(
                405,
                f"{method} is not allowed on {path} (allowed: {', '.join(allowed)})",
                headers={"Allow": ", ".join(allowed)},
            )
        closest = [
            f"{r.label} -> {r.service} {r.endpoint}" for r in self.table.closest(method, path)
        ]
        hint = f"; closest: {'; '.join(closest)}" if closest else "; no routes are registered"
        raise HttpError(404, f"no route for {method} {path}{hint}", extra={"routes": closest})

    async def _read_body(self, request: Request) -> bytes:
        limit = self.config.max_body
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise HttpError(413, f"the body is {declared} bytes; the limit is {limit}")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HttpError(413, f"the body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _handle(self, request: Request) -> Response | DuplexResponse:
        match = self._route(request)
        route = match.route
        if route.body:
            _require_json(request)
        policy = self.config.headers
        timeout = policy.timeout(request.headers.get(TIMEOUT_HEADER))
        metadata = policy.metadata(request.headers.items())
        if self.config.auth is not None:
            await self._authorize(self.config.auth, route, metadata)
        method = await self.catalog.method(
            route.service, route.grpc_path, self._signatures.get(route.service, ())
        )
        kind = method.method.kind
        if kind.client_streaming:
            if not route.body:
                raise HttpError(
                    501,
                    f"{route.endpoint} streams its requests, but the rule {route.label} "
                    "has no body to read them from",
                )
            requests = self._requests(request, match, method)
            if kind.server_streaming:
                accept = request.headers.get("accept", "")
                return await self._bidi(request, route, method, requests, timeout, metadata, accept)
            reply = await self.client.client_stream_reply(
                method.method, requests, service=route.service, timeout=timeout, metadata=metadata
            )
            return self._answer(method, route, reply)
        body: Any = None
        if route.body:
            body = parse_body(await self._read_body(request))
        message = build_request(
            method,
            body_rule=route.body,
            body=body,
            variables=match.variables,
            query=request.query_params.multi_items(),
        )
        if kind is micro.Kind.SERVER_STREAM:
            accept = request.headers.get("accept", "")
            return await self._stream(route, method, message, timeout, metadata, accept)
        reply = await self.client.unary_reply(
            method.method, message, service=route.service, timeout=timeout, metadata=metadata
        )
        return self._answer(method, route, reply)

    async def _authorize(
        self, auth: auth_mod.Auth, route: Route, metadata: list[tuple[str, str]]
    ) -> None:
        """The gateway's own check of the route's endpoint, before reflection or a call."""
        try:
            await auth.check(route.service, _RouteEndpoint(route), micro.MetadataView(metadata))
        except micro.Error as exc:
            headers = {"WWW-Authenticate": "Bearer"} if exc.code == 401 else {}
            raise HttpError(exc.code, exc.detail, headers=headers) from None

    def _answer(self, method: DynamicMethod, route: Route, reply: micro.Reply[Message]) -> Response:
        answer = JSONResponse(reply_json(method, reply.message, route.response_body))
        answer.raw_headers.extend(self._metadata(reply.headers, reply.trailers))
        return answer

    def _metadata(
        self, headers: micro.MetadataView | None, trailers: micro.MetadataView | None = None
    ) -> list[tuple[bytes, bytes]]:
        """A call's response metadata as raw headers (trailers only when the call is over
        before the answer starts)."""
        pairs = self.config.headers.response(headers, trailers)
        return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in pairs]

    async def _requests(
        self, request: Request, match: Match, method: DynamicMethod
    ) -> AsyncIterator[Message]:
        """The request messages of a streaming body, one per NDJSON line, each filled as
        a unary request would be (the rule's body, then query and path variables)."""
        query = request.query_params.multi_items()
        async for number, line in ndjson_lines(request.stream(), self.config.max_body):
            try:
                yield build_request(
                    method,
                    body_rule=match.route.body,
                    body=parse_body(line),
                    variables=match.variables,
                    query=query,
                )
            except HttpError as exc:
                raise HttpError(exc.code, f"line {number} of the body: {exc.detail}") from None

    async def _bidi(
        self,
        request: Request,
        route: Route,
        method: DynamicMethod,
        requests: AsyncIterator[Message],
        timeout: float,
        metadata: list[tuple[str, str]],
        accept: str,
    ) -> DuplexResponse:
        stream = self.client.bidi_stream(
            method.method, service=route.service, timeout=timeout, metadata=metadata
        )
        feeder: asyncio.Task[None] | None = None
        try:
            await stream.__aenter__()  # no node, unreachable: a status, as for unary
            feeder = asyncio.create_task(feed(stream, requests, request.receive))
            # Until the first answer, a failure is still an HTTP status: the service's
            # error, a bad request line, or the client leaving.
            reply = await next_answer(stream, feeder)
        except BaseException:
            if feeder is not None:
                feeder.cancel()
            await stream.aclose()
            raise
        return DuplexResponse(
            stream,
            reply,
            feeder,
            StreamFormat.negotiate(accept),
            lambda message: reply_json(method, message, route.response_body),
            self._metadata(stream.headers),
        )

    async def _stream(
        self,
        route: Route,
        method: DynamicMethod,
        message: Message,
        timeout: float,
        metadata: list[tuple[str, str]],
        accept: str,
    ) -> Response:
        fmt = StreamFormat.negotiate(accept)
        replies = self.client.server_stream(
            method.method, message, service=route.service, timeout=timeout, metadata=metadata
        )
        try:
            first = await anext(replies, None)  # errors before the first message: a status
        except BaseException:
            await replies.aclose()
            raise

        async def body() -> AsyncIterator[bytes]:
            try:
                if first is not None:
                    yield fmt.message(reply_json(method, first, route.response_body))
                    async for reply in replies:
                        yield fmt.message(reply_json(method, reply, route.response_body))
            except micro.Error as exc:
                yield fmt.error(from_micro(exc).body())
            except HttpError as exc:
                yield fmt.error(exc.body())
            finally:
                await replies.aclose()

        response = StreamingResponse(
            body(), media_type=fmt.media_type, headers={"Cache-Control": "no-cache"}
        )
        response.raw_headers.extend(self._metadata(replies.headers))
        return response


class _SpanUntilDone:
    """A streamed answer whose gateway span ends once its body is done (or broken off)."""

    __slots__ = ("_response", "_span")

    def __init__(self, response: StreamingResponse | DuplexResponse, span: Any) -> None:
        self._response, self._span = response, span

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            with telemetry.tracing.using(self._span):
                await self._response(scope, receive, send)
        finally:
            self._span.end()


@dataclass(frozen=True)
class _RouteEndpoint:
    """A route's endpoint as auth rules see it (the registry name and the gRPC path)."""

    route: Route

    @property
    def name(self) -> str:
        return self.route.endpoint

    @property
    def path(self) -> str:
        return self.route.grpc_path


#: media types a request body may have (NDJSON for streaming bodies); `application/*+json`
#: too. A browser sends anything else (text/plain, a form) cross-site without asking first.
JSON_TYPES = frozenset({"application/json", "application/x-ndjson", "application/jsonl"})


def _require_json(request: Request) -> None:
    """415 unless a request whose route reads a body says it is JSON. Only a bodiless
    GET/DELETE/... may leave the type out: a cross-site POST (a form, or fetch with a
    text/plain or untyped body) must not run a method."""
    raw = request.headers.get("content-type")
    if raw is None:
        has_body = request.headers.get("content-length", "0") != "0" or (
            "transfer-encoding" in request.headers
        )
        if not has_body and request.method.upper() != "POST":
            return
        raise HttpError(415, "the body needs Content-Type: application/json (none was given)")
    media = raw.split(";", 1)[0].strip().lower()
    if media in JSON_TYPES or (media.startswith("application/") and media.endswith("+json")):
        return
    raise HttpError(415, f"the body needs Content-Type: application/json, not {media or raw!r}")


def _error_response(exc: HttpError) -> Response:
    if exc.code >= 500 and exc.id == "micro.api":
        log.warning("%d %s", exc.code, exc.detail)
    return JSONResponse(exc.body(), status_code=exc.code, headers=exc.headers)


def build_app(gateway: Gateway) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    middleware = []
    if gateway.config.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(gateway.config.cors_origins),
                allow_methods=["*"],
                allow_headers=["*"],
                expose_headers=["*"],
            )
        )

    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        if "content-length" in request.headers and "transfer-encoding" in request.headers:
            # Two framings: a proxy in front may have read the other one (request
            # smuggling). uvicorn's h11 takes the chunked one; the gateway refuses both.
            refused = HttpError(
                400,
                "a request may not have both Content-Length and Transfer-Encoding",
                headers={"Connection": "close"},
            )
            await _error_response(refused)(scope, receive, send)
            return
        response = await gateway.handle(request)
        await response(scope, receive, send)

    # a Mount, not a Route: every method reaches the gateway, custom verbs included
    return Starlette(routes=[Mount("", app=endpoint)], middleware=middleware, lifespan=lifespan)
