"""Helpers for the runtime's background tasks."""

from __future__ import annotations

import asyncio

__all__ = ["stop_if_cancelled"]


def stop_if_cancelled() -> None:
    """Raise CancelledError if the running task was asked to stop.

    On Python 3.11, ``asyncio.wait_for`` swallows a cancel that arrives together with
    its result, and nats-py waits with it (a KV entry, a fetched batch, a put's ack). A
    background loop around such calls would then run on, and whoever cancelled it
    (``Service.stop``, ``asyncio.run`` at exit) would wait for it forever. Each such
    loop calls this once per turn."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
