"""The standard ``grpc.health.v1.Health`` service (Check and Watch), protobuf-free.

Every :class:`micro.Service` serves it. The overall status (service ``""``) and each
registered proto service name are ``SERVING`` while running and ``NOT_SERVING`` once
the service starts draining. Unknown names: ``Check`` answers ``NOT_FOUND``, ``Watch``
streams ``SERVICE_UNKNOWN`` until the name appears.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import betterproto2

from micro import errors
from micro._protofiles import HEALTH_V1
from micro.context import Context
from micro.server import Handler
from micro.spec import Kind, Method, ServiceSpec

__all__ = [
    "HEALTH_SPEC",
    "HealthCheckRequest",
    "HealthCheckResponse",
    "HealthHandler",
    "ServingStatus",
]


class ServingStatus(betterproto2.Enum):
    UNKNOWN = 0
    SERVING = 1
    NOT_SERVING = 2
    SERVICE_UNKNOWN = 3


@dataclass(eq=False, repr=False)
class HealthCheckRequest(betterproto2.Message):
    service: str = betterproto2.field(1, betterproto2.TYPE_STRING)


@dataclass(eq=False, repr=False)
class HealthCheckResponse(betterproto2.Message):
    status: ServingStatus = betterproto2.field(  # noqa: RUF009
        1, betterproto2.TYPE_ENUM, default_factory=lambda: ServingStatus(0)
    )


HEALTH_SPEC = ServiceSpec(
    name="grpc.health.v1.Health",
    methods=(
        Method(
            name="Health.Check",
            path="/grpc.health.v1.Health/Check",
            kind=Kind.UNARY,
            request_type=HealthCheckRequest,
            response_type=HealthCheckResponse,
            handler_attr="check",
        ),
        Method(
            name="Health.Watch",
            path="/grpc.health.v1.Health/Watch",
            kind=Kind.SERVER_STREAM,
            request_type=HealthCheckRequest,
            response_type=HealthCheckResponse,
            handler_attr="watch",
        ),
    ),
    files=(HEALTH_V1,),
)


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
