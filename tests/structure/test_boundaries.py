"""The package boundaries the architecture promises (docs/architecture.md), read from the
code's imports, function-level ones included: gRPC libraries only under micro/transport,
click only in the CLIs, protobuf never in the framework's base, and no import circle."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"micro": ROOT / "runtime" / "micro", "protoc_gen_micro": ROOT / "protoc_gen_micro"}


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for top, base in PACKAGES.items():
        for path in sorted(base.rglob("*.py")):
            parts = [top, *path.relative_to(base).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = modules()


def imports(name: str, path: Path) -> Iterator[str]:
    """Every module `name` imports (absolute names), wherever the import statement is."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield full if full in MODULES else base


def first_party(target: str) -> str | None:
    """The module of this tree that an import names (its longest known prefix)."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        targets = {first_party(t) for t in imports(name, path)}
        edges[name] = {t for t in targets if t is not None and t != name}
    return edges


def importers_of(library: str) -> set[str]:
    return {
        name
        for name, path in MODULES.items()
        if any(t == library or t.startswith(f"{library}.") for t in imports(name, path))
    }


def under(names: set[str], *prefixes: str) -> set[str]:
    return {n for n in names if not any(n == p or n.startswith(f"{p}.") for p in prefixes)}


@pytest.mark.parametrize("library", ["grpclib", "grpc", "h2"])
def test_grpc_libraries_are_imported_only_by_the_transport(library: str) -> None:
    assert under(importers_of(library), "micro.transport") == set()


def test_click_is_imported_only_by_the_command_line_modules() -> None:
    commands = ("micro.cli", "protoc_gen_micro.cli_gen", "protoc_gen_micro.cli_new")
    assert under(importers_of("click"), *commands) == set()


def _top_level_importers(target: str) -> set[str]:
    """Modules with a module-level import of ``target`` (or of something under it)."""
    found = set()
    for name, path in MODULES.items():
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if node.level == 0 else []
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            if any(n == target or n.startswith(f"{target}.") for n in names):
                found.add(name)
    return found


def test_the_framework_base_needs_no_protobuf_and_no_extra() -> None:
    extras = ("micro.cli", "micro.gateway", "micro.dynamic", "protoc_gen_micro")
    # micro._upb_codec is the fast codec of the `fast` extra: micro.codec imports it only
    # inside a function, and falls back to betterproto2's codec when protobuf is missing
    optional = {"micro.codec", "micro._upb_codec"}
    for library in ("google.protobuf", "starlette", "uvicorn", "click", "jinja2", "black"):
        assert under(importers_of(library), *extras) - optional == set(), library
    # micro.codec imports protobuf's json_format only for `_pb2` messages, inside a function
    assert "micro.codec" not in _top_level_importers("google")
    # and no module imports the fast codec at module level: `import micro` never needs it
    assert _top_level_importers("micro._upb_codec") == set()
    assert {
        name
        for name, path in MODULES.items()
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.ImportFrom)
        and (node.module, node.level) in {("micro", 0), (None, 1)}
        and any(alias.name == "_upb_codec" for alias in node.names)
    } == set()


@pytest.mark.parametrize("library", ["jwt", "cryptography"])
def test_only_the_jwt_verifier_imports_pyjwt_and_the_rest_reaches_it_inside_functions(
    library: str,
) -> None:
    """The `auth` extra: `import micro` (and a service without JWT settings) needs no pyjwt."""
    assert importers_of(library) == {"micro.auth.jwt"}
    assert _top_level_importers("micro.auth.jwt") == set()


def test_import_micro_imports_no_operations_module() -> None:
    edges = graph()
    seen: set[str] = set()
    todo = ["micro"]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(edges[name])
    operations = seen - under(seen, "micro.cli", "micro.gateway", "micro.dynamic")
    assert operations == set()
    assert seen - under(seen, "protoc_gen_micro") == set()


def test_no_import_circle() -> None:
    edges = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(name: str) -> None:  # Tarjan's strongly connected components
        index[name] = low[name] = len(index)
        stack.append(name)
        for target in sorted(edges[name]):
            if target not in index:
                visit(target)
                low[name] = min(low[name], low[target])
            elif target in stack:
                low[name] = min(low[name], index[target])
        if low[name] == index[name]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == name:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for name in sorted(edges):
        if name not in index:
            visit(name)
    assert circles == []


def test_the_builtin_services_tree_reaches_the_runtime_only_through_micro_spec() -> None:
    """runtime/micro/_builtin/ (generated with output=specs) is imported while `micro` is
    (micro -> micro.service -> micro.health): micro.spec is all of the runtime it may use."""
    edges = graph()
    builtin = [name for name in MODULES if name.startswith("micro._builtin")]
    assert "micro._builtin.grpc.health.v1.health_micro" in builtin
    for name in builtin:
        assert {t for t in edges[name] if not t.startswith("micro._builtin")} <= {"micro.spec"}
