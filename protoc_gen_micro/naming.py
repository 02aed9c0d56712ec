"""Where message classes live, and the Python names of generated symbols.

The message backend decides where a proto message's Python class is. Templates
never spell that out: they receive the resolved references from the model.
"""

from __future__ import annotations

import functools
import keyword
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from betterproto2_compiler.casing import safe_snake_case, snake_case
from betterproto2_compiler.compile.naming import pythonize_class_name
from google.protobuf.descriptor_pb2 import DescriptorProto, FileDescriptorProto


@dataclass(frozen=True)
class TypeRef:
    """A message class: the module it lives in (relative to the output root) and its attribute.

    `absolute` modules are imported whole, by absolute name, as protoc's `_pb2` modules
    import each other; otherwise the class itself is imported relatively, as betterproto2's
    packages do."""

    proto_name: str  # "helloworld.v1.HelloRequest"
    module: tuple[str, ...]  # ("helloworld", "v1") or ("helloworld", "v1", "helloworld_pb2")
    attr: str  # "HelloRequest", or "Outer.Inner" inside a _pb2 module
    absolute: bool = False


class MessageNaming(Protocol):
    """Places and names message classes the way one message backend does."""

    def resolve(self, proto_name: str) -> TypeRef: ...


class UnknownType(LookupError):
    pass


def walk_messages(
    file: FileDescriptorProto,
) -> Iterator[tuple[str, str, DescriptorProto]]:
    """Yields (full proto name, betterproto2-style prefixed name, message) for every message."""

    def walk(
        prefix_full: str, prefix_local: str, messages: Iterable[DescriptorProto]
    ) -> Iterator[tuple[str, str, DescriptorProto]]:
        for message in messages:
            full = f"{prefix_full}.{message.name}" if prefix_full else message.name
            local = f"{prefix_local}.{message.name}" if prefix_local else message.name
            yield full, local, message
            yield from walk(full, local, message.nested_type)

    yield from walk(file.package, "", file.message_type)


class Betterproto2Naming:
    """Mirrors betterproto2-compiler: one module per proto package (`a/b/__init__.py`),
    classes named by `pythonize_class_name` of the nesting path (`Outer.Inner` -> `OuterInner`)."""

    def __init__(self, files: Iterable[FileDescriptorProto]) -> None:
        self._types: dict[str, TypeRef] = {}
        for file in files:
            module = tuple(file.package.split(".")) if file.package else ()
            for full, local, _ in walk_messages(file):
                self._types[full] = TypeRef(full, module, pythonize_class_name(local))

    def resolve(self, proto_name: str) -> TypeRef:
        try:
            return self._types[proto_name.lstrip(".")]
        except KeyError:
            raise UnknownType(proto_name) from None


class ProtobufNaming:
    """Mirrors protoc's `--python_out`: one `<path>/<name>_pb2` module per .proto file
    (dashes become underscores), nested messages as attributes (`Outer.Inner`)."""

    def __init__(self, files: Iterable[FileDescriptorProto]) -> None:
        self._types: dict[str, TypeRef] = {}
        for file in files:
            module = tuple(pb2_module(file.name).split("."))
            for full, local, _ in walk_messages(file):
                self._types[full] = TypeRef(full, module, local, absolute=True)

    def resolve(self, proto_name: str) -> TypeRef:
        try:
            return self._types[proto_name.lstrip(".")]
        except KeyError:
            raise UnknownType(proto_name) from None


def pb2_module(proto_file: str) -> str:
    """`a/b-c.proto` -> `a.b_c_pb2`, as protoc's Python generator names modules."""
    return proto_file.removesuffix(".proto").replace("-", "_").replace("/", ".") + "_pb2"


@functools.cache
def method_name(proto_name: str) -> str:
    """rpc name -> Python method name: snake_case, keywords get a trailing underscore,
    and names that would be private or dunder get an `rpc_` prefix."""
    name = safe_snake_case(proto_name)
    if name.startswith("_"):
        name = f"rpc{name}" if name.startswith("__") else f"rpc_{name.lstrip('_')}"
    return name


@functools.cache
def service_base_name(proto_name: str) -> str:
    """`GreeterService` -> `Greeter`: the client is `GreeterClient`, not `GreeterServiceClient`."""
    base = pythonize_class_name(proto_name)
    if base.endswith("Service") and len(base) > len("Service"):
        return base[: -len("Service")]
    return base


@functools.cache
def constant_name(base: str) -> str:
    return snake_case(base).upper()


@functools.cache
def function_name(base: str) -> str:
    return snake_case(base).lower()


_IDENT = re.compile(r"[^0-9A-Za-z_]")


def module_name(stem: str) -> str:
    """A .proto file stem -> a valid module name."""
    name = _IDENT.sub("_", stem)
    if not name or name[0].isdigit() or keyword.iskeyword(name):
        name = f"_{name}"
    return name


def is_package_name(part: str) -> bool:
    return part.isidentifier() and not keyword.iskeyword(part)


class Names:
    """One module's namespace: hands out names, never the same twice."""

    def __init__(self, reserved: Iterable[str] = ()) -> None:
        self._taken: set[str] = set(reserved)

    def claim(self, wanted: str) -> str:
        name = wanted
        while name in self._taken or keyword.iskeyword(name):
            name += "_"
        self._taken.add(name)
        return name

    def __contains__(self, name: str) -> bool:
        return name in self._taken
