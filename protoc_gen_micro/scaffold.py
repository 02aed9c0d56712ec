"""`micro-new NAME`: a ready-to-run service project, rendered from templates/scaffold/."""

from __future__ import annotations

import importlib.metadata
import json
import keyword
import re
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import jinja2

from . import config as micro_config
from . import gen
from .naming import constant_name, function_name, service_base_name
from .protoc import ProtocError
from .render import format_python

NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")
PART_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
MAX_NAME = 50
# Top-level Python names a project's own package must not take: they would shadow what the
# project imports (or its generated `gen` package, `tests`, `main.py`, `client.py`).
RESERVED = frozenset(
    {
        "betterproto2",
        "client",
        "gen",
        "google",
        "grpc",
        "grpc_tools",
        "grpclib",
        "h2",
        "main",
        "micro",
        "pip",
        "protoc_gen_micro",
        "pytest",
        "setuptools",
        "test",
        "tests",
        "typing_extensions",
    }
)
GENERATOR = "protoc-gen-micro"


class ScaffoldError(Exception):
    pass


@dataclass(frozen=True)
class ProjectNames:
    """Every name a scaffold uses, derived once from NAME and the options."""

    name: str  # "hello-world": registry name, distribution name, default directory
    ident: str  # "hello_world": the proto file stem and package component
    module: str  # "hello_world" or "acme.hello": the Python package the user edits
    proto_package: str  # "hello_world.v1" / "acme.hello_world.v1"
    proto_file: str  # "hello_world/v1/hello_world.proto" (relative to proto/)
    service: str  # "HelloWorld": the proto service
    gen_module: str  # "gen.hello_world.v1": betterproto2's messages
    micro_module: str  # "gen.hello_world.v1.hello_world_micro"
    client: str  # "HelloWorldClient"
    handler_base: str  # "HelloWorldHandler"
    register: str  # "register_hello_world_handler"
    spec: str  # "HELLO_WORLD_SPEC"

    @property
    def module_dir(self) -> str:
        return self.module.replace(".", "/")

    @property
    def top_module(self) -> str:
        return self.module.split(".")[0]

    @property
    def test_file(self) -> str:
        return f"tests/test_{self.module.replace('.', '_')}.py"


def _check_python_name(what: str, dotted: str, flag: str) -> None:
    parts = dotted.split(".")
    for part in parts:
        if not part.isidentifier() or not part.isascii():
            raise ScaffoldError(f"{what} {dotted!r}: {part!r} is not a Python identifier")
        if keyword.iskeyword(part):
            raise ScaffoldError(f"{what} {dotted!r}: {part!r} is a Python keyword; {flag}")
    top = parts[0]
    if top in RESERVED:
        raise ScaffoldError(
            f"{what} {dotted!r} would shadow the {top!r} module the project uses; {flag}"
        )
    if top in sys.stdlib_module_names:
        raise ScaffoldError(
            f"{what} {dotted!r} would shadow the standard library module {top!r}; {flag}"
        )


def project_names(name: str, *, module: str | None = None, namespace: str = "") -> ProjectNames:
    if not NAME_PATTERN.fullmatch(name) or len(name) > MAX_NAME:
        raise ScaffoldError(
            f"invalid service name {name!r}: use lowercase letters and digits, words joined by "
            f"'-' or '_', starting with a letter (e.g. 'greeter' or 'order-history'), "
            f"at most {MAX_NAME} characters"
        )
    ident = name.replace("-", "_")
    if keyword.iskeyword(ident):
        raise ScaffoldError(f"invalid service name {name!r}: {ident!r} is a Python keyword")
    ns_parts = namespace.split(".") if namespace else []
    for part in ns_parts:
        if not PART_PATTERN.fullmatch(part) or keyword.iskeyword(part):
            raise ScaffoldError(
                f"invalid namespace {namespace!r}: use dot-separated lowercase words "
                f"(e.g. 'acme' or 'acme.billing'), none a Python keyword"
            )
    if module is None:
        module = ident
        _check_python_name("the Python package", module, "pick another name or pass --module")
    else:
        _check_python_name("--module", module, "pass another --module")
    package = [*ns_parts, ident, "v1"]
    service = "".join(word.capitalize() for word in re.split(r"[-_]", name))
    base = service_base_name(service)
    gen_module = ".".join(["gen", *package])
    return ProjectNames(
        name=name,
        ident=ident,
        module=module,
        proto_package=".".join(package),
        proto_file="/".join([*package, f"{ident}.proto"]),
        service=service,
        gen_module=gen_module,
        micro_module=f"{gen_module}.{ident}_micro",
        client=f"{base}Client",
        handler_base=f"{base}Handler",
        register=f"register_{function_name(base)}_handler",
        spec=f"{constant_name(base)}_SPEC",
    )


@dataclass(frozen=True)
class MicroSource:
    """Where the project installs micro-runtime and protoc-gen-micro from: a local checkout of
    this repository (`file://` requirements), or the package index (pinned versions)."""

    version: str
    checkout: Path | None = None

    @property
    def requirements(self) -> list[str]:
        if self.checkout is None:
            return [f"micro-runtime=={self.version}", f"{GENERATOR}=={self.version}"]
        return [
            f"micro-runtime @ {(self.checkout / 'runtime').as_uri()}",
            f"{GENERATOR} @ {self.checkout.as_uri()}",
        ]


def generator_version() -> str:
    return importlib.metadata.version(GENERATOR)


def checkout_source(path: Path) -> MicroSource:
    path = path.expanduser().resolve()
    if not (path / "pyproject.toml").is_file() or not (path / "runtime/pyproject.toml").is_file():
        raise ScaffoldError(
            f"--micro-source {path}: not a micro checkout (it needs pyproject.toml and "
            f"runtime/pyproject.toml)"
        )
    return MicroSource(generator_version(), path)


def installed_source() -> MicroSource:
    """The checkout this generator was pip-installed from, if it came from a local directory
    (PEP 610 direct_url.json); otherwise the package index."""
    version = generator_version()
    raw = importlib.metadata.distribution(GENERATOR).read_text("direct_url.json")
    if raw:
        data = json.loads(raw)
        url = urlparse(str(data.get("url", "")))
        if url.scheme == "file" and "dir_info" in data:
            path = Path(url2pathname(url.path))
            if (path / "runtime/pyproject.toml").is_file():
                return MicroSource(version, path)
    return MicroSource(version)


# path in the project -> template in templates/scaffold/ ("{...}" filled from ProjectNames)
FILES: tuple[tuple[str, str], ...] = (
    ("pyproject.toml", "pyproject.toml.j2"),
    ("requirements-micro.txt", "requirements-micro.txt.j2"),
    ("Makefile", "Makefile.j2"),
    ("README.md", "README.md.j2"),
    (".gitignore", "gitignore.j2"),
    (".dockerignore", "dockerignore.j2"),
    ("Dockerfile", "Dockerfile.j2"),
    ("k8s/configmap.yaml", "k8s-configmap.yaml.j2"),
    ("k8s/deployment.yaml", "k8s-deployment.yaml.j2"),
    ("k8s/service.yaml", "k8s-service.yaml.j2"),
    ("proto/{proto_file}", "service.proto.j2"),
    ("{module_dir}/__init__.py", "package_init.py.j2"),
    ("{module_dir}/handler.py", "handler.py.j2"),
    ("main.py", "main.py.j2"),
    ("client.py", "client.py.j2"),
    ("tests/__init__.py", "tests_init.py.j2"),
    ("tests/conftest.py", "conftest.py.j2"),
    ("{test_file}", "test_service.py.j2"),
)


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(
            str(resources.files("protoc_gen_micro.templates") / "scaffold")
        ),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(names: ProjectNames, source: MicroSource) -> dict[str, str]:
    """Every file of the project except the generated code, by relative path."""
    env = _environment()
    fields = {
        "proto_file": names.proto_file,
        "module_dir": names.module_dir,
        "test_file": names.test_file,
    }
    files: dict[str, str] = {}
    for pattern, template in FILES:
        path = pattern.format(**fields)
        text = env.get_template(template).render(n=names, source=source)
        files[path] = format_python(text, path) if path.endswith(".py") else text
    parents = names.module.split(".")[:-1]
    for depth in range(1, len(parents) + 1):  # acme/__init__.py for --module acme.hello
        files["/".join([*parents[:depth], "__init__.py"])] = ""
    return dict(sorted(files.items()))


def check_target(target: Path, *, force: bool) -> None:
    if target.exists() and not target.is_dir():
        raise ScaffoldError(f"{target} exists and is not a directory")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise ScaffoldError(
            f"{target} exists and is not empty; pick another --dir, or pass --force to write "
            f"the project's files into it"
        )


@dataclass(frozen=True)
class Created:
    """What :func:`create` wrote: how many files, and which existing ones (`--force`) it
    replaced with different content (paths relative to the project)."""

    count: int
    replaced: tuple[str, ...] = ()


def create(
    names: ProjectNames, target: Path, source: MicroSource, *, force: bool = False
) -> Created:
    """Write the project into `target` and generate its code."""
    check_target(target, force=force)
    files = render(names, source)
    replaced: list[str] = []
    for rel, text in files.items():
        path = target / rel
        if path.is_file() and path.read_text(errors="replace") != text:
            replaced.append(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    try:
        config = micro_config.load(target.resolve())
        changes = gen.write(config)
    except (micro_config.ConfigError, gen.GenError, ProtocError) as exc:
        raise ScaffoldError(f"generating the project's code failed: {exc}") from None
    replaced += (f"{config.show(config.out)}/{name}" for name in changes.stale)
    return Created(len(files) + len(changes.missing), tuple(sorted(replaced)))
