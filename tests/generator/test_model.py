"""The model itself: tiny CodeGeneratorRequests built in code, through the plugin's own
request -> model step, asserting what each method and file model holds.

The golden tests compare whole modules; these name the part of the model that broke.
"""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys

import black
import pytest
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2
from google.protobuf.compiler.plugin_pb2 import CodeGeneratorRequest
from google.protobuf.descriptor_pb2 import FileDescriptorProto, MethodDescriptorProto

import micro.spec
from protoc_gen_micro.http import HttpRuleModel
from protoc_gen_micro.model import FileModel, MethodModel, ModelError, ServiceModel
from protoc_gen_micro.plugin import request_model
from protoc_gen_micro.render import black_mode, render_file

SHOP = "protos/shop.proto"  # its directory is not its package: the paths= option shows
ANNOTATIONS = "google/api/annotations.proto"
DEPENDENCIES = (ANNOTATIONS, "google/api/http.proto", "google/protobuf/descriptor.proto")
METADATA = "metadata: _micro.Metadata | None = None"


def _comment(file: FileDescriptorProto, path: list[int], text: str) -> None:
    file.source_code_info.location.add(path=path, span=[0, 0, 0], leading_comments=text)


def shop_file() -> FileDescriptorProto:
    """Service Shop: the four kinds, http rules, a deprecated rpc, comments, a keyword."""
    file = FileDescriptorProto(name=SHOP, package="shop.v1", syntax="proto3")
    file.dependency.append(ANNOTATIONS)
    file.message_type.add(name="Item").field.add(
        name="name", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING
    )
    file.message_type.add(name="Query")
    service = file.service.add(name="Shop")

    def rpc(name: str, client: bool = False, server: bool = False) -> MethodDescriptorProto:
        return service.method.add(
            name=name,
            input_type=".shop.v1.Query",
            output_type=".shop.v1.Item",
            client_streaming=client,
            server_streaming=server,
        )

    get = rpc("GetItem")
    rule: http_pb2.HttpRule = get.options.Extensions[annotations_pb2.http]
    rule.get = "/v1/items/{name}"
    rule.additional_bindings.add(post="/v1/items", body="*")
    rpc("Watch", server=True).options.deprecated = True
    rpc("Upload", client=True)
    rpc("Chat", client=True, server=True)
    rpc("Return")  # a Python keyword as a method name
    _comment(file, [6, 0], " Shop sells things.\n")
    _comment(file, [6, 0, 2, 0], " Gets one item\n by name:\n   its key.\n")
    _comment(file, [6, 0, 2, 3], ' Chat talks both ways\n and ends with a quote: "\n')
    return file


def request(*files: FileDescriptorProto, parameter: str = "") -> CodeGeneratorRequest:
    req = CodeGeneratorRequest(parameter=parameter)
    # protoc sends dependencies first, then the files to generate.
    for module in (descriptor_pb2, http_pb2, annotations_pb2):
        req.proto_file.append(FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb))
    req.proto_file.extend(files)
    req.file_to_generate.extend(f.name for f in files)
    return req


def only_service(file: FileModel) -> ServiceModel:
    (service,) = file.services
    return service


def methods(parameter: str = "") -> dict[str, MethodModel]:
    (file,) = request_model(request(shop_file(), parameter=parameter)).files
    return {m.proto_name: m for m in only_service(file).methods}


def test_each_rpc_kind_gets_its_shape() -> None:
    by_name = methods()
    assert [m.proto_name for m in by_name.values()] == [
        "GetItem",
        "Watch",
        "Upload",
        "Chat",
        "Return",
    ]
    assert {name: m.kind for name, m in by_name.items()} == {
        "GetItem": "_micro.Kind.UNARY",
        "Watch": "_micro.Kind.SERVER_STREAM",
        "Upload": "_micro.Kind.CLIENT_STREAM",
        "Chat": "_micro.Kind.BIDI_STREAM",
        "Return": "_micro.Kind.UNARY",
    }
    get, watch, upload, chat = (by_name[n] for n in ("GetItem", "Watch", "Upload", "Chat"))
    # Only the async client's unary and client-stream calls are coroutines.
    assert [m.client.is_async for m in (get, watch, upload, chat)] == [True, False, True, False]
    assert not any(m.sync_client.is_async for m in by_name.values())
    assert [m.handler.is_async for m in (get, watch, upload, chat)] == [True, False, True, False]

    assert get.client.returns == "Item"
    assert watch.client.returns == "_micro.ServerStream[Item]"
    assert watch.sync_client.returns == "_micro.SyncServerStream[Item]"
    assert chat.client.returns == "_micro.BidiStream[Query, Item]"
    assert chat.sync_client.returns == "_micro.SyncBidiStream[Query, Item]"
    assert upload.client.params[1] == "requests: _t.Iterable[Query] | _t.AsyncIterable[Query]"
    assert upload.sync_client.params[1] == "requests: _t.Iterable[Query]"
    assert chat.client.params == ("self", "*", "timeout: float | None = None", METADATA)
    assert watch.handler.params == ("self", "request: Query", "context: _micro.Context")
    assert watch.handler.returns == "_t.AsyncIterator[Item]"
    assert chat.handler.params[1] == "requests: _t.AsyncIterator[Query]"


def test_names_paths_and_types() -> None:
    by_name = methods()
    get = by_name["GetItem"]
    assert get.const == "SHOP_GET_ITEM"
    assert get.py_name == get.client.py_name == get.handler.py_name == "get_item"
    assert get.endpoint == "Shop.GetItem"
    assert get.path == "/shop.v1.Shop/GetItem"
    assert (get.request, get.response) == ("Query", "Item")
    assert (get.request_proto, get.response_proto) == ("shop.v1.Query", "shop.v1.Item")
    assert [m.index for m in by_name.values()] == [0, 1, 2, 3, 4]

    keyword = by_name["Return"]
    assert keyword.py_name == "return_"
    assert keyword.const == "SHOP_RETURN"
    assert keyword.args.handler_attr == '"return_"'
    assert keyword.client.signature.startswith("    async def return_(\n")


def test_the_runtime_method_arguments_are_spelled_from_the_model() -> None:
    for m in methods().values():
        spelled = {
            "name": m.endpoint,
            "path": m.path,
            "handler_attr": m.py_name,
            "deprecated": m.deprecated,
            "doc": m.doc,
            "request_name": m.request_proto,
            "response_name": m.response_proto,
        }
        assert {key: ast.literal_eval(getattr(m.args, key)) for key in spelled} == spelled
        assert (m.args.kind, m.args.request_type, m.args.response_type) == (
            m.kind,
            m.request,
            m.response,
        )


def test_http_rules_and_their_spelling() -> None:
    by_name = methods()
    get = by_name["GetItem"]
    assert get.http_rules == (
        HttpRuleModel(
            method="GET", path="/v1/items/{name}", body="", response_body="", custom=False
        ),
        HttpRuleModel(method="POST", path="/v1/items", body="*", response_body="", custom=False),
    )

    def rule(method: str, path: str, body: str) -> str:
        return (
            "        _micro.HttpRule(\n"
            f'            method="{method}",\n'
            f'            path="{path}",\n'
            f'            body="{body}",\n'
            '            response_body="",\n'
            "            custom=False,\n"
            "        ),\n"
        )

    expected = (
        "(\n" + rule("GET", "/v1/items/{name}", "") + rule("POST", "/v1/items", "*") + "    )"
    )
    assert get.args.http_rules == expected
    assert by_name["Watch"].http_rules == ()
    assert by_name["Watch"].args.http_rules == "()"


def test_deprecated_rpc_warns_from_both_clients_not_the_handler() -> None:
    by_name = methods()
    watch = by_name["Watch"]
    assert watch.deprecated
    warning = '_te.deprecated("rpc shop.v1.Shop.Watch is deprecated")'
    assert watch.client.decorators == watch.sync_client.decorators == (warning,)
    assert watch.handler.decorators == ()
    assert [m.proto_name for m in by_name.values() if m.deprecated] == ["Watch"]
    assert by_name["GetItem"].client.decorators == ()


def test_comments_become_docs_and_docstrings() -> None:
    by_name = methods()
    get = by_name["GetItem"]
    assert get.doc == "Gets one item\nby name:\n  its key."  # dedented, line breaks kept
    assert get.client.doc == get.handler.doc == get.doc
    # In a method body: every line at its indent, the closing quotes on their own line.
    assert get.client.docstring == (
        '        """Gets one item\n        by name:\n          its key.\n        """'
    )
    assert get.handler.docstring == get.client.docstring
    chat = ast.literal_eval(by_name["Chat"].handler.docstring.strip())
    assert inspect.cleandoc(chat) == 'Chat talks both ways\nand ends with a quote: "'
    assert by_name["Upload"].doc == ""
    assert by_name["Upload"].client.docstring == ""  # the template writes no docstring then

    (file,) = request_model(request(shop_file())).files
    service = only_service(file)
    assert service.doc == "Shop sells things."
    client, sync_client = service.clients
    assert (client.name, client.base) == ("ShopClient", "_micro.Stub")
    assert (sync_client.name, sync_client.base) == ("ShopSyncClient", "_micro.SyncStub")
    assert client.docstring == '    """Shop sells things."""'
    assert sync_client.doc.startswith("Shop sells things.\n\nCalls shop.v1.Shop synchronously")
    assert service.handler_doc.startswith("Shop sells things.\n\nServes shop.v1.Shop: ")
    handler_docstring = ast.literal_eval(service.handler_docstring.strip())
    assert inspect.cleandoc(handler_docstring) == service.handler_doc


def test_signatures_and_bodies_take_blacks_three_layouts() -> None:
    by_name = methods()
    get, chat = by_name["GetItem"], by_name["Chat"]
    # One line when it fits.
    assert get.handler.signature == (
        "    async def get_item(self, request: Query, context: _micro.Context) -> Item:"
    )
    assert get.handler.body == "        raise _micro.errors.unimplemented(SHOP_GET_ITEM)"
    assert get.sync_client.body == (
        "        return self._unary(SHOP_GET_ITEM, request, timeout=timeout, metadata=metadata)"
    )
    # Else the items on one indented line.
    assert chat.client.signature == (
        "    def chat(\n"
        f"        self, *, timeout: float | None = None, {METADATA}\n"
        "    ) -> _micro.BidiStream[Query, Item]:"
    )
    assert get.client.body == (
        "        return await self._unary(\n"
        "            SHOP_GET_ITEM, request, timeout=timeout, metadata=metadata\n"
        "        )"
    )
    # Else one item a line, with a trailing comma.
    assert get.client.signature == (
        "    async def get_item(\n"
        + "".join(f"        {param},\n" for param in get.client.params)
        + "    ) -> Item:"
    )


def test_black_leaves_the_laid_out_methods_alone() -> None:
    for m in methods().values():
        for method in (m.client, m.sync_client, m.handler):
            lines = [f"    @{d}" for d in method.decorators]
            lines += [method.signature, method.docstring, method.body]
            source = "class C:\n" + "\n".join(line for line in lines if line) + "\n"
            assert black.format_str(source, mode=black_mode()) == source


def test_service_model_and_its_spec_arguments() -> None:
    (file,) = request_model(request(shop_file())).files
    service = only_service(file)
    assert (service.proto_name, service.full_name) == ("Shop", "shop.v1.Shop")
    assert (service.spec, service.handler, service.register) == (
        "SHOP_SPEC",
        "ShopHandler",
        "register_shop_handler",
    )
    assert service.register_def == (
        "def register_shop_handler(service: _micro.Service, handler: ShopHandler) -> None:"
    )
    assert service.args.name == '"shop.v1.Shop"'
    assert service.args.methods == (
        "(\n"
        "        SHOP_GET_ITEM,\n"
        "        SHOP_WATCH,\n"
        "        SHOP_UPLOAD,\n"
        "        SHOP_CHAT,\n"
        "        SHOP_RETURN,\n"
        "    )"
    )
    assert ast.literal_eval(service.args.doc) == "Shop sells things."
    assert service.args.deprecated == "False"


def test_the_file_model_with_betterproto2_messages() -> None:
    model = request_model(request(shop_file()))
    (file,) = model.files
    assert file.source == SHOP
    assert file.output == "shop/v1/shop_micro.py"  # betterproto2 places by package
    assert model.package_inits == ()
    assert [i.line for i in file.imports] == ["from . import Item", "from . import Query"]
    # Streaming rpcs need typing, a deprecated one typing_extensions.
    assert file.std_imports == ("import typing as _t", "import typing_extensions as _te")
    assert file.exports == (
        "SHOP_CHAT",
        "SHOP_GET_ITEM",
        "SHOP_RETURN",
        "SHOP_SPEC",
        "SHOP_UPLOAD",
        "SHOP_WATCH",
        "ShopClient",
        "ShopHandler",
        "ShopSyncClient",
        "register_shop_handler",
    )
    assert file.all_block == (
        "__all__ = (\n" + "".join(f'    "{name}",\n' for name in file.exports) + ")"
    )


def test_the_file_embeds_itself_and_its_dependencies_for_reflection() -> None:
    shop = shop_file()
    (file,) = request_model(request(shop)).files
    assert tuple(f.name for f in file.files) == (SHOP, *DEPENDENCIES)
    own = file.files[0]
    assert own.dependencies == (ANNOTATIONS,)
    assert own.symbols == (
        "shop.v1.Item",
        "shop.v1.Query",
        "shop.v1.Shop",
        "shop.v1.Shop.GetItem",
        "shop.v1.Shop.Watch",
        "shop.v1.Shop.Upload",
        "shop.v1.Shop.Chat",
        "shop.v1.Shop.Return",
    )
    embedded = FileDescriptorProto.FromString(own.descriptor)
    assert not embedded.HasField("source_code_info")  # comments stay out of the module
    shop.ClearField("source_code_info")
    assert embedded == shop
    assert file.file_modules == ()
    assert len(file.file_entries) == len(file.files)
    entry = file.file_entries[0]
    assert entry.startswith('    _micro.ProtoFile(\n        name="protos/shop.proto",\n')
    assert '        dependencies=("google/api/annotations.proto",),\n' in entry
    assert entry.endswith('            "shop.v1.Shop.Return",\n        ),\n    ),')


@pytest.mark.parametrize(
    ("parameter", "output", "imports", "request_type", "inits"),
    [
        ("", "shop/v1/shop_micro.py", ["from . import Query"], "Query", ()),
        (
            "paths=source_relative",
            "protos/shop_micro.py",
            ["from ..shop.v1 import Query"],
            "Query",
            ("protos/__init__.py",),
        ),
        # `_pb2` modules sit by file path either way, and are imported whole.
        ("messages=protobuf", "protos/shop_micro.py", ["from protos import shop_pb2"], None, ()),
        (
            "paths=source_relative,messages=protobuf",
            "protos/shop_micro.py",
            ["from protos import shop_pb2"],
            None,
            (),
        ),
    ],
)
def test_output_path_and_imports_follow_the_options(
    parameter: str,
    output: str,
    imports: list[str],
    request_type: str | None,
    inits: tuple[str, ...],
) -> None:
    file = shop_file()
    for method in file.service[0].method:
        method.output_type = ".shop.v1.Query"
    model = request_model(request(file, parameter=parameter))
    (micro_file,) = model.files
    assert micro_file.output == output
    assert [i.line for i in micro_file.imports] == imports
    assert model.package_inits == inits
    get = only_service(micro_file).methods[0]
    assert get.request == get.response == (request_type or "shop_pb2.Query")
    assert get.client.signature.endswith(f" -> {get.response}:")


def test_a_dependency_with_a_micro_module_is_linked_not_embedded() -> None:
    orders = FileDescriptorProto(name="protos/orders.proto", package="shop.v1", syntax="proto3")
    orders.dependency.append(SHOP)
    orders.message_type.add(name="Order")
    orders.service.add(name="OrderService").method.add(
        name="Place", input_type=".shop.v1.Order", output_type=".shop.v1.Item"
    )
    model = request_model(request(shop_file(), orders))
    shop, placed = model.files
    assert placed.output == "shop/v1/orders_micro.py"
    assert tuple(f.name for f in placed.files) == ("protos/orders.proto",)
    assert placed.file_modules == ("_shop_micro",)
    assert [i.line for i in placed.imports] == [
        "from . import Item",
        "from . import Order",
        "from . import shop_micro as _shop_micro",
    ]
    # Collected with the linked module's files, the entries sit one tuple deeper.
    assert placed.file_entries[0].startswith("        _micro.ProtoFile(\n            name=")
    assert shop.file_entries[0].startswith("    _micro.ProtoFile(\n        name=")
    service = only_service(placed)
    assert (service.spec, service.handler) == ("ORDER_SPEC", "OrderHandler")
    assert placed.std_imports == ()  # unary only, nothing deprecated
    assert service.args.methods == "(ORDER_PLACE,)"


def test_an_unknown_message_type_is_a_model_error_naming_the_rpc() -> None:
    file = shop_file()
    file.service[0].method[2].input_type = ".shop.v1.Missing"
    with pytest.raises(ModelError, match=r"protos/shop.proto: rpc Shop.Upload: unknown message"):
        request_model(request(file))


def test_output_specs_keeps_the_specs_and_drops_clients_and_handlers() -> None:
    (full,) = request_model(request(shop_file())).files
    (specs,) = request_model(request(shop_file(), parameter="output=specs")).files
    assert (full.specs_only, specs.specs_only) == (False, True)
    assert full.runtime_import == "import micro as _micro"
    assert specs.runtime_import == "from micro import spec as _micro"
    assert specs.std_imports == ()  # no signatures, no decorators
    assert specs.exports == (
        "SHOP_CHAT",
        "SHOP_GET_ITEM",
        "SHOP_RETURN",
        "SHOP_SPEC",
        "SHOP_UPLOAD",
        "SHOP_WATCH",
    )
    # The same module, path, files and Method arguments as the full module.
    assert (specs.output, specs.imports, specs.file_entries) == (
        full.output,
        full.imports,
        full.file_entries,
    )
    assert [m.args for m in only_service(specs).methods] == [
        m.args for m in only_service(full).methods
    ]
    assert only_service(specs).args == only_service(full).args


def test_a_specs_module_defines_constants_only_and_uses_only_micro_spec() -> None:
    (file,) = request_model(request(shop_file(), parameter="output=specs")).files
    source = render_file(file)
    tree = ast.parse(source)
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef | ast.FunctionDef)]
    absolute = [
        ast.unparse(n)
        for n in tree.body
        if isinstance(n, ast.Import) or (isinstance(n, ast.ImportFrom) and n.level == 0)
    ]
    assert absolute == ["from __future__ import annotations", "from micro import spec as _micro"]
    used = {
        n.attr
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "_micro"
    }
    assert used == {"HttpRule", "Kind", "Method", "ProtoFile", "ServiceSpec"}
    assert all(hasattr(micro.spec, name) for name in used)
    assert black.format_str(source, mode=black_mode()) == source


def test_a_name_missing_from_micro_spec_fails_generation_loudly() -> None:
    """Specs modules import micro.spec alone: a name moved off it stops the plugin."""
    moved = (
        "import micro, micro.spec\ndel micro.spec.Method\nimport protoc_gen_micro.runtime_names\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", moved], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 1
    assert "runtime name micro.spec.Method is missing from the micro runtime" in result.stderr
