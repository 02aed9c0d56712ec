"""Waiting in tests: poll a condition until it holds, bounded in time.

    await eventually(lambda: len(got) == 2, what="both deliveries")
    reply = await eventually(fetch_reply, timeout=10)  # an async check: awaited each time
    eventually_sync(lambda: "READY" in node.log, what="the node started")  # no event loop

``check`` returns a value: a truthy one ends the wait and is returned; a falsy one, or an
exception of ``retry_on`` (a failed ``assert`` by default; say ``retry_on=(OSError,)`` to
wait through refused connections), means "not yet". Any other exception ends the wait at
once: a check that breaks is a failure, not a reason to keep trying. When ``timeout``
seconds pass, AssertionError names ``what`` and the last value or exception seen.

Prefer an event the code under test offers (an ``asyncio.Event``, a watch, a ready line);
poll only where there is none.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import NoReturn, TypeVar, overload

T = TypeVar("T")

TIMEOUT = 5.0
INTERVAL = 0.02

Retry = tuple[type[BaseException], ...]


class _Attempts:
    """The policy shared by both waits: the time bound, what was seen last, the failure."""

    def __init__(self, timeout: float, what: str, retry_on: Retry) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout}")
        self.timeout, self.what, self.retry_on = timeout, what, retry_on
        self.deadline = time.monotonic() + timeout
        self.last: object = None
        self.error: BaseException | None = None

    def saw(self, value: object) -> bool:
        """Record a value; true when it ends the wait."""
        self.last, self.error = value, None
        return bool(value)

    def failed(self, error: BaseException) -> None:
        """Record an exception from the check, re-raising one that is not a "not yet"."""
        if not isinstance(error, self.retry_on):
            raise error
        self.error = error

    def pause(self, interval: float) -> float:
        """How long to sleep before the next check; raises once the time is up."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            self.give_up()
        return min(interval, left)

    def give_up(self) -> NoReturn:
        seen = f"raised {self.error!r}" if self.error is not None else f"last {self.last!r}"
        message = f"not within {self.timeout:g}s: {self.what or 'the condition'} ({seen})"
        raise AssertionError(message) from self.error


@overload
async def eventually(
    check: Callable[[], Awaitable[T]],
    *,
    timeout: float = ...,
    interval: float = ...,
    what: str = ...,
    retry_on: Retry = ...,
) -> T: ...


@overload
async def eventually(
    check: Callable[[], T],
    *,
    timeout: float = ...,
    interval: float = ...,
    what: str = ...,
    retry_on: Retry = ...,
) -> T: ...


async def eventually(
    check: Callable[[], object],
    *,
    timeout: float = TIMEOUT,
    interval: float = INTERVAL,
    what: str = "",
    retry_on: Retry = (AssertionError,),
) -> object:
    """Await until ``check()`` (awaited when it returns an awaitable) is truthy; return it."""
    attempts = _Attempts(timeout, what, retry_on)
    while True:
        try:
            value = check()
            if inspect.isawaitable(value):
                value = await value
            if attempts.saw(value):
                return value
        except Exception as error:
            attempts.failed(error)
        await asyncio.sleep(attempts.pause(interval))


def eventually_sync(
    check: Callable[[], T],
    *,
    timeout: float = TIMEOUT,
    interval: float = INTERVAL,
    what: str = "",
    retry_on: Retry = (AssertionError,),
) -> T:
    """:func:`eventually` for code outside an event loop: blocks between checks."""
    attempts = _Attempts(timeout, what, retry_on)
    while True:
        try:
            value = check()
            if attempts.saw(value):
                return value
        except Exception as error:
            attempts.failed(error)
        time.sleep(attempts.pause(interval))
