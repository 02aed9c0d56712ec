"""Streams over HTTP/1.1: NDJSON or Server-Sent Events out, NDJSON in.

Responses of server- and bidi-streaming calls, by `Accept`:

* `Accept: text/event-stream`: SSE. Each message is an event `data: {json}`; an error after
  the stream started is an event `event: error` with the error JSON as its data.
* anything else (`application/x-ndjson`, `application/json`, `*/*`): NDJSON, one JSON
  message per line; an error after the stream started is a last line `{"error": {...}}`.

An error before the first message is an ordinary JSON error response with its HTTP status.

Requests of client- and bidi-streaming calls: the body is NDJSON, one JSON request
message per line (blank lines are skipped, the last line needs no newline). The body
limit applies to each line, not to the stream.

A bidi call runs both ways at once (:class:`DuplexResponse`): each request line goes to
the service as it arrives, and each answer goes back as it comes, so a client that sends
line by line and reads as it goes holds a conversation over one HTTP request.
"""

from __future__ import annotations

import asyncio
import enum
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from google.protobuf.message import Message
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

import micro
from micro.gateway.errors import HttpError, from_micro

__all__ = ["DuplexResponse", "StreamFormat", "feed", "ndjson_lines", "next_answer"]


def _compact(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


class StreamFormat(enum.Enum):
    NDJSON = "application/x-ndjson"
    SSE = "text/event-stream"

    @classmethod
    def negotiate(cls, accept: str) -> StreamFormat:
        return cls.SSE if "text/event-stream" in accept.lower() else cls.NDJSON

    @property
    def media_type(self) -> str:
        return self.value

    def message(self, data: Any) -> bytes:
        if self is StreamFormat.SSE:
            return f"data: {_compact(data)}\n\n".encode()
        return (_compact(data) + "\n").encode()

    def error(self, body: dict[str, Any]) -> bytes:
        if self is StreamFormat.SSE:
            return f"event: error\ndata: {_compact(body)}\n\n".encode()
        return (_compact({"error": body}) + "\n").encode()


async def ndjson_lines(
    chunks: AsyncIterator[bytes], limit: int
) -> AsyncIterator[tuple[int, bytes]]:
    """(line number, line) for each non-blank line of an NDJSON body, as it arrives."""
    pending: list[bytes] = []  # the unfinished line, in pieces (no re-scan per chunk)
    size = number = 0
    async for chunk in chunks:
        *ends, rest = chunk.split(b"\n")
        for end in ends:
            line = b"".join([*pending, end])
            pending, size, number = [], 0, number + 1
            _check(len(line), limit, number)
            if line.strip():
                yield number, line
        pending.append(rest)
        size += len(rest)
        _check(size, limit, number + 1)
    line = b"".join(pending)
    if line.strip():
        yield number + 1, line


def _check(size: int, limit: int, number: int) -> None:
    if size > limit:
        raise HttpError(413, f"line {number} of the body exceeds the limit of {limit} bytes")


async def feed(
    stream: micro.BidiStream[Message, Message],
    requests: AsyncIterator[Message],
    receive: Receive,
) -> None:
    """Send each request to ``stream`` and half-close it; then wait for the client to go.

    Returns only once the HTTP client disconnected; raises what reading the body raised
    (:class:`HttpError` for a bad line, :class:`ClientDisconnect` mid-body). Once the
    call has ended (the service answered with a status), the rest of the body is left
    unread: the call's outcome is what the response reports."""
    try:
        async for request in requests:
            await stream.send(request)
        await stream.close_send()
    except micro.Error:
        pass  # the call is over; the response side reports how it ended
    while (await receive())["type"] != "http.disconnect":
        pass


async def next_answer(
    stream: micro.BidiStream[Message, Message], feeder: asyncio.Task[None]
) -> Message | None:
    """The next answer of ``stream``; the feeder's failure (a bad line) or the client
    leaving ends the wait even while the service is silent. Raises the service's error,
    the feeder's, or :class:`ClientDisconnect`."""
    answer = asyncio.ensure_future(stream.recv())
    await asyncio.wait({answer, feeder}, return_when=asyncio.FIRST_COMPLETED)
    if answer.done():
        return answer.result()
    answer.cancel()
    feeder.result()  # raises what reading the body raised
    raise ClientDisconnect()  # the feeder returns only once the client has gone


class DuplexResponse:
    """The answers of a running bidi call, streamed while :func:`feed` sends its requests.

    Starlette's StreamingResponse would read ``receive`` itself to notice a disconnect and
    so swallow body chunks still to come; here the feeder alone reads it."""

    def __init__(
        self,
        stream: micro.BidiStream[Message, Message],
        first: Message | None,
        feeder: asyncio.Task[None],
        fmt: StreamFormat,
        render: Callable[[Message], Any],
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        self._stream, self._first, self._feeder = stream, first, feeder
        self._fmt, self._render = fmt, render
        self._headers = [
            (b"content-type", fmt.media_type.encode()),
            (b"cache-control", b"no-cache"),
            *headers,
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fmt = self._fmt
        await send({"type": "http.response.start", "status": 200, "headers": self._headers})
        error: dict[str, Any] | None = None
        try:
            reply = self._first
            while reply is not None:
                await send(
                    {
                        "type": "http.response.body",
                        "body": fmt.message(self._render(reply)),
                        "more_body": True,
                    }
                )
                reply = await next_answer(self._stream, self._feeder)
        except ClientDisconnect:
            return  # nobody is left to answer
        except micro.Error as exc:
            error = from_micro(exc).body()
        except HttpError as exc:
            error = exc.body()
        finally:
            self._feeder.cancel()
            await self._stream.aclose()
        end = fmt.error(error) if error is not None else b""
        await send({"type": "http.response.body", "body": end, "more_body": False})
