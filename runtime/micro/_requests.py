"""A client's own mistakes with its requests, reported as ``TypeError`` in its process
(not as a server error): the wrong type, or a value a field cannot hold."""

from __future__ import annotations

from micro import codec
from micro.spec import AnyMethod

__all__ = ["encoding_error", "type_name", "wrong_request"]


def type_name(tp: type) -> str:
    return getattr(tp, "__qualname__", repr(tp))


def wrong_request(method: AnyMethod, request: object) -> TypeError:
    """A request of the wrong type, caught in the caller's process before it is sent."""
    expected = type_name(method.request_type)
    hint = f" (build one: {expected}(**...))" if isinstance(request, dict) else ""
    return TypeError(
        f"{method.name} takes a request of type {expected}, got {type_name(type(request))}{hint}"
    )


def encoding_error(method: AnyMethod, request: object) -> TypeError | None:
    """After a call failed with an unexpected exception: whether its request (of the right
    type) cannot be encoded, e.g. ``HelloRequest(name=5)``. Costs nothing on success."""
    try:
        codec.encode(request, method.request_type)
    except Exception as exc:
        return TypeError(
            f"{method.name}: the {type_name(method.request_type)} request cannot be encoded "
            f"({type(exc).__name__}: {exc}); does a field hold a value of the wrong type?"
        )
    return None
