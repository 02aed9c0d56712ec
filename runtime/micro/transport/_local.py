"""The errors a client transport raises for what happened on its own side of a call
(deadline, no connection, a lost one, an unreadable reply), worded alike on every
transport."""

from __future__ import annotations

from micro.errors import CLIENT_ID, Error
from micro.spec import AnyMethod
from micro.status import Status

__all__ = [
    "PLAINTEXT_HINT",
    "connection_lost",
    "deadline_exceeded",
    "failed",
    "invalid_response",
    "unreachable",
]

#: added to what a plaintext client reports when the server hung up before answering,
#: as a TLS server does on a plaintext connection
PLAINTEXT_HINT = (
    " (this client is plaintext: if the server serves TLS, set MICRO_TLS_CA, and "
    "MICRO_TLS_CERT / MICRO_TLS_KEY for mTLS)"
)


def deadline_exceeded(method: AnyMethod) -> Error:
    return Error(
        CLIENT_ID, 408, f"{method.name}: deadline exceeded", grpc_status=Status.DEADLINE_EXCEEDED
    )


def unreachable(method: AnyMethod, address: str, why: object) -> Error:
    return Error(
        CLIENT_ID,
        503,
        f"{method.name}: cannot reach {address}: {why}",
        grpc_status=Status.UNAVAILABLE,
    )


def connection_lost(method: AnyMethod, address: str, received: int, why: object) -> Error:
    """The connection went away after the request went out, before the call's status."""
    after = f" after {received} response message(s)" if received else ""
    return Error(
        CLIENT_ID,
        503,
        f"{method.name}: connection to {address} lost{after}, before the call's status: {why}",
        grpc_status=Status.UNAVAILABLE,
    )


def invalid_response(method: AnyMethod, address: str, why: object) -> Error:
    return Error(
        CLIENT_ID,
        500,
        f"{method.name}: invalid response from {address}: {why}",
        grpc_status=Status.INTERNAL,
    )


def failed(method: AnyMethod, exc: BaseException) -> Error:
    return Error(
        CLIENT_ID, 500, f"{method.name}: {type(exc).__name__}: {exc}", grpc_status=Status.INTERNAL
    )
