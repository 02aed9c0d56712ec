"""`micro gen`: generate a project's protos into its output directory, or check it is current."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from .config import MicroConfig
from .protoc import protoc
from .trees import TreeDiff, compare_trees, sync_tree


class GenError(Exception):
    pass


@dataclass(frozen=True)
class Proto:
    root: Path
    name: str  # relative to root, as protoc sees it: "hello/v1/hello.proto"


def find_protos(config: MicroConfig) -> list[Proto]:
    protos: dict[str, Proto] = {}
    for root in config.proto_roots:
        if not root.is_dir():
            raise GenError(f"proto directory {config.show(root)!r} does not exist")
        for path in sorted(root.rglob("*.proto")):
            name = path.relative_to(root).as_posix()
            if name in protos:
                first = config.show(protos[name].root)
                raise GenError(f"{name} is in two proto roots: {first!r} and {config.show(root)!r}")
            protos[name] = Proto(root, name)
    if not protos:
        roots = ", ".join(repr(config.show(r)) for r in config.proto_roots)
        where = f" (configured in {config.show(config.source)})" if config.source else ""
        raise GenError(f"no .proto files found under {roots}{where}")
    return list(protos.values())


def generate(config: MicroConfig, out: Path) -> None:
    """Run protoc with betterproto2 and micro for every proto of the project into `out`."""
    protoc(
        [p.name for p in find_protos(config)],
        proto_path=[str(p) for p in (*config.proto_roots, *config.include)],
        out=out,
        micro_opt=config.micro_opt,
    )


def write(config: MicroConfig) -> TreeDiff:
    """Regenerate `config.out`; files the generator no longer produces are removed."""
    with tempfile.TemporaryDirectory(prefix="micro-gen-") as tmp:
        fresh = Path(tmp) / "out"
        generate(config, fresh)
        return sync_tree(fresh, config.out)


def check(config: MicroConfig) -> TreeDiff:
    """What regeneration would change in `config.out`; writes nothing there."""
    with tempfile.TemporaryDirectory(prefix="micro-gen-") as tmp:
        fresh = Path(tmp) / "out"
        generate(config, fresh)
        label = config.show(config.out)
        return compare_trees(config.out, fresh, old=f"a/{label}", new=f"b/{label}")
