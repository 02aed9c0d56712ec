"""Server-streaming responses: newline-delimited JSON or Server-Sent Events, by `Accept`.

* `Accept: text/event-stream`: SSE. Each message is an event `data: {json}`; an error after
  the stream started is an event `event: error` with the error JSON as its data.
* anything else (`application/x-ndjson`, `application/json`, `*/*`): NDJSON, one JSON
  message per line; an error after the stream started is a last line `{"error": {...}}`.

An error before the first message is an ordinary JSON error response with its HTTP status.
"""

from __future__ import annotations

import enum
import json
from typing import Any

__all__ = ["StreamFormat"]


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
