"""HTTP errors of the gateway, and how service errors map to HTTP.

Every error response is JSON `{"id", "code", "detail", "status"}` (a 404 adds `"routes"`,
the closest routes), the shape of a `micro.errors.Error`:

* a `micro.errors.Error` raised by a service keeps its own code as the HTTP status;
* a bare gRPC status (a plain gRPC server, or the gateway's own client failing to reach a
  node or timing out) maps by the standard gRPC-to-HTTP table (:data:`GRPC_TO_HTTP`).
"""

from __future__ import annotations

import http
from dataclasses import dataclass, field
from typing import Any

import micro
from micro.errors import Status, code_for

__all__ = ["GATEWAY_ID", "GRPC_TO_HTTP", "HttpError", "from_micro", "reason"]

GATEWAY_ID = "micro.api"

#: google.rpc.Code -> HTTP, as grpc-gateway and Google APIs map them
GRPC_TO_HTTP: dict[Status, int] = {
    Status.OK: 200,
    Status.CANCELLED: 499,
    Status.UNKNOWN: 500,
    Status.INVALID_ARGUMENT: 400,
    Status.DEADLINE_EXCEEDED: 504,
    Status.NOT_FOUND: 404,
    Status.ALREADY_EXISTS: 409,
    Status.PERMISSION_DENIED: 403,
    Status.UNAUTHENTICATED: 401,
    Status.RESOURCE_EXHAUSTED: 429,
    Status.FAILED_PRECONDITION: 400,
    Status.ABORTED: 409,
    Status.OUT_OF_RANGE: 400,
    Status.UNIMPLEMENTED: 501,
    Status.INTERNAL: 500,
    Status.UNAVAILABLE: 503,
    Status.DATA_LOSS: 500,
}

#: error ids of the micro client itself (no node, connection lost, deadline passed)
_CLIENT_IDS = frozenset({"micro.client", "micro.lookup"})


def reason(code: int) -> str:
    try:
        return http.HTTPStatus(code).phrase
    except ValueError:
        return ""


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
            self.status = reason(self.code)

    def body(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "code": self.code,
            "detail": self.detail,
            "status": self.status,
            **self.extra,
        }


def _bare_status(exc: micro.Error) -> bool:
    """No micro error came back, only a gRPC status (rebuilt by `errors.from_grpc`)."""
    if exc.id in _CLIENT_IDS:
        return True
    return exc.id == "" and exc.code == code_for(exc.grpc_status) and exc.status == reason(exc.code)


def from_micro(exc: micro.Error) -> HttpError:
    if _bare_status(exc):
        code = GRPC_TO_HTTP.get(exc.grpc_status, 500)
        return HttpError(code, exc.detail, id=exc.id)
    code = exc.code if 400 <= exc.code <= 599 else 500
    return HttpError(code, exc.detail, id=exc.id, status=exc.status)
