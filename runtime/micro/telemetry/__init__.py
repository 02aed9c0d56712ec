"""Observability built in: OpenTelemetry traces, Prometheus metrics, structured logs.

Everything is off, and costs nothing, until it is asked for (see docs/observability.md):

* traces: the standard ``OTEL_*`` variables (``OTEL_TRACES_EXPORTER``,
  ``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_TRACES_SAMPLER``, ``OTEL_SERVICE_NAME``, ...)
  through the OpenTelemetry SDK (``pip install 'micro-runtime[otel]'``), or
  ``configure(tracer_provider=...)`` in code; the service name defaults to the
  :class:`micro.Service` name;
* metrics: ``MICRO_METRICS_ADDRESS=host:port`` serves ``/metrics`` for Prometheus
  (``pip install 'micro-runtime[metrics]'``), or ``configure(metrics=True,
  metrics_address=...)``; ``OTEL_METRICS_EXPORTER=otlp`` exports the same metrics
  through the OpenTelemetry SDK (``[otel]``), or ``configure(meter_provider=...)``;
* logs: ``MICRO_LOG_FORMAT=json`` (or ``text``) sets up the root logger with records that
  carry ``trace_id``, ``span_id``, ``service`` and ``endpoint`` inside a call.

:class:`micro.Service` and :class:`micro.Client` ask :func:`server_middleware` /
:func:`client_middleware` for their built-in middleware when they are made: configure
telemetry (in code) before making them. With nothing configured, both are empty.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from micro.telemetry import logs, metrics, tracing
from micro.telemetry import metrics as _metrics

__all__ = [
    "client_middleware",
    "configure",
    "logs",
    "metrics",
    "node_metadata",
    "reset",
    "server_middleware",
    "tracing",
]

log = logging.getLogger("micro.telemetry")

_from_env_done = False


def _from_env(environ: Mapping[str, str] | None = None) -> None:
    """Read the environment once per process (the first Service or Client does it)."""
    global _from_env_done
    if _from_env_done:
        return
    _from_env_done = True
    env = os.environ if environ is None else environ
    logs.from_env(env)  # first: what the others log goes through it
    tracing.from_env(env)
    metrics.from_env(env)


def configure(
    *,
    tracer_provider: Any = None,
    meter_provider: Any = None,
    metrics: bool | None = None,
    metrics_address: str | None = None,
    log_format: str | None = None,
) -> None:
    """Turn telemetry on in code (before the Services and Clients are made).

    ``tracer_provider``: an OpenTelemetry ``TracerProvider`` for micro's spans (instead of
    one built from ``OTEL_*``); ``meter_provider``: an OpenTelemetry ``MeterProvider``
    to export micro's metrics through (instead of one built from
    ``OTEL_METRICS_EXPORTER``); ``metrics``: record Prometheus metrics;
    ``metrics_address``: also serve them on ``host:port`` at ``/metrics`` (port 0: a free
    one; :func:`micro.telemetry.metrics.address` tells which); ``log_format``: ``"json"``
    or ``"text"``, see :mod:`micro.telemetry.logs`."""
    _from_env()
    if tracer_provider is not None:
        tracing.enable(tracer_provider)
    if meter_provider is not None:
        _metrics.enable_otel(meter_provider)
    if metrics or metrics_address is not None:
        _metrics.enable()
    if metrics_address is not None:
        _metrics.serve(metrics_address)
    if log_format is not None:
        logs.configure(log_format)


def reset() -> None:
    """Everything off again (tests): spans, metrics recording, the log filter."""
    global _from_env_done
    _from_env_done = True  # the environment is not read again after a reset
    tracing.disable()
    metrics.disable()
    logs.disable()


def server_middleware(service: str) -> tuple[Any, ...]:
    """The built-in server middleware for the service ``service``: none when telemetry
    is off. Also names the process for tracing, when no ``OTEL_SERVICE_NAME`` does."""
    tracing.name_process(service)  # first: a MeterProvider built from OTEL_* is named
    _from_env()
    found: list[Any] = []
    if tracing.enabled() or metrics.enabled() or logs.enabled():
        found.append(logs.server_middleware(service))
    if tracing.enabled():
        found.append(tracing.server_middleware())
    if metrics.enabled():
        found.append(metrics.server_middleware(service))
    return tuple(found)


def client_middleware() -> tuple[Any, ...]:
    """The built-in client middleware: none when telemetry is off."""
    _from_env()
    found: list[Any] = []
    if tracing.enabled():
        found.append(tracing.client_middleware())
    if metrics.enabled():
        found.append(metrics.client_middleware())
    return tuple(found)


def node_metadata() -> dict[str, str]:
    """What a node advertises about its telemetry in the registry: ``metrics`` is the
    ``http://host:port/metrics`` address it is scraped at, when it serves one."""
    where = metrics.url()
    return {"metrics": where} if where else {}
