"""The standard gRPC server reflection service (``grpc.reflection.v1`` and ``v1alpha``).

Every :class:`micro.Service` serves it, so grpcurl, ``buf curl``, grpcio's
``ProtoReflectionDescriptorDatabase`` and ``micro call`` can list and call its services
with no .proto at hand. It answers from the :class:`~micro.spec.ProtoFile` descriptors that
generated code embeds in each :class:`~micro.spec.ServiceSpec` (``spec.files``), plus the
built-in health and reflection services' own files; protobuf is never imported.

* ``list_services``: the full names of every service the server handles;
* ``file_by_filename`` / ``file_containing_symbol`` (a message, enum, service, method or
  extension name): that file followed by its transitive dependencies;
* ``file_containing_extension``: ``NOT_FOUND`` (no extension index);
  ``all_extension_numbers_of_type``: an empty list for a known message, else ``NOT_FOUND``;
* anything unknown or empty: an ``error_response`` on the stream, which stays open.

v1 and v1alpha share their wire format, so the same message classes serve both.
"""

# betterproto2.field() builds a field spec, not a shared mutable default:
# ruff: noqa: RUF009

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

import betterproto2

from micro._protofiles import REFLECTION_V1, REFLECTION_V1ALPHA
from micro.context import Context
from micro.server import Handler
from micro.spec import Kind, Method, ProtoFile, ServiceSpec
from micro.status import Status

__all__ = [
    "REFLECTION_SPEC",
    "REFLECTION_V1ALPHA_SPEC",
    "ErrorResponse",
    "ExtensionNumberResponse",
    "ExtensionRequest",
    "FileDescriptorResponse",
    "ListServiceResponse",
    "ReflectionHandler",
    "ServerReflectionRequest",
    "ServerReflectionResponse",
    "ServiceResponse",
]


@dataclass(eq=False, repr=False)
class ExtensionRequest(betterproto2.Message):
    containing_type: str = betterproto2.field(1, betterproto2.TYPE_STRING)
    extension_number: int = betterproto2.field(2, betterproto2.TYPE_INT32)


@dataclass(eq=False, repr=False)
class ServerReflectionRequest(betterproto2.Message):
    host: str = betterproto2.field(1, betterproto2.TYPE_STRING)
    file_by_filename: str | None = betterproto2.field(
        3, betterproto2.TYPE_STRING, optional=True, group="message_request"
    )
    file_containing_symbol: str | None = betterproto2.field(
        4, betterproto2.TYPE_STRING, optional=True, group="message_request"
    )
    file_containing_extension: ExtensionRequest | None = betterproto2.field(
        5, betterproto2.TYPE_MESSAGE, optional=True, group="message_request"
    )
    all_extension_numbers_of_type: str | None = betterproto2.field(
        6, betterproto2.TYPE_STRING, optional=True, group="message_request"
    )
    list_services: str | None = betterproto2.field(
        7, betterproto2.TYPE_STRING, optional=True, group="message_request"
    )


@dataclass(eq=False, repr=False)
class FileDescriptorResponse(betterproto2.Message):
    file_descriptor_proto: list[bytes] = betterproto2.field(
        1, betterproto2.TYPE_BYTES, repeated=True
    )


@dataclass(eq=False, repr=False)
class ExtensionNumberResponse(betterproto2.Message):
    base_type_name: str = betterproto2.field(1, betterproto2.TYPE_STRING)
    extension_number: list[int] = betterproto2.field(2, betterproto2.TYPE_INT32, repeated=True)


@dataclass(eq=False, repr=False)
class ServiceResponse(betterproto2.Message):
    name: str = betterproto2.field(1, betterproto2.TYPE_STRING)


@dataclass(eq=False, repr=False)
class ListServiceResponse(betterproto2.Message):
    service: list[ServiceResponse] = betterproto2.field(1, betterproto2.TYPE_MESSAGE, repeated=True)


@dataclass(eq=False, repr=False)
class ErrorResponse(betterproto2.Message):
    error_code: int = betterproto2.field(1, betterproto2.TYPE_INT32)
    error_message: str = betterproto2.field(2, betterproto2.TYPE_STRING)


@dataclass(eq=False, repr=False)
class ServerReflectionResponse(betterproto2.Message):
    valid_host: str = betterproto2.field(1, betterproto2.TYPE_STRING)
    original_request: ServerReflectionRequest | None = betterproto2.field(
        2, betterproto2.TYPE_MESSAGE, optional=True
    )
    file_descriptor_response: FileDescriptorResponse | None = betterproto2.field(
        4, betterproto2.TYPE_MESSAGE, optional=True, group="message_response"
    )
    all_extension_numbers_response: ExtensionNumberResponse | None = betterproto2.field(
        5, betterproto2.TYPE_MESSAGE, optional=True, group="message_response"
    )
    list_services_response: ListServiceResponse | None = betterproto2.field(
        6, betterproto2.TYPE_MESSAGE, optional=True, group="message_response"
    )
    error_response: ErrorResponse | None = betterproto2.field(
        7, betterproto2.TYPE_MESSAGE, optional=True, group="message_response"
    )


def _spec(package: str, file: ProtoFile) -> ServiceSpec:
    service = f"{package}.ServerReflection"
    method: Method[ServerReflectionRequest, ServerReflectionResponse] = Method(
        name="ServerReflection.ServerReflectionInfo",
        path=f"/{service}/ServerReflectionInfo",
        kind=Kind.BIDI_STREAM,
        request_type=ServerReflectionRequest,
        response_type=ServerReflectionResponse,
        handler_attr="server_reflection_info",
        request_name=f"{package}.ServerReflectionRequest",
        response_name=f"{package}.ServerReflectionResponse",
    )
    return ServiceSpec(name=service, methods=(method,), files=(file,))


REFLECTION_SPEC = _spec("grpc.reflection.v1", REFLECTION_V1)
REFLECTION_V1ALPHA_SPEC = _spec("grpc.reflection.v1alpha", REFLECTION_V1ALPHA)


def _error(status: Status, message: str) -> ServerReflectionResponse:
    return ServerReflectionResponse(
        error_response=ErrorResponse(error_code=status.value, error_message=message)
    )


class ReflectionHandler(Handler):
    """Answers reflection requests from the files of the services added with :meth:`add`."""

    __slots__ = ("_files", "_services", "_symbols")

    def __init__(self, specs: Iterable[ServiceSpec] = ()) -> None:
        self._services: list[str] = []
        self._files: dict[str, ProtoFile] = {}
        self._symbols: dict[str, str] = {}  # fully qualified name -> file name
        for spec in specs:
            self.add(spec)

    def add(self, spec: ServiceSpec) -> None:
        if spec.name not in self._services:
            self._services.append(spec.name)
        for file in spec.files:
            self._files.setdefault(file.name, file)
            for symbol in file.symbols:
                self._symbols.setdefault(symbol, file.name)

    @property
    def services(self) -> list[str]:
        return sorted(self._services)

    def files_for(self, name: str) -> list[ProtoFile]:
        """``name``'s file, then its transitive dependencies that are known, each once."""
        ordered: list[ProtoFile] = []
        seen: set[str] = set()
        pending = [name]
        while pending:
            current = pending.pop(0)
            file = self._files.get(current)
            if current in seen or file is None:
                continue
            seen.add(current)
            ordered.append(file)
            pending.extend(file.dependencies)
        return ordered

    def answer(self, request: ServerReflectionRequest) -> ServerReflectionResponse:
        response = self._answer(request)
        response.valid_host = request.host
        response.original_request = request
        return response

    def _answer(self, request: ServerReflectionRequest) -> ServerReflectionResponse:
        if request.list_services is not None:
            return ServerReflectionResponse(
                list_services_response=ListServiceResponse(
                    service=[ServiceResponse(name=name) for name in self.services]
                )
            )
        if request.file_by_filename is not None:
            return self._files_response(request.file_by_filename, "file")
        if request.file_containing_symbol is not None:
            symbol = request.file_containing_symbol.removeprefix(".")
            return self._files_response(self._symbols.get(symbol), f"symbol {symbol!r}")
        if request.file_containing_extension is not None:
            ext = request.file_containing_extension
            return _error(
                Status.NOT_FOUND,
                f"extension {ext.extension_number} of {ext.containing_type!r} not found",
            )
        if request.all_extension_numbers_of_type is not None:
            name = request.all_extension_numbers_of_type.removeprefix(".")
            if name not in self._symbols:
                return _error(Status.NOT_FOUND, f"type {name!r} not found")
            return ServerReflectionResponse(
                all_extension_numbers_response=ExtensionNumberResponse(base_type_name=name)
            )
        return _error(Status.INVALID_ARGUMENT, "empty reflection request")

    def _files_response(self, name: str | None, what: str) -> ServerReflectionResponse:
        files = self.files_for(name) if name is not None else []
        if not files:
            label = f"file {name!r}" if what == "file" else what
            return _error(Status.NOT_FOUND, f"{label} not found")
        return ServerReflectionResponse(
            file_descriptor_response=FileDescriptorResponse(
                file_descriptor_proto=[f.descriptor for f in files]
            )
        )

    async def server_reflection_info(
        self, requests: AsyncIterator[ServerReflectionRequest], context: Context
    ) -> AsyncIterator[ServerReflectionResponse]:
        async for request in requests:
            yield self.answer(request)
