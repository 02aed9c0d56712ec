"""HTTP errors of the gateway, and how the errors of calls and reflection map to HTTP.

Every error response is JSON `{"id", "code", "detail", "status"}` (a 404 adds `"routes"`,
the closest routes), the shape of a `micro.errors.Error`:

* a `micro.errors.Error` a service sent keeps its own code as the HTTP status;
* a bare gRPC status (a plain gRPC server) and the gateway's own client errors (no node,
  deadline passed) map by the one gRPC-to-HTTP table, :func:`micro.status.http_status`;
  a 5xx of the gateway's own client says what failed, never a node's address (logged);
* reflection failures (:mod:`micro.dynamic`): JSON that does not fit the message is 400,
  a service whose reflection is missing or broken is 502.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import micro
from micro import dynamic
from micro.errors import Origin, Status
from micro.status import http_reason, http_status

__all__ = ["GATEWAY_ID", "HttpError", "from_dynamic", "from_micro"]

GATEWAY_ID = "micro.api"

log = logging.getLogger("micro.api")


@dataclass
class HttpError(Exception):
    code: int
    detail: str
    id: str = GATEWAY_ID
    status: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.detail)
        if not self.status:
            self.status = http_reason(self.code)

    def body(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "code": self.code,
            "detail": self.detail,
            "status": self.status,
            **self.extra,
        }


def from_micro(exc: micro.Error) -> HttpError:
    if exc.origin is Origin.LOCAL and exc.grpc_status in (Status.UNAVAILABLE, Status.INTERNAL):
        return _without_internals(exc)
    if exc.origin is not Origin.REMOTE:
        return HttpError(http_status(exc.grpc_status), exc.detail, id=exc.id)
    code = exc.code if 400 <= exc.code <= 599 else 500
    return HttpError(code, exc.detail, id=exc.id, status=exc.status)


def _without_internals(exc: micro.Error) -> HttpError:
    """The gateway's own client failed (no node reachable, a connection lost, an unreadable
    reply: UNAVAILABLE or INTERNAL). Its detail names node addresses, which stay in the
    gateway's log; the caller gets what failed (the rpc or service the detail starts
    with) and the status only."""
    code = http_status(exc.grpc_status)
    subject = exc.detail.split(": ", 1)[0]
    log.warning("%d %s", code, exc.detail)
    return HttpError(code, f"{subject}: {http_reason(code).lower()}", id=exc.id)


def from_dynamic(exc: dynamic.ReflectionError, where: str) -> HttpError:
    """A reflection failure while serving ``where`` (a service, or a part of the request)."""
    if isinstance(exc, dynamic.InvalidMessage):
        return HttpError(400, f"{where}: {exc}")
    return HttpError(502, f"{where}: {exc}")
