"""PerLoop: one object per event loop, closed as asyncio.run ends its loop."""

from __future__ import annotations

import asyncio
import logging

import pytest

from micro._per_loop import PerLoop


class Thing:
    def __init__(self, log: list[str], fail: bool = False) -> None:
        self.log = log
        self.fail = fail
        self.name = f"thing-{len(log)}"
        log.append(f"built {self.name}")

    async def close(self) -> None:
        await asyncio.sleep(0)  # a close that awaits, as real ones do
        self.log.append(f"closed {self.name}")
        if self.fail:
            raise OSError("the peer is gone")


def test_one_per_loop_and_closed_as_asyncio_run_ends() -> None:
    log: list[str] = []
    things = PerLoop(lambda: Thing(log), Thing.close)

    async def use() -> Thing:
        first = things.get()
        assert things.get() is first
        await asyncio.sleep(0)
        assert things.get() is first and log[-1].startswith("built")
        return first

    one = asyncio.run(use())
    assert log == ["built thing-0", "closed thing-0"]
    two = asyncio.run(use())
    assert two is not one
    assert log[2:] == ["built thing-2", "closed thing-2"]


def test_a_loop_closed_without_shutting_down_leaves_its_object() -> None:
    log: list[str] = []
    things = PerLoop(lambda: Thing(log), Thing.close)
    loop = asyncio.new_event_loop()

    async def use() -> None:
        things.get()

    loop.run_until_complete(use())
    loop.close()  # no shutdown_asyncgens(): nothing can run on it any more
    assert log == ["built thing-0"]


def test_a_close_that_fails_is_one_warning_line(caplog: pytest.LogCaptureFixture) -> None:
    log: list[str] = []
    things = PerLoop(lambda: Thing(log, fail=True), Thing.close)
    handled: list[object] = []

    async def use() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: handled.append(ctx))
        things.get()

    with caplog.at_level(logging.WARNING, logger="micro._per_loop"):
        asyncio.run(use())
    assert log == ["built thing-0", "closed thing-0"]
    assert handled == []  # not asyncio's "error during closing of asynchronous generator"
    [record] = caplog.records
    assert record.exc_info is None and "the peer is gone" in record.getMessage()
