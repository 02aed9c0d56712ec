"""Server-side dispatch: route an incoming call to its handler method, through middleware.

For each :class:`~micro.spec.Method`, the dispatcher calls
``getattr(handler, method.handler_attr)(request_or_requests, context)``:

* ``UNARY`` / ``SERVER_STREAM`` get the request message;
  ``CLIENT_STREAM`` / ``BIDI_STREAM`` get an ``AsyncIterator`` of request messages;
* ``UNARY`` / ``CLIENT_STREAM`` return (or ``await`` to) the response;
  ``SERVER_STREAM`` / ``BIDI_STREAM`` return an async iterator (``async def ...: yield``)
  whose items are sent as they come.

Errors: a raised :class:`micro.errors.Error` is sent as its own status (see
:mod:`micro.errors` for the wire format); a request that cannot be decoded answers 400 /
``INVALID_ARGUMENT``; any other exception is logged with its traceback and answered 500 /
``INTERNAL`` with the generic detail ``"internal server error"`` (nothing of the
exception reaches the client). A cancelled call (client went away or deadline expired)
raises ``CancelledError`` inside the handler.

Middleware (:data:`ServerMiddleware`)::

    async def timing(call: HandlerCall, next: HandlerNext) -> object:
        started = time.monotonic()
        try:
            return await next(call)
        finally:
            log.info("%s took %.3fs", call.method.name, time.monotonic() - started)

Middleware run in the given order, the first one outermost. ``next(call)`` runs the rest
of the chain and the handler *to completion*: for ``UNARY`` / ``CLIENT_STREAM`` it returns
the response (a middleware may replace it); for streaming responses every item has been
sent when it returns, and it returns ``None``. Exceptions raised by the handler (also
mid-stream) propagate through ``next``, so a middleware may catch or translate them.
A middleware may also answer without calling ``next`` (unary kinds: return a response;
any kind: raise an :class:`~micro.errors.Error`).
"""

from __future__ import annotations

import asyncio
import difflib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from micro import errors
from micro._chain import chain
from micro.codec import DecodeError
from micro.context import Context, reset_current, set_current
from micro.spec import AnyMethod, ServiceSpec
from micro.transport.base import InboundCall

__all__ = [
    "Dispatcher",
    "Handler",
    "HandlerCall",
    "HandlerNext",
    "ServerMiddleware",
    "stray_methods",
]

log = logging.getLogger(__name__)


class Handler:
    """Base of generated handler classes (a marker; no public attributes)."""

    __slots__ = ()


@dataclass
class HandlerCall:
    """One call as seen by server middleware.

    ``request`` is the request message (``UNARY``/``SERVER_STREAM``) or the async
    iterator of request messages (``CLIENT_STREAM``/``BIDI_STREAM``); a middleware may
    replace it before calling ``next``.
    """

    method: AnyMethod
    context: Context
    request: Any
    handler: object
    _send: Callable[[Any], Awaitable[None]] = field(repr=False, compare=False)


HandlerNext: TypeAlias = Callable[[HandlerCall], Awaitable[Any]]
ServerMiddleware: TypeAlias = Callable[[HandlerCall, HandlerNext], Awaitable[Any]]


async def _invoke(call: HandlerCall) -> Any:
    """The innermost step: run the handler method, streaming its output if any."""
    func = getattr(call.handler, call.method.handler_attr)
    result = func(call.request, call.context)
    if call.method.kind.server_streaming:
        if inspect.isawaitable(result) and not hasattr(result, "__anext__"):
            result = await result
        if not hasattr(result, "__aiter__"):
            raise TypeError(
                f"{type(call.handler).__qualname__}.{call.method.handler_attr} serves the "
                f"{call.method.kind.value} rpc {call.method.name}: it must yield its responses "
                f"(an async generator: `async def ...: yield reply`), but it returned "
                f"{type(result).__qualname__}"
            )
        stream: AsyncIterator[Any] = result.__aiter__()
        try:
            async for item in stream:
                await call._send(item)
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()
        return None
    if inspect.isawaitable(result):
        result = await result
    return result


async def _requests(inbound: InboundCall) -> AsyncIterator[Any]:
    while True:
        message = await inbound.recv()
        if message is None:
            return
        yield message


def stray_methods(handler: object, served: set[str]) -> list[tuple[str, str | None]]:
    """The public async methods of ``handler`` that look like handlers of an rpc its
    services do not have (``ecoh`` for ``echo``), with the closest served name if any.

    Looks like a handler: takes ``(request, context)``, or its name is one edit or so away
    from a served one. Private names (``_helper``) and plain functions never count."""
    found: list[tuple[str, str | None]] = []
    for name in dir(type(handler)):
        if name.startswith("_") or name in served:
            continue
        attr = inspect.getattr_static(type(handler), name, None)
        if not (inspect.iscoroutinefunction(attr) or inspect.isasyncgenfunction(attr)):
            continue  # staticmethod, classmethod, property, sync helpers
        close = difflib.get_close_matches(name, served, n=1, cutoff=0.75)
        try:
            params = [
                p
                for p in inspect.signature(attr).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            ]
        except (TypeError, ValueError):  # pragma: no cover - a C or odd callable
            params = []
        if close or len(params) == 3:  # self, request, context
            found.append((name, close[0] if close else None))
    return found


class Dispatcher:
    """Routes incoming calls (``dispatch(call)``) to registered handlers.

    ``on_call_start`` / ``on_call_end`` let the owner (:class:`micro.Service`) count
    in-flight calls; ``accepting(method)`` lets it refuse new calls while draining
    (they are answered 503 / ``UNAVAILABLE`` so clients retry elsewhere).
    """

    def __init__(self, *, name: str, middleware: Sequence[ServerMiddleware] = ()) -> None:
        self._name = name
        self._routes: dict[str, tuple[AnyMethod, object]] = {}
        self._middleware = tuple(middleware)
        self._builtin: tuple[ServerMiddleware, ...] = ()
        self._chain = chain(self._middleware, _invoke)
        self.accepting: Callable[[AnyMethod], bool] = lambda method: True
        self.on_call_start: Callable[[AnyMethod], None] = lambda method: None
        self.on_call_end: Callable[[AnyMethod], None] = lambda method: None

    def set_builtin(self, builtin: Sequence[ServerMiddleware]) -> None:
        """Run ``builtin`` (the owner's own middleware, such as auth) outside the
        middleware given at construction; replaces what an earlier call set."""
        self._builtin = tuple(builtin)
        self._chain = chain((*self._builtin, *self._middleware), _invoke)

    @property
    def middleware(self) -> tuple[ServerMiddleware, ...]:
        """Every middleware calls run through, the built-in ones first."""
        return (*self._builtin, *self._middleware)

    def add(self, spec: ServiceSpec, handler: object) -> None:
        for method in spec.methods:
            if method.path in self._routes:
                raise ValueError(f"a handler for {method.path} is already registered")
            if not callable(getattr(handler, method.handler_attr, None)):
                raise TypeError(
                    f"{type(handler).__qualname__} has no method {method.handler_attr!r} "
                    f"for {method.name}"
                )
        for method in spec.methods:
            self._routes[method.path] = (method, handler)

    @property
    def routes(self) -> Mapping[str, AnyMethod]:
        return {path: method for path, (method, _) in self._routes.items()}

    async def dispatch(self, inbound: InboundCall) -> None:
        method, handler = self._routes[inbound.method.path]
        ctx = Context(
            method,
            metadata=lambda: inbound.metadata,  # both resolved only if something asks
            deadline=inbound.deadline,
            peer=lambda: inbound.peer,
        )
        if not self.accepting(method):
            await inbound.finish(
                errors.unavailable(self._name, f"{self._name} is shutting down"),
                [(errors.UNPROCESSED_METADATA_KEY, "draining")],  # no handler ran: retryable
            )
            return
        self.on_call_start(method)
        token = set_current(ctx)  # what `with use(ctx)` does, without its generator
        try:
            await self._run(inbound, method, handler, ctx)
        finally:
            reset_current(token)
            self.on_call_end(method)

    async def _run(
        self, inbound: InboundCall, method: AnyMethod, handler: object, ctx: Context
    ) -> None:
        answer = ctx.response  # the call's response metadata

        async def send(item: Any) -> None:
            if not answer.headers_sent:  # once, not a header copy per streamed item
                if answer.compression is not None:
                    inbound.set_compression(answer.compression)
                await inbound.send_header(answer.send_headers())
            await inbound.send(item)

        error: errors.Error | None = None
        try:
            request: Any
            if method.kind.client_streaming:
                request = _requests(inbound)
            else:
                request = await inbound.recv()
                if request is None:
                    raise errors.bad_request(self._name, f"{method.name}: missing request message")
            call = HandlerCall(method, ctx, request, handler, send)
            response = await self._chain(call)
            if not method.kind.server_streaming:
                await send(response)
        except asyncio.CancelledError:
            raise
        except errors.Error as exc:
            error = exc
        except DecodeError as exc:
            error = errors.bad_request(self._name, f"{method.name}: invalid request: {exc}")
        except Exception:
            log.exception("%s: handler %s failed", self._name, method.name)
            error = errors.internal_server_error(self._name, "internal server error")
        trailers = answer.trailers
        if error is not None and not answer.headers_sent:
            trailers = answer.send_headers() + trailers
        await inbound.finish(error, trailers)
