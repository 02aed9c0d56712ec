"""The file descriptors a generated module embeds, so a server can answer gRPC reflection."""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator, Mapping
from dataclasses import dataclass

from google.protobuf.descriptor_pb2 import DescriptorProto, EnumDescriptorProto, FileDescriptorProto


@dataclass(frozen=True)
class ProtoFileModel:
    name: str
    descriptor: bytes  # serialized FileDescriptorProto, without source_code_info
    dependencies: tuple[str, ...]
    symbols: tuple[str, ...]  # every fully qualified name the file defines


def _qualify(package: str, name: str) -> str:
    return f"{package}.{name}" if package else name


def _symbols(file: FileDescriptorProto) -> Iterator[str]:
    def messages(prefix: str, items: Iterable[DescriptorProto]) -> Iterator[str]:
        for message in items:
            full = _qualify(prefix, message.name)
            yield full
            yield from enums(full, message.enum_type)
            yield from messages(full, message.nested_type)

    def enums(prefix: str, items: Iterable[EnumDescriptorProto]) -> Iterator[str]:
        for enum in items:
            yield _qualify(prefix, enum.name)

    yield from messages(file.package, file.message_type)
    yield from enums(file.package, file.enum_type)
    for service in file.service:
        full = _qualify(file.package, service.name)
        yield full
        for method in service.method:
            yield f"{full}.{method.name}"
    for extension in file.extension:
        yield _qualify(file.package, extension.name)


def proto_files(
    file: FileDescriptorProto,
    by_name: Mapping[str, FileDescriptorProto],
    linked: Container[str] = (),
) -> tuple[tuple[ProtoFileModel, ...], tuple[str, ...]]:
    """What `file`'s module embeds: `file` first, then its transitive dependencies, each
    once, in a stable order. A dependency in `linked` has a generated module of its own
    that embeds it and its dependencies; it is returned, in the second tuple, instead of
    being embedded again (embedding every closure in every module grew quadratically)."""
    embedded: list[FileDescriptorProto] = []
    reached: list[str] = []
    seen: set[str] = set()

    def visit(current: FileDescriptorProto) -> None:
        if current.name in seen:
            return
        seen.add(current.name)
        if current is not file and current.name in linked:
            reached.append(current.name)
            return
        embedded.append(current)
        for dependency in current.dependency:
            visit(by_name[dependency])

    visit(file)
    return tuple(_embed(proto) for proto in embedded), tuple(reached)


def _embed(proto: FileDescriptorProto) -> ProtoFileModel:
    stripped = FileDescriptorProto()
    stripped.CopyFrom(proto)
    stripped.ClearField("source_code_info")
    return ProtoFileModel(
        name=proto.name,
        descriptor=stripped.SerializeToString(deterministic=True),
        dependencies=tuple(proto.dependency),
        symbols=tuple(_symbols(proto)),
    )
