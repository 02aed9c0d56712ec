"""Telemetry is process-wide: each test turns on what it needs and everything is off after."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from micro import telemetry


@pytest.fixture(autouse=True)
def _telemetry_off() -> Iterator[None]:
    telemetry.reset()
    yield
    telemetry.reset()


@pytest.fixture
def spans() -> InMemorySpanExporter:
    """Tracing on, into memory (set before the Services and Clients are made)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.configure(tracer_provider=provider)
    return exporter


# a real nats-server (NATS_URL, or one of this module's own), for the NATS trace tests
from tests.nats.conftest import nats_url  # noqa: E402, F401
