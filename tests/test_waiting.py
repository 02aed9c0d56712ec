"""The tests' one wait helper: returns the first truthy value, bounded, says what it saw."""

from __future__ import annotations

import time

import pytest

from tests.waiting import eventually, eventually_sync


async def test_returns_the_first_truthy_value_of_a_plain_or_async_check() -> None:
    values = iter([0, [], "ready"])
    assert await eventually(lambda: next(values), interval=0.001) == "ready"

    calls = 0

    async def third_time() -> int:
        nonlocal calls
        calls += 1
        return calls if calls == 3 else 0

    assert await eventually(third_time, interval=0.001) == 3


async def test_times_out_naming_what_and_the_last_value() -> None:
    started = time.monotonic()
    green: list[str] = []
    with pytest.raises(AssertionError, match=r"not within 0\.2s: the light \(last \[\]\)"):
        await eventually(lambda: green, timeout=0.2, what="the light")
    assert 0.2 <= time.monotonic() - started < 2

    with pytest.raises(AssertionError, match=r"not within 0\.1s: the condition \(last 0\)"):
        await eventually(int, timeout=0.1)


async def test_a_failed_assert_is_not_yet_and_is_reported_and_chained() -> None:
    reads = iter([1, 2, 3])

    def at_least_three() -> int:
        value = next(reads, 2)
        assert value >= 3, f"only {value}"
        return value

    assert await eventually(at_least_three, interval=0.001) == 3

    async def never() -> bool:
        raise AssertionError("only 2")

    with pytest.raises(AssertionError, match=r"the count \(raised AssertionError\('only 2'\)\)"):
        await eventually(never, timeout=0.1, what="the count")


async def test_retry_on_waits_through_other_exceptions() -> None:
    def refused() -> bool:
        raise ConnectionRefusedError("nobody home")

    with pytest.raises(AssertionError, match="raised ConnectionRefusedError") as info:
        await eventually(refused, timeout=0.1, what="the port", retry_on=(OSError,))
    assert isinstance(info.value.__cause__, ConnectionRefusedError)


async def test_any_other_exception_ends_the_wait_at_once() -> None:
    calls = 0

    def exited() -> bool:
        nonlocal calls
        calls += 1
        raise RuntimeError("the process exited")

    with pytest.raises(RuntimeError, match="the process exited"):
        await eventually(exited, timeout=5)
    with pytest.raises(RuntimeError, match="the process exited"):
        eventually_sync(exited, timeout=5, retry_on=(OSError,))
    assert calls == 2


def test_the_sync_twin_shares_the_policy() -> None:
    values = iter([None, "", 7])
    assert eventually_sync(lambda: next(values), interval=0.001) == 7
    with pytest.raises(AssertionError, match=r"not within 0\.1s: the file \(last False\)"):
        eventually_sync(lambda: False, timeout=0.1, what="the file")
    with pytest.raises(ValueError, match="timeout must be positive"):
        eventually_sync(lambda: True, timeout=0)
