"""gRPC status codes, and the one table that maps them to HTTP status codes.

:class:`Status` has the values of the gRPC spec (``grpc-status`` on the wire); the
transports translate it to their library's own type, so nothing else depends on one.

The HTTP mapping is Google's (``google/rpc/code.proto``, as grpc-gateway and Envoy use
it): ``DEADLINE_EXCEEDED`` is 504, ``FAILED_PRECONDITION`` and ``OUT_OF_RANGE`` are 400.
A few HTTP codes that are no status's own still travel as the closest status
(405 and 408, 412, 416); everything else unknown is ``UNKNOWN``.
"""

from __future__ import annotations

import enum
import http

__all__ = ["Status", "http_reason", "http_status", "status_for_http"]


class Status(enum.IntEnum):
    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


#: status -> HTTP code, and for an HTTP code its status: the first status listed with it
_TABLE: tuple[tuple[Status, int], ...] = (
    (Status.OK, 200),
    (Status.INVALID_ARGUMENT, 400),
    (Status.FAILED_PRECONDITION, 400),
    (Status.OUT_OF_RANGE, 400),
    (Status.UNAUTHENTICATED, 401),
    (Status.PERMISSION_DENIED, 403),
    (Status.NOT_FOUND, 404),
    (Status.ALREADY_EXISTS, 409),
    (Status.ABORTED, 409),
    (Status.RESOURCE_EXHAUSTED, 429),
    (Status.CANCELLED, 499),
    (Status.INTERNAL, 500),
    (Status.UNKNOWN, 500),
    (Status.DATA_LOSS, 500),
    (Status.UNIMPLEMENTED, 501),
    (Status.UNAVAILABLE, 503),
    (Status.DEADLINE_EXCEEDED, 504),
)
#: HTTP codes that are no status's own, and the status they travel as
_HTTP_ONLY = {
    405: Status.UNIMPLEMENTED,
    408: Status.DEADLINE_EXCEEDED,
    412: Status.FAILED_PRECONDITION,
    416: Status.OUT_OF_RANGE,
}

_TO_HTTP = dict(_TABLE)
_FROM_HTTP: dict[int, Status] = {**_HTTP_ONLY}
for _status, _code in _TABLE:
    _FROM_HTTP.setdefault(_code, _status)


def http_status(status: Status) -> int:
    """The HTTP status code for a gRPC status."""
    return _TO_HTTP[status]


def status_for_http(code: int) -> Status:
    """The gRPC status an HTTP(-like) code travels as; ``UNKNOWN`` if none fits."""
    return _FROM_HTTP.get(code, Status.UNKNOWN)


def http_reason(code: int) -> str:
    """The reason phrase of an HTTP status code (``""`` for a code without one)."""
    try:
        return http.HTTPStatus(code).phrase
    except ValueError:
        return ""
