"""The standard ``grpc.health.v1.Health`` service (Check and Watch), protobuf-free.

Every :class:`micro.Service` serves it. The overall status (service ``""``) and each
registered proto service name are ``SERVING`` while running and ``NOT_SERVING`` once
the service starts draining. Unknown names: ``Check`` answers ``NOT_FOUND``, ``Watch``
streams ``SERVICE_UNKNOWN`` until the name appears.

The messages and ``HEALTH_SPEC`` are generated from ``runtime/protos/grpc/health/v1/``
into ``micro._builtin`` (``python -m scripts.builtin_protos``); the handler is written here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from micro import errors
from micro._builtin.grpc.health.v1 import HealthCheckRequest, HealthCheckResponse
from micro._builtin.grpc.health.v1 import HealthCheckResponseServingStatus as ServingStatus
from micro._builtin.grpc.health.v1.health_micro import HEALTH_CHECK, HEALTH_SPEC, HEALTH_WATCH
from micro.context import Context
from micro.server import Handler

__all__ = [
    "HEALTH_CHECK",
    "HEALTH_SPEC",
    "HEALTH_WATCH",
    "HealthCheckRequest",
    "HealthCheckResponse",
    "HealthHandler",
    "ServingStatus",
]


class HealthHandler(Handler):
    """Holds the serving status per service name and answers Check/Watch."""

    __slots__ = ("_changed", "_statuses")

    def __init__(self) -> None:
        self._statuses: dict[str, ServingStatus] = {}
        self._changed = asyncio.Event()

    def set(self, service: str, status: ServingStatus) -> None:
        self._statuses[service] = status
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def set_all(self, status: ServingStatus) -> None:
        for name in list(self._statuses):
            self.set(name, status)

    def get(self, service: str) -> ServingStatus | None:
        return self._statuses.get(service)

    async def check(self, request: HealthCheckRequest, context: Context) -> HealthCheckResponse:
        status = self._statuses.get(request.service)
        if status is None:
            raise errors.not_found(HEALTH_SPEC.name, f"unknown service {request.service!r}")
        return HealthCheckResponse(status=status)

    async def watch(
        self, request: HealthCheckRequest, context: Context
    ) -> AsyncIterator[HealthCheckResponse]:
        last: ServingStatus | None = None
        while True:
            changed = self._changed
            status = self._statuses.get(request.service, ServingStatus.SERVICE_UNKNOWN)
            if status != last:
                last = status
                yield HealthCheckResponse(status=status)
            await changed.wait()
