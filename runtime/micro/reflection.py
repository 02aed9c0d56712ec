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

The messages and specs are generated from ``runtime/protos/grpc/reflection/`` into
``micro._builtin`` (``python -m scripts.builtin_protos``); the handler is written here. v1
and v1alpha are the same protocol in two packages, with one wire format: the handler
answers in v1's messages, and :attr:`ReflectionHandler.v1alpha` serves v1alpha by
translating each message through its bytes into the other package's class.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import TypeVar

import betterproto2

from micro._builtin.grpc.reflection import v1alpha
from micro._builtin.grpc.reflection.v1 import (
    ErrorResponse,
    ExtensionNumberResponse,
    ExtensionRequest,
    FileDescriptorResponse,
    ListServiceResponse,
    ServerReflectionRequest,
    ServerReflectionResponse,
    ServiceResponse,
)
from micro._builtin.grpc.reflection.v1.reflection_micro import (
    SERVER_REFLECTION_SERVER_REFLECTION_INFO as REFLECTION_INFO,
)
from micro._builtin.grpc.reflection.v1.reflection_micro import (
    SERVER_REFLECTION_SPEC as REFLECTION_SPEC,
)
from micro._builtin.grpc.reflection.v1alpha.reflection_micro import (
    SERVER_REFLECTION_SERVER_REFLECTION_INFO as REFLECTION_V1ALPHA_INFO,
)
from micro._builtin.grpc.reflection.v1alpha.reflection_micro import (
    SERVER_REFLECTION_SPEC as REFLECTION_V1ALPHA_SPEC,
)
from micro.context import Context
from micro.server import Handler
from micro.spec import ProtoFile, ServiceSpec
from micro.status import Status

__all__ = [
    "REFLECTION_INFO",
    "REFLECTION_SPEC",
    "REFLECTION_V1ALPHA_INFO",
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
    "translate",
]

M = TypeVar("M", bound=betterproto2.Message)


def translate(message: betterproto2.Message, into: type[M]) -> M:
    """``message`` as an ``into``: itself if it is one, else parsed from its bytes (a v1
    and a v1alpha message of one name have the same fields and numbers)."""
    return message if isinstance(message, into) else into.parse(bytes(message))


def _error(status: Status, message: str) -> ServerReflectionResponse:
    return ServerReflectionResponse(
        error_response=ErrorResponse(error_code=status.value, error_message=message)
    )


class ReflectionHandler(Handler):
    """Answers reflection requests from the files of the services added with :meth:`add`:
    serves ``REFLECTION_SPEC``; its :attr:`v1alpha` serves ``REFLECTION_V1ALPHA_SPEC``."""

    __slots__ = ("_files", "_services", "_symbols", "v1alpha")

    def __init__(self, specs: Iterable[ServiceSpec] = ()) -> None:
        self._services: list[str] = []
        self._files: dict[str, ProtoFile] = {}
        self._symbols: dict[str, str] = {}  # fully qualified name -> file name
        self.v1alpha = _V1AlphaHandler(self)
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


class _V1AlphaHandler(Handler):
    """``grpc.reflection.v1alpha``: the v1 handler's answers, in v1alpha's messages."""

    __slots__ = ("_v1",)

    def __init__(self, v1: ReflectionHandler) -> None:
        self._v1 = v1

    async def server_reflection_info(
        self, requests: AsyncIterator[v1alpha.ServerReflectionRequest], context: Context
    ) -> AsyncIterator[v1alpha.ServerReflectionResponse]:
        async for request in requests:
            answer = self._v1.answer(translate(request, ServerReflectionRequest))
            yield translate(answer, v1alpha.ServerReflectionResponse)
