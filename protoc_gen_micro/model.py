"""The one model of what gets generated: files, services, methods.

Everything a template prints is decided and spelled here, with layout.py's helpers: each
model holds what it means (names, types, docs) and, beside it, its ready source text
(literals, signatures, docstrings, tuples in black's layout). Templates only place those.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from google.protobuf.compiler.plugin_pb2 import CodeGeneratorRequest
from google.protobuf.descriptor_pb2 import (
    FileDescriptorProto,
    MethodDescriptorProto,
    ServiceDescriptorProto,
)

from micro.spec import Kind

from . import runtime_names as rt
from .comments import CommentIndex
from .descriptors import ProtoFileModel, proto_files
from .http import HttpRuleModel, http_rules
from .layout import (
    docstring,
    exploded,
    exploded_value,
    fit,
    literal,
    tuple_of,
    tuple_value,
)
from .naming import (
    Betterproto2Naming,
    MessageNaming,
    Names,
    ProtobufNaming,
    TypeRef,
    UnknownType,
    constant_name,
    function_name,
    is_package_name,
    method_name,
    module_name,
    service_base_name,
)
from .options import Options

# Field numbers in descriptor.proto, for SourceCodeInfo paths.
_FILE_SERVICE = 6
_SERVICE_METHOD = 2

# Indentation: a class body, a method body in it, and a `key=value,` line of a call
# at module level (the specs' arguments).
_CLASS = 4
_BODY = 8
_ARG = 4

_TIMEOUT = "timeout: float | None = None"
_METADATA = f"metadata: {rt.METADATA} | None = None"


class ModelError(Exception):
    """Something in the input that cannot be generated; the message names file and element."""


@dataclass(frozen=True)
class Import:
    source: str  # ".", "..common", "...google.protobuf", "helloworld.v1", or "" (top level)
    name: str
    alias: str
    line: str  # the import statement


def _import(source: str, name: str, alias: str) -> Import:
    head = f"from {source} import {name}" if source else f"import {name}"
    line = head if alias == name else f"{head} as {alias}"
    return Import(source=source, name=name, alias=alias, line=line)


@dataclass(frozen=True)
class ClientShape:
    """How one RPC kind looks in one client flavour (async or sync)."""

    is_async: bool
    input: str  # positional input parameter, "" for none
    returns: str


@dataclass(frozen=True)
class KindShape:
    """How one RPC kind looks in the clients and the handler. The four kinds live here only."""

    member: str  # the runtime Kind member's name, as generated code spells it
    stub_call: str  # Stub/SyncStub method, called with (method, [input,] timeout=, metadata=)
    client: ClientShape
    sync_client: ClientShape
    handler_async: bool
    handler_input: str
    handler_returns: str


_SHAPES: dict[Kind, KindShape] = {
    Kind.UNARY: KindShape(
        member=Kind.UNARY.name,
        stub_call="_unary",
        client=ClientShape(True, "request: {req}", "{resp}"),
        sync_client=ClientShape(False, "request: {req}", "{resp}"),
        handler_async=True,
        handler_input="request: {req}",
        handler_returns="{resp}",
    ),
    Kind.SERVER_STREAM: KindShape(
        member=Kind.SERVER_STREAM.name,
        stub_call="_server_stream",
        client=ClientShape(False, "request: {req}", f"{rt.SERVER_STREAM}[{{resp}}]"),
        sync_client=ClientShape(False, "request: {req}", f"{rt.SYNC_SERVER_STREAM}[{{resp}}]"),
        handler_async=False,
        handler_input="request: {req}",
        handler_returns="_t.AsyncIterator[{resp}]",
    ),
    Kind.CLIENT_STREAM: KindShape(
        member=Kind.CLIENT_STREAM.name,
        stub_call="_client_stream",
        client=ClientShape(
            True, "requests: _t.Iterable[{req}] | _t.AsyncIterable[{req}]", "{resp}"
        ),
        sync_client=ClientShape(False, "requests: _t.Iterable[{req}]", "{resp}"),
        handler_async=True,
        handler_input="requests: _t.AsyncIterator[{req}]",
        handler_returns="{resp}",
    ),
    Kind.BIDI_STREAM: KindShape(
        member=Kind.BIDI_STREAM.name,
        stub_call="_bidi_stream",
        client=ClientShape(False, "", f"{rt.BIDI_STREAM}[{{req}}, {{resp}}]"),
        sync_client=ClientShape(False, "", f"{rt.SYNC_BIDI_STREAM}[{{req}}, {{resp}}]"),
        handler_async=False,
        handler_input="requests: _t.AsyncIterator[{req}]",
        handler_returns="_t.AsyncIterator[{resp}]",
    ),
}


@dataclass(frozen=True)
class DefModel:
    """One generated method, of a client or of the handler, and its ready lines."""

    py_name: str
    is_async: bool
    params: tuple[str, ...]
    returns: str
    decorators: tuple[str, ...]  # expressions, written as `@decorator` lines
    doc: str
    signature: str  # the `def` line(s), in the class body
    docstring: str  # in the method body; "" without a doc
    body: str  # the one statement, in the method body


@dataclass(frozen=True)
class ClientModel:
    name: str
    base: str  # the runtime Stub or SyncStub
    doc: str
    docstring: str  # in the class body
    decorators: tuple[str, ...]
    methods: tuple[DefModel, ...]


@dataclass(frozen=True)
class MethodArgs:
    """The arguments of the rpc's runtime Method, spelled; a value that spans lines is
    laid out for its `key=value,` line in the call (at `_ARG`)."""

    name: str
    path: str
    kind: str
    request_type: str
    response_type: str
    handler_attr: str
    http_rules: str
    deprecated: str
    doc: str
    request_name: str
    response_name: str
    idempotency: str  # "" when the rpc sets no idempotency_level (the argument is left out)


@dataclass(frozen=True)
class ServiceArgs:
    """The arguments of the service's runtime ServiceSpec, spelled like `MethodArgs`."""

    name: str
    methods: str
    deprecated: str
    doc: str


@dataclass(frozen=True)
class MethodModel:
    index: int
    const: str  # the module constant holding this rpc's runtime Method
    proto_name: str
    py_name: str
    endpoint: str  # "Greeter.SayHello"
    path: str  # "/helloworld.v1.Greeter/SayHello"
    kind: str  # "_micro.Kind.UNARY"
    request: str  # Python expression naming the request class
    response: str
    request_proto: str
    response_proto: str
    doc: str
    deprecated: bool
    http_rules: tuple[HttpRuleModel, ...]
    args: MethodArgs
    client: DefModel
    sync_client: DefModel
    handler: DefModel


@dataclass(frozen=True)
class ServiceModel:
    proto_name: str
    full_name: str
    spec: str
    handler: str
    register: str
    doc: str
    handler_doc: str
    handler_docstring: str  # in the handler's class body
    register_def: str  # the `def` line(s) of the register function
    deprecated: bool
    args: ServiceArgs
    clients: tuple[ClientModel, ...]  # async, then sync
    methods: tuple[MethodModel, ...]


@dataclass(frozen=True)
class FileModel:
    source: str  # the .proto, as protoc names it
    output: str  # path of the generated module, relative to the output root
    specs_only: bool  # output=specs: no clients, handlers or register functions
    runtime_import: str  # the line importing the runtime as rt.ALIAS
    std_imports: tuple[str, ...]
    imports: tuple[Import, ...]
    exports: tuple[str, ...]
    all_block: str  # the `__all__ = (...)` lines
    services: tuple[ServiceModel, ...]
    files: tuple[ProtoFileModel, ...]  # for reflection: this file, then dependencies to embed
    file_modules: tuple[str, ...]  # aliases of imported micro modules with the other files
    file_entries: tuple[str, ...]  # `files` as `ProtoFile(...),` lines in the `_FILES` tuple


@dataclass(frozen=True)
class Model:
    files: tuple[FileModel, ...]
    package_inits: tuple[str, ...]  # __init__.py files this plugin must add (source_relative)


def build_model(request: CodeGeneratorRequest, options: Options) -> Model:
    naming: MessageNaming = (
        ProtobufNaming(request.proto_file)
        if options.messages == "protobuf"
        else Betterproto2Naming(request.proto_file)
    )
    by_name = {f.name: f for f in request.proto_file}
    # Each file with a service gets a module; the others are embedded where needed.
    modules = {
        name: _module_path(by_name[name], options)
        for name in request.file_to_generate
        if by_name[name].service
    }
    files = [_build_file(by_name[name], naming, options, by_name, modules) for name in modules]
    _check_distinct_outputs(files)
    # betterproto2's output is one package; `_pb2` modules import absolutely, like ours then.
    needs_inits = options.paths == "source_relative" and options.messages == "betterproto2"
    inits = _package_inits(request, files) if needs_inits else ()
    return Model(files=tuple(files), package_inits=inits)


def _module_dir(proto: FileDescriptorProto, options: Options) -> tuple[str, ...]:
    # `_pb2` modules sit by file path (protoc's python_out), so ours sit beside them.
    if options.paths == "source_relative" or options.messages == "protobuf":
        parts = PurePosixPath(proto.name).parent.parts
        for part in parts:
            if not is_package_name(part):
                raise ModelError(
                    f"{proto.name}: paths=source_relative would put the module in directory "
                    f"{part!r}, which is not a valid Python package name"
                )
        return tuple(parts)
    return tuple(proto.package.split(".")) if proto.package else ()


def _module_path(proto: FileDescriptorProto, options: Options) -> tuple[str, ...]:
    """The micro module of a file with services, as a dotted path split into parts."""
    stem = module_name(PurePosixPath(proto.name).stem) + "_micro"
    return (*_module_dir(proto, options), stem)


def _relative(from_dir: tuple[str, ...], module: tuple[str, ...]) -> str:
    common = 0
    while common < min(len(from_dir), len(module)) and from_dir[common] == module[common]:
        common += 1
    return "." * (len(from_dir) - common + 1) + ".".join(module[common:])


def _build_file(
    proto: FileDescriptorProto,
    naming: MessageNaming,
    options: Options,
    by_name: dict[str, FileDescriptorProto],
    modules: dict[str, tuple[str, ...]],
) -> FileModel:
    *path, stem = modules[proto.name]
    directory = tuple(path)
    output = "/".join((*directory, f"{stem}.py"))
    comments = CommentIndex(proto, under=_FILE_SERVICE)

    # Generated names first: they never yield to a message class.
    names = Names(reserved=("_t", "_te", rt.ALIAS, "annotations", "_FILES"))
    service_names = _service_names(proto, names)

    # Dependencies with a micro module of their own: import their descriptors from it.
    embedded, linked = proto_files(proto, by_name, modules)
    imports: list[Import] = []
    file_modules = []
    # `_pb2` modules import each other absolutely; betterproto2's packages relatively.
    absolute = options.messages == "protobuf"
    for dependency in linked:
        *package, module = modules[dependency]
        alias = names.claim(f"_{module}")
        source = ".".join(package) if absolute else _relative(directory, tuple(package))
        imports.append(_import(source, module, alias))
        file_modules.append(alias)

    # Message classes next, in a stable order; a clash gets a trailing underscore.
    refs: dict[str, TypeRef] = {}
    for service in proto.service:
        for method in service.method:
            for type_name in (method.input_type, method.output_type):
                try:
                    ref = naming.resolve(type_name)
                except UnknownType:
                    raise ModelError(
                        f"{proto.name}: rpc {service.name}.{method.name}: "
                        f"unknown message type {type_name}"
                    ) from None
                refs[ref.proto_name] = ref
    expr: dict[str, str] = {}
    module_aliases: dict[tuple[str, ...], str] = {}
    for ref in sorted(refs.values(), key=lambda r: (r.module, r.attr)):
        if ref.absolute:  # import the module, refer to module.Class
            if ref.module not in module_aliases:
                alias = module_aliases[ref.module] = names.claim(ref.module[-1])
                imports.append(_import(".".join(ref.module[:-1]), ref.module[-1], alias))
            expr[ref.proto_name] = f"{module_aliases[ref.module]}.{ref.attr}"
            continue
        head, _, rest = ref.attr.partition(".")
        if not is_package_name(head):
            raise ModelError(
                f"{proto.name}: message {ref.proto_name} becomes the Python class {head!r}, "
                "which Python cannot import; rename the message"
            )
        alias = names.claim(head)
        imports.append(_import(_relative(directory, ref.module), head, alias))
        expr[ref.proto_name] = f"{alias}.{rest}" if rest else alias

    # A method defined in a class body shadows, for the annotations after it, any
    # module name it equals; keep such methods clear of the names annotations use.
    annotation_names = {e.split(".")[0] for e in expr.values()} | {"float"}
    services = tuple(
        _build_service(
            proto, index, service, service_names[index], expr, comments, annotation_names
        )
        for index, service in enumerate(proto.service)
    )
    specs_only = options.output == "specs"
    exports = tuple(
        sorted(
            name
            for s in services
            for name in (
                s.spec,
                *(m.const for m in s.methods),
                *(() if specs_only else (s.handler, s.register, *(c.name for c in s.clients))),
            )
        )
    )
    # Only signatures and decorators (clients, handlers) need these.
    deprecated = any(s.deprecated or any(m.deprecated for m in s.methods) for s in services)
    streaming = any(m.kind != f"{rt.KIND}.UNARY" for s in services for m in s.methods)
    return FileModel(
        source=proto.name,
        output=output,
        specs_only=specs_only,
        runtime_import=rt.SPECS_IMPORT if specs_only else rt.RUNTIME_IMPORT,
        std_imports=tuple(
            line
            for line, needed in (
                ("import typing as _t", streaming),
                ("import typing_extensions as _te", deprecated),
            )
            if needed and not specs_only
        ),
        imports=tuple(sorted(imports, key=lambda i: (i.source, i.name))),
        exports=exports,
        # One name (output=specs, a service with no rpc) is a one-item tuple.
        all_block=tuple_of(0, "__all__ = ", [literal(name) for name in exports]),
        services=services,
        files=embedded,
        file_modules=tuple(file_modules),
        # Collected with the linked modules' files, they sit one tuple deeper.
        file_entries=tuple(_proto_file_entry(f, 8 if file_modules else 4) for f in embedded),
    )


def _proto_file_entry(file: ProtoFileModel, indent: int) -> str:
    inner = indent + 4
    return exploded(
        indent,
        rt.PROTO_FILE,
        [
            f"name={literal(file.name)}",
            f"descriptor={literal(file.descriptor)}",
            f"dependencies={tuple_value(inner, [literal(d) for d in file.dependencies])}",
            f"symbols={tuple_value(inner, [literal(s) for s in file.symbols])}",
        ],
        ",",
    )


@dataclass(frozen=True)
class _ServiceNames:
    spec: str
    client: str
    sync_client: str
    handler: str
    register: str
    methods: tuple[str, ...]  # one typed module constant per rpc


def _service_names(proto: FileDescriptorProto, names: Names) -> list[_ServiceNames]:
    result = []
    for service in proto.service:
        base = service_base_name(service.name)
        wanted = (
            f"{constant_name(base)}_SPEC",
            f"{base}Client",
            f"{base}SyncClient",
            f"{base}Handler",
        )
        if any(w in names for w in wanted):
            # `Greeter` and `GreeterService` in one file: the second keeps its suffix.
            base = service_base_name(service.name + "Service")
        result.append(
            _ServiceNames(
                spec=names.claim(f"{constant_name(base)}_SPEC"),
                client=names.claim(f"{base}Client"),
                sync_client=names.claim(f"{base}SyncClient"),
                handler=names.claim(f"{base}Handler"),
                register=names.claim(f"register_{function_name(base)}_handler"),
                methods=tuple(
                    names.claim(f"{constant_name(base)}_{constant_name(m.name)}")
                    for m in service.method
                ),
            )
        )
    return result


def _build_service(
    proto: FileDescriptorProto,
    index: int,
    service: ServiceDescriptorProto,
    names: _ServiceNames,
    expr: dict[str, str],
    comments: CommentIndex,
    annotation_names: set[str],
) -> ServiceModel:
    full_name = f"{proto.package}.{service.name}" if proto.package else service.name
    deprecated = service.options.deprecated
    doc = comments.get(_FILE_SERVICE, index)
    seen: dict[str, str] = {}
    methods = []
    for m_index, method in enumerate(service.method):
        method_doc = comments.get(_FILE_SERVICE, index, _SERVICE_METHOD, m_index)
        model = _build_method(
            proto, service, full_name, m_index, method, names, expr, method_doc, annotation_names
        )
        if model.py_name in seen:
            raise ModelError(
                f"{proto.name}: service {service.name}: rpcs {seen[model.py_name]} and "
                f"{method.name} both become the Python method {model.py_name!r}"
            )
        seen[model.py_name] = method.name
        methods.append(model)
    decorators = (_deprecated(f"service {full_name} is deprecated"),) if deprecated else ()

    def client(name: str, base: str, doc: str, methods: list[DefModel]) -> ClientModel:
        return ClientModel(
            name=name,
            base=base,
            doc=doc,
            docstring=docstring(_CLASS, doc),
            decorators=decorators,
            methods=tuple(methods),
        )

    lead = f"{doc}\n\n" if doc else ""
    sync_doc = f"{lead}Calls {full_name} synchronously (for WSGI apps, scripts and notebooks)."
    handler_doc = (
        f"{lead}Serves {full_name}: override its methods; those left out answer UNIMPLEMENTED."
    )
    clients = (
        client(names.client, rt.STUB, doc or f"Calls {full_name}.", [m.client for m in methods]),
        client(names.sync_client, rt.SYNC_STUB, sync_doc, [m.sync_client for m in methods]),
    )
    return ServiceModel(
        proto_name=service.name,
        full_name=full_name,
        spec=names.spec,
        handler=names.handler,
        register=names.register,
        doc=doc,
        handler_doc=handler_doc,
        handler_docstring=docstring(_CLASS, handler_doc),
        register_def=fit(
            0,
            f"def {names.register}",
            [f"service: {rt.SERVICE}", f"handler: {names.handler}"],
            " -> None:",
        ),
        deprecated=deprecated,
        args=ServiceArgs(
            name=literal(full_name),
            methods=tuple_value(_ARG, [m.const for m in methods]),
            deprecated=literal(deprecated),
            doc=literal(doc),
        ),
        clients=clients,
        methods=tuple(methods),
    )


def _deprecated(message: str) -> str:
    return f"_te.deprecated({literal(message)})"


def _build_method(
    proto: FileDescriptorProto,
    service: ServiceDescriptorProto,
    full_name: str,
    index: int,
    method: MethodDescriptorProto,
    names: _ServiceNames,
    expr: dict[str, str],
    doc: str,
    annotation_names: set[str],
) -> MethodModel:
    shape = _SHAPES[Kind.of(method.client_streaming, method.server_streaming)]
    req = expr[method.input_type.lstrip(".")]
    resp = expr[method.output_type.lstrip(".")]
    spec_ref = names.methods[index]
    endpoint = f"{service.name}.{method.name}"
    deprecated = method.options.deprecated
    py_name = method_name(method.name)
    while py_name in annotation_names:
        py_name += "_"
    decorators = (
        (_deprecated(f"rpc {full_name}.{method.name} is deprecated"),) if deprecated else ()
    )

    def define(
        is_async: bool, params: list[str], returns: str, decorators: tuple[str, ...], body: str
    ) -> DefModel:
        head = f"async def {py_name}" if is_async else f"def {py_name}"
        return DefModel(
            py_name=py_name,
            is_async=is_async,
            params=tuple(params),
            returns=returns,
            decorators=decorators,
            doc=doc,
            signature=fit(_CLASS, head, params, f" -> {returns}:"),
            docstring=docstring(_BODY, doc) if doc else "",
            body=body,
        )

    def client(flavour: ClientShape) -> DefModel:
        params = ["self"]
        args = [spec_ref]
        if flavour.input:
            params += [flavour.input.format(req=req), "/"]
            args.append(flavour.input.split(":")[0])
        params += ["*", _TIMEOUT, _METADATA]
        args += ["timeout=timeout", "metadata=metadata"]
        stub = f"self.{shape.stub_call}"
        call = f"return await {stub}" if flavour.is_async else f"return {stub}"
        returns = flavour.returns.format(req=req, resp=resp)
        return define(flavour.is_async, params, returns, decorators, fit(_BODY, call, args))

    try:
        rules = http_rules(method.options)
    except ValueError as exc:  # pragma: no cover - protoc validates options first
        raise ModelError(f"{proto.name}: rpc {endpoint}: bad google.api.http: {exc}") from exc
    path = f"/{full_name}/{method.name}"
    kind = f"{rt.KIND}.{shape.member}"
    request_proto = method.input_type.lstrip(".")
    response_proto = method.output_type.lstrip(".")
    handler_params = ["self", shape.handler_input.format(req=req), f"context: {rt.CONTEXT}"]
    return MethodModel(
        index=index,
        const=spec_ref,
        proto_name=method.name,
        py_name=py_name,
        endpoint=endpoint,
        path=path,
        kind=kind,
        request=req,
        response=resp,
        request_proto=request_proto,
        response_proto=response_proto,
        doc=doc,
        deprecated=deprecated,
        http_rules=rules,
        args=MethodArgs(
            name=literal(endpoint),
            path=literal(path),
            kind=kind,
            request_type=req,
            response_type=resp,
            handler_attr=literal(py_name),
            # Rules sit one a line even when there is one: each has a magic trailing comma.
            http_rules=(
                exploded_value(_ARG, [_http_rule(r, _ARG + 4) for r in rules]) if rules else "()"
            ),
            deprecated=literal(deprecated),
            doc=literal(doc),
            request_name=literal(request_proto),
            response_name=literal(response_proto),
            idempotency=_idempotency(method),
        ),
        client=client(shape.client),
        sync_client=client(shape.sync_client),
        handler=define(
            shape.handler_async,
            handler_params,
            shape.handler_returns.format(req=req, resp=resp),
            (),
            f"{' ' * _BODY}raise {rt.UNIMPLEMENTED}({spec_ref})",
        ),
    )


#: MethodOptions.IdempotencyLevel numbers -> the runtime's Idempotency members
_IDEMPOTENCY = {1: "NO_SIDE_EFFECTS", 2: "IDEMPOTENT"}


def _idempotency(method: MethodDescriptorProto) -> str:
    """The rpc's ``option idempotency_level`` as a runtime expression, "" if unset."""
    member = _IDEMPOTENCY.get(int(method.options.idempotency_level))
    return f"{rt.IDEMPOTENCY}.{member}" if member else ""


def _http_rule(rule: HttpRuleModel, indent: int) -> str:
    """One rule as the value of a line at `indent`."""
    fields = [
        f"method={literal(rule.method)}",
        f"path={literal(rule.path)}",
        f"body={literal(rule.body)}",
        f"response_body={literal(rule.response_body)}",
        f"custom={literal(rule.custom)}",
    ]
    return rt.HTTP_RULE + exploded_value(indent, fields)


def _check_distinct_outputs(files: list[FileModel]) -> None:
    seen: dict[str, str] = {}
    for file in files:
        if file.output in seen:
            raise ModelError(
                f"{file.source}: its micro module {file.output} would overwrite the one "
                f"generated for {seen[file.output]}"
            )
        seen[file.output] = file.source


def _package_inits(request: CodeGeneratorRequest, files: list[FileModel]) -> tuple[str, ...]:
    """`__init__.py` files needed for source_relative modules, minus those betterproto2 writes."""
    written: set[tuple[str, ...]] = set()
    for proto in request.proto_file:
        parts = tuple(proto.package.split(".")) if proto.package else ()
        for i in range(len(parts) + 1):
            written.add(parts[:i])
    needed: set[tuple[str, ...]] = set()
    for file in files:
        parts = PurePosixPath(file.output).parent.parts
        for i in range(len(parts) + 1):
            needed.add(tuple(parts[:i]))
    return tuple(sorted("/".join((*d, "__init__.py")) for d in needed - written))
