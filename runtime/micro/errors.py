"""Errors that cross the wire intact (go-micro style).

An :class:`Error` has an ``id`` (who raised it, usually a service name), an HTTP-like
``code``, a human ``detail`` and a ``status`` text (the HTTP reason phrase).

Wire format (server -> client):

* ``grpc-status``: the gRPC status mapped from ``code`` (:func:`grpc_status_for`),
  or the explicit ``grpc_status`` the error was built with;
* ``grpc-message``: ``detail``;
* trailing metadata ``micro-error``: the error as compact ASCII JSON
  ``{"id": ..., "code": ..., "detail": ..., "status": ...}``.

A micro client rebuilds the very same :class:`Error` from ``micro-error``; an error
from a plain gRPC server (no ``micro-error`` trailer) becomes an :class:`Error` via
:func:`from_grpc`, with ``code`` mapped from the gRPC status and the status preserved
in :attr:`Error.grpc_status`.

:attr:`Error.origin` says where an error came from: :attr:`Origin.REMOTE` (a micro error
the peer sent, rebuilt from ``micro-error``), :attr:`Origin.STATUS` (a bare gRPC status,
from a plain gRPC server or a transport) or :attr:`Origin.LOCAL` (raised in this process:
by the client itself, e.g. no node or deadline passed, or by application code).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from micro.status import Status, http_reason, http_status, status_for_http

if TYPE_CHECKING:
    from micro.spec import AnyMethod

__all__ = [
    "CLIENT_ID",
    "ERROR_METADATA_KEY",
    "UNPROCESSED_METADATA_KEY",
    "Error",
    "Origin",
    "Status",
    "bad_request",
    "code_for",
    "conflict",
    "forbidden",
    "from_grpc",
    "grpc_status_for",
    "internal_server_error",
    "method_not_allowed",
    "not_found",
    "timeout",
    "unauthorized",
    "unavailable",
    "unimplemented",
]

#: trailing metadata key carrying the JSON-encoded error
ERROR_METADATA_KEY = "micro-error"
#: the id of the errors a client raises itself (no node, deadline passed, connection lost)
CLIENT_ID = "micro.client"
#: trailing metadata key a server adds when it refused a call before any handler ran (it
#: is draining): the client may run the call on another node whatever its method
UNPROCESSED_METADATA_KEY = "micro-unprocessed"


def grpc_status_for(code: int) -> Status:
    """The gRPC status an HTTP-like code is sent as (``UNKNOWN`` if there is no match)."""
    return status_for_http(code)


def code_for(status: Status) -> int:
    """The HTTP-like code for a gRPC status (:func:`micro.status.http_status`)."""
    return http_status(status)


class Origin(enum.Enum):
    """Where an :class:`Error` came from."""

    LOCAL = "local"  #: raised in this process (application code or the client itself)
    REMOTE = "remote"  #: a micro error sent by the peer (the ``micro-error`` trailer)
    STATUS = "status"  #: a bare gRPC status, without a micro error


class Error(Exception):
    """An error with a stable identity across services.

    ``status`` defaults to the reason phrase of ``code``. ``grpc_status`` defaults to
    the status mapped from ``code``; pass it explicitly to preserve a status received
    from (or meant for) a plain gRPC peer.
    """

    def __init__(
        self,
        id: str = "",
        code: int = 500,
        detail: str = "",
        status: str | None = None,
        *,
        grpc_status: Status | None = None,
        origin: Origin = Origin.LOCAL,
    ) -> None:
        self.id = id
        self.code = int(code)
        self.detail = detail
        self.status = http_reason(self.code) if status is None else status
        self._grpc_status = grpc_status
        self.origin = origin
        super().__init__(self.to_json())

    @property
    def grpc_status(self) -> Status:
        """The gRPC status this error travels as (never ``OK``)."""
        status = self._grpc_status if self._grpc_status is not None else grpc_status_for(self.code)
        return Status.UNKNOWN if status is Status.OK else status

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "code": self.code, "detail": self.detail, "status": self.status}

    def to_json(self) -> str:
        """Compact, ASCII-only JSON (safe as a gRPC metadata value)."""
        return json.dumps(self.to_dict(), ensure_ascii=True, separators=(",", ":"))

    @classmethod
    def parse(
        cls,
        text: str | bytes,
        *,
        grpc_status: Status | None = None,
        origin: Origin = Origin.LOCAL,
    ) -> Error:
        """Inverse of :meth:`to_json`; raises ``ValueError`` on malformed input."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"error JSON must be an object, got {data!r}")
        id_, code, detail, status = (
            data.get("id", ""),
            data.get("code", 500),
            data.get("detail", ""),
            data.get("status"),
        )
        if (
            not isinstance(id_, str)
            or isinstance(code, bool)
            or not isinstance(code, int)
            or not isinstance(detail, str)
            or not (status is None or isinstance(status, str))
        ):
            raise ValueError(f"malformed error JSON: {data!r}")
        return cls(id_, code, detail, status, grpc_status=grpc_status, origin=origin)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Error):
            return NotImplemented
        return (self.id, self.code, self.detail, self.status) == (
            other.id,
            other.code,
            other.detail,
            other.status,
        )

    def __hash__(self) -> int:
        return hash((self.id, self.code, self.detail, self.status))

    def __repr__(self) -> str:
        return (
            f"Error(id={self.id!r}, code={self.code}, detail={self.detail!r}, "
            f"status={self.status!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild,
            (self.id, self.code, self.detail, self.status, self._grpc_status, self.origin),
        )


def _rebuild(
    id: str, code: int, detail: str, status: str, grpc_status: Status | None, origin: Origin
) -> Error:
    return Error(id, code, detail, status, grpc_status=grpc_status, origin=origin)


def from_grpc(
    status: Status,
    message: str | None = None,
    trailers: Mapping[str, Any] | None = None,
) -> Error:
    """Build an :class:`Error` from a gRPC status (+ trailing metadata, if any).

    If ``trailers`` carry ``micro-error`` it is decoded (the original error);
    otherwise ``code`` is mapped from ``status`` and ``detail`` is ``message``.
    The received gRPC status is kept in :attr:`Error.grpc_status` either way.
    """
    if trailers is not None:
        raw = trailers.get(ERROR_METADATA_KEY)
        if isinstance(raw, str | bytes):
            try:
                return Error.parse(raw, grpc_status=status, origin=Origin.REMOTE)
            except ValueError:
                pass
    return Error("", code_for(status), message or "", grpc_status=status, origin=Origin.STATUS)


def bad_request(id: str, detail: str = "") -> Error:
    return Error(id, 400, detail)


def unauthorized(id: str, detail: str = "") -> Error:
    return Error(id, 401, detail)


def forbidden(id: str, detail: str = "") -> Error:
    return Error(id, 403, detail)


def not_found(id: str, detail: str = "") -> Error:
    return Error(id, 404, detail)


def method_not_allowed(id: str, detail: str = "") -> Error:
    return Error(id, 405, detail)


def timeout(id: str, detail: str = "") -> Error:
    """408; travels as ``DEADLINE_EXCEEDED``."""
    return Error(id, 408, detail)


def conflict(id: str, detail: str = "") -> Error:
    return Error(id, 409, detail)


def internal_server_error(id: str, detail: str = "") -> Error:
    return Error(id, 500, detail)


def unavailable(id: str, detail: str = "") -> Error:
    """503; travels as ``UNAVAILABLE``. Clients retry it on another node only if the
    method is idempotent: a handler that raises it has run (see :mod:`micro.client`)."""
    return Error(id, 503, detail)


def unimplemented(method: AnyMethod) -> Error:
    """What a default (generated) handler method raises; travels as ``UNIMPLEMENTED``."""
    service = method.path.strip("/").split("/")[0] or method.name
    return Error(service, 501, f"method {method.name} is not implemented")
