"""The middleware chain, one implementation for client and server middleware."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

__all__ = ["chain"]

C = TypeVar("C")

Next = Callable[[C], Awaitable[Any]]


def chain(middleware: Sequence[Callable[[C, Next[C]], Awaitable[Any]]], last: Next[C]) -> Next[C]:
    """``last`` wrapped in ``middleware``, the first one outermost: each is called as
    ``mw(call, next)`` and ``next(call)`` runs the rest of the chain."""
    nxt = last
    for mw in reversed(middleware):

        def bind(mw: Callable[[C, Next[C]], Awaitable[Any]], nxt: Next[C]) -> Next[C]:
            async def step(call: C) -> Any:
                return await mw(call, nxt)

            return step

        nxt = bind(mw, nxt)
    return nxt
