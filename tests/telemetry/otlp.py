"""An in-process OTLP/gRPC receiver of traces and metrics: what a collector would be, for
the tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


@dataclass(frozen=True)
class Span:
    """One received span, flattened: ids in hex, attributes as plain values."""

    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]
    status: int


@dataclass(frozen=True)
class Point:
    """The latest value of one metric series (the exports are cumulative): a sum's value,
    or a histogram's count, sum and bucket bounds."""

    service: str
    name: str
    attributes: dict[str, Any]
    value: float
    monotonic: bool | None = None  # a sum's; None for a histogram
    bounds: tuple[float, ...] = ()
    unit: str = ""


def _value(v: Any) -> Any:
    which = v.WhichOneof("value")
    return getattr(v, which) if which else None


@dataclass
class Receiver:
    endpoint: str
    _spans: list[Span] = field(default_factory=list)
    _points: dict[tuple[str, str, frozenset[tuple[str, Any]]], Point] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def spans(self) -> list[Span]:
        with self._lock:
            return list(self._spans)

    def points(self) -> list[Point]:
        with self._lock:
            return list(self._points.values())

    def add_metrics(self, request: Any) -> None:
        found = []
        for resource_metrics in request.resource_metrics:
            attributes = resource_metrics.resource.attributes
            service = str({a.key: _value(a.value) for a in attributes}.get("service.name", ""))
            for scope in resource_metrics.scope_metrics:
                for metric in scope.metrics:
                    which = metric.WhichOneof("data")
                    data = getattr(metric, which)
                    for p in data.data_points:
                        labels = {a.key: _value(a.value) for a in p.attributes}
                        if which == "histogram":
                            point = Point(
                                service,
                                metric.name,
                                labels,
                                float(p.count),
                                bounds=tuple(p.explicit_bounds),
                                unit=metric.unit,
                            )
                        else:
                            number = p.as_int if p.WhichOneof("value") == "as_int" else p.as_double
                            point = Point(
                                service,
                                metric.name,
                                labels,
                                float(number),
                                monotonic=bool(getattr(data, "is_monotonic", False)),
                                unit=metric.unit,
                            )
                        found.append(point)
        with self._lock:
            for point in found:
                key = (point.service, point.name, frozenset(point.attributes.items()))
                self._points[key] = point

    def add(self, request: Any) -> None:
        found = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                for s in scope.spans:
                    found.append(
                        Span(
                            service=str(resource.get("service.name", "")),
                            name=s.name,
                            kind=s.kind,
                            trace_id=s.trace_id.hex(),
                            span_id=s.span_id.hex(),
                            parent_id=s.parent_span_id.hex(),
                            attributes={a.key: _value(a.value) for a in s.attributes},
                            status=s.status.code,
                        )
                    )
        with self._lock:
            self._spans.extend(found)


class _Servicer(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver

    def Export(self, request: Any, context: Any) -> Any:
        self.receiver.add(request)
        return trace_service_pb2.ExportTraceServiceResponse()


class _MetricsServicer(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver

    def Export(self, request: Any, context: Any) -> Any:
        self.receiver.add_metrics(request)
        return metrics_service_pb2.ExportMetricsServiceResponse()


@contextmanager
def receiver() -> Iterator[Receiver]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    port = server.add_insecure_port("127.0.0.1:0")
    got = Receiver(f"http://127.0.0.1:{port}")
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
        _Servicer(got), server
    )
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(  # type: ignore[no-untyped-call]
        _MetricsServicer(got), server
    )
    server.start()
    try:
        yield got
    finally:
        server.stop(grace=None)
