"""Message types at run time: descriptors fetched over gRPC reflection, dynamic protobuf
classes, and the proto3 JSON mapping, for the `micro` CLI and the `micro api` gateway.

The descriptors come from the node itself (`grpc.reflection.v1`, falling back to
`v1alpha`), so this works against any micro service and any gRPC server with reflection,
with no .proto at hand. Calls then go through an ordinary `micro.Client` (discovery,
selector, retries, deadlines, error mapping): dynamic protobuf classes have
`SerializeToString` / `FromString`, which is all the runtime's codec needs.

Failures are this module's own exceptions (:class:`ReflectionError` and its subclasses);
the CLI maps them to exit codes and the gateway to HTTP statuses, each in one place.
Needs protobuf (the `cli` or `api` extra).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.descriptor_pb2 import FileDescriptorProto
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.message import DecodeError, Message

import micro
from micro._aclosing import AsyncClosing
from micro.reflection import (
    REFLECTION_INFO,
    REFLECTION_V1ALPHA_INFO,
    ServerReflectionRequest,
    ServerReflectionResponse,
    translate,
)
from micro.status import Status

__all__ = [
    "Descriptors",
    "DynamicMethod",
    "InvalidMessage",
    "NotFound",
    "Reflection",
    "ReflectionError",
    "Target",
    "Unreachable",
]


class ReflectionError(Exception):
    """What this module raises (besides the :class:`micro.Error` of a call)."""


class NotFound(ReflectionError, LookupError):
    """The server's reflection does not know the name."""


class Unreachable(ReflectionError):
    """The target serves no reflection, closed the stream or sent invalid descriptors."""


class InvalidMessage(ReflectionError, ValueError):
    """JSON that does not fit the message: not an object, unknown field, wrong type."""


@dataclass(frozen=True)
class Target:
    """Where calls go: a service name resolved through the registry, or a static address."""

    service: str | None = None
    address: str | None = None

    @property
    def label(self) -> str:
        return self.address or self.service or "?"


# Each version has its own message classes; requests and answers are v1's, translated.
_VERSIONS: tuple[micro.Method[Any, Any], ...] = (REFLECTION_INFO, REFLECTION_V1ALPHA_INFO)


class Reflection(AsyncClosing):
    """A reflection stream to one target (opened on first use, kept for every request)."""

    def __init__(self, client: micro.Client, target: Target, *, timeout: float | None) -> None:
        self._client = client
        self._target = target
        self._timeout = timeout
        self._version = 0
        self._stream: micro.BidiStream[Any, Any] | None = None

    async def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.aclose()

    async def _ask(self, request: ServerReflectionRequest) -> ServerReflectionResponse:
        while True:
            method = _VERSIONS[self._version]
            if self._stream is None:
                self._stream = self._client.bidi_stream(
                    method,
                    service=self._target.service,
                    address=self._target.address,
                    timeout=self._timeout,
                )
            try:
                await self._stream.send(translate(request, method.request_type))
                answer = await self._stream.recv()
            except micro.Error as exc:
                await self.close()
                if exc.grpc_status is Status.UNIMPLEMENTED and self._version + 1 < len(_VERSIONS):
                    self._version += 1
                    continue
                if exc.grpc_status is Status.UNIMPLEMENTED:
                    raise Unreachable(
                        f"{self._target.label} does not serve gRPC reflection "
                        "(grpc.reflection.v1 or v1alpha)"
                    ) from None
                raise
            if answer is None:
                await self.close()
                raise Unreachable(f"{self._target.label} closed the reflection stream")
            response = translate(answer, ServerReflectionResponse)
            if response.error_response is not None:
                if response.error_response.error_code == Status.NOT_FOUND.value:
                    raise NotFound(response.error_response.error_message)
                raise Unreachable(
                    f"{self._target.label}: reflection failed: "
                    f"{response.error_response.error_message}"
                )
            return response

    async def list_services(self) -> list[str]:
        response = await self._ask(ServerReflectionRequest(list_services=""))
        listed = response.list_services_response
        return [s.name for s in listed.service] if listed is not None else []

    async def file_containing_symbol(self, symbol: str) -> list[FileDescriptorProto]:
        return _files(await self._ask(ServerReflectionRequest(file_containing_symbol=symbol)))

    async def file_by_filename(self, name: str) -> list[FileDescriptorProto]:
        return _files(await self._ask(ServerReflectionRequest(file_by_filename=name)))


def _files(response: ServerReflectionResponse) -> list[FileDescriptorProto]:
    found = response.file_descriptor_response
    if found is None:
        raise Unreachable("reflection answered without file descriptors")
    try:
        return [FileDescriptorProto.FromString(raw) for raw in found.file_descriptor_proto]
    except DecodeError as exc:
        raise Unreachable(f"reflection sent an invalid file descriptor: {exc}") from None


class Descriptors:
    """A DescriptorPool filled on demand from a :class:`Reflection` stream."""

    def __init__(self, reflection: Reflection) -> None:
        self._reflection = reflection
        self.pool = DescriptorPool()
        self._protos: dict[str, FileDescriptorProto] = {}
        self._added: set[str] = set()

    async def load_symbol(self, symbol: str) -> None:
        """Load the file defining `symbol` (and its dependencies); NotFound if unknown."""
        try:
            self.pool.FindFileContainingSymbol(symbol)
            return
        except KeyError:
            pass
        self._remember(await self._reflection.file_containing_symbol(symbol))
        await self._complete()

    def _remember(self, files: Iterable[FileDescriptorProto]) -> None:
        for file in files:
            self._protos.setdefault(file.name, file)

    async def _complete(self) -> None:
        while missing := sorted(
            dep for f in self._protos.values() for dep in f.dependency if dep not in self._protos
        ):
            for name in missing:
                try:
                    self._remember(await self._reflection.file_by_filename(name))
                except NotFound:
                    raise Unreachable(f"reflection does not know {name}, a dependency") from None
        for name in sorted(self._protos):
            self._add(name)

    def _add(self, name: str) -> None:
        if name in self._added:
            return
        self._added.add(name)
        file = self._protos[name]
        for dependency in file.dependency:
            self._add(dependency)
        self.pool.Add(file)

    def method(self, path: str) -> DynamicMethod:
        """The method at gRPC path `/pkg.Service/Method` (its service must be loaded)."""
        service, _, name = path.lstrip("/").partition("/")
        try:
            descriptor = self.pool.FindServiceByName(service).methods_by_name[name]
        except KeyError:
            raise NotFound(f"{service} has no method {name!r}") from None
        return DynamicMethod.of(descriptor, self.pool)


@dataclass(frozen=True)
class DynamicMethod:
    """A method whose message classes were built at run time."""

    method: micro.Method[Message, Message]
    descriptor: MethodDescriptor
    pool: DescriptorPool

    @classmethod
    def of(cls, descriptor: MethodDescriptor, pool: DescriptorPool) -> DynamicMethod:
        request = message_factory.GetMessageClass(descriptor.input_type)
        response = message_factory.GetMessageClass(descriptor.output_type)
        service = descriptor.containing_service
        method: micro.Method[Message, Message] = micro.Method(
            name=f"{service.name}.{descriptor.name}",
            path=f"/{service.full_name}/{descriptor.name}",
            kind=micro.Kind.of(descriptor.client_streaming, descriptor.server_streaming),
            request_type=request,
            response_type=response,
            handler_attr="",
            request_name=descriptor.input_type.full_name,
            response_name=descriptor.output_type.full_name,
        )
        return cls(method, descriptor, pool)

    @property
    def full_name(self) -> str:
        return str(self.descriptor.full_name)

    def request(self, data: Any) -> Message:
        """The request message for already-parsed JSON `data` (proto3 JSON mapping)."""
        message: Message = self.method.request_type()
        if not isinstance(data, dict):
            raise InvalidMessage(
                f"the request must be a JSON object for {self.method.request_name}, "
                f"got {type(data).__name__}"
            )
        try:
            json_format.ParseDict(data, message, descriptor_pool=self.pool)
        except json_format.ParseError as exc:
            raise InvalidMessage(f"invalid {self.method.request_name}: {exc}") from None
        return message

    def to_json(self, message: Message) -> dict[str, Any]:
        return json_format.MessageToDict(
            message,
            always_print_fields_with_no_presence=True,
            descriptor_pool=self.pool,
        )
