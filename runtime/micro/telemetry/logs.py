"""Logs: the ``micro.*`` loggers, call fields on every record, a JSON switch.

The runtime logs through stdlib :mod:`logging`, every logger under ``micro``
(``micro.service``, ``micro.client``, ``micro.broker``, ``micro.telemetry``, ...).

:class:`CallFilter` adds to each record, inside a call (the fields are empty outside):
``trace_id`` and ``span_id`` (hex, when tracing is on), ``service`` (the micro service
answering) and ``endpoint`` (the rpc, ``Greeter.SayHello``). :func:`fields` returns the
same as a dict, for structlog processors and other logging setups (it reads contextvars).

One line switches the process to JSON logs for production::

    MICRO_LOG_FORMAT=json python server.py        # or: micro.telemetry.configure(log_format="json")

``MICRO_LOG_FORMAT=text`` keeps the human format, with the call fields appended;
``MICRO_LOG_LEVEL`` (``INFO`` by default) sets the root level. Without either, micro
touches no logging configuration (the application's own setup applies).
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from micro.context import current

__all__ = [
    "CallFilter",
    "JsonFormatter",
    "ServiceHandler",
    "configure",
    "disable",
    "enabled",
    "fields",
    "from_env",
    "server_middleware",
    "serving",
]

TEXT_FORMAT = (
    "%(asctime)s %(levelname)s %(name)s: %(message)s"
    " [service=%(service)s endpoint=%(endpoint)s trace_id=%(trace_id)s span_id=%(span_id)s]"
)

_service: contextvars.ContextVar[str] = contextvars.ContextVar("micro_log_service", default="")
_handler: logging.Handler | None = None


def fields() -> dict[str, str]:
    """The current call's ``trace_id``, ``span_id``, ``service`` and ``endpoint``."""
    from micro.telemetry import tracing

    ctx = current()
    ids = tracing.current_ids()
    return {
        "trace_id": ids[0] if ids else "",
        "span_id": ids[1] if ids else "",
        "service": _service.get(),
        "endpoint": ctx.method.name if ctx is not None else "",
    }


class CallFilter(logging.Filter):
    """Adds the call fields (:func:`fields`) to every record; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in fields().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message``, the call
    fields that are set, and ``exception`` (the formatted traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("service", "endpoint", "trace_id", "span_id"):
            value = getattr(record, key, "")
            if value:
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure(fmt: str, level: str | None = None) -> None:
    """Log to stderr from the root logger in ``fmt`` (``json`` or ``text``), with the
    call fields. Replaces a handler an earlier call installed, no other."""
    global _handler
    from micro._config import ConfigError

    fmt = fmt.strip().lower()
    if fmt not in ("json", "text"):
        raise ConfigError(f"MICRO_LOG_FORMAT={fmt!r}: use json or text")
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(CallFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    root.addHandler(handler)
    root.setLevel((level or os.environ.get("MICRO_LOG_LEVEL") or "INFO").upper())
    _handler = handler


def disable() -> None:
    global _handler
    if _handler is not None:
        logging.getLogger().removeHandler(_handler)
        _handler = None


def enabled() -> bool:
    return _handler is not None


def from_env(env: Mapping[str, str]) -> None:
    fmt = env.get("MICRO_LOG_FORMAT", "").strip()
    if fmt:
        configure(fmt, env.get("MICRO_LOG_LEVEL") or None)


def server_middleware(service: str) -> Callable[[Any, Any], Awaitable[Any]]:
    """Names the service in the log fields of the calls it answers."""

    async def log_fields(call: Any, next: Callable[[Any], Awaitable[Any]]) -> Any:
        token = _service.set(service)
        try:
            return await next(call)
        finally:
            _service.reset(token)

    return log_fields


@contextmanager
def serving(service: str) -> Iterator[None]:
    """Name ``service`` in the log fields inside the block."""
    token = _service.set(service)
    try:
        yield
    finally:
        _service.reset(token)


class ServiceHandler:
    """An event subscription handler of the service ``service`` (what
    :class:`micro.Service` subscribes with when telemetry is on):
    :func:`micro.broker.run_handler` names that service in the log fields of everything
    logged while it handles a message, the handler's own records and micro's."""

    __slots__ = ("handler", "service")

    def __init__(self, service: str, handler: Callable[[Any], Awaitable[None]]) -> None:
        self.service, self.handler = service, handler

    def __call__(self, delivery: Any) -> Awaitable[None]:
        return self.handler(delivery)
