"""Regenerate the runtime's built-in services: `python -m scripts.builtin_protos [--check]`.

Every `micro.Service` serves `grpc.health.v1.Health` and `grpc.reflection.v1(alpha)`, and
the embedded broker hands messages over with `micro.broker.v1.Broker`. Their messages and
specs are generated from `runtime/protos/` into `runtime/micro/_builtin/` by the same two
plugins as any project's: betterproto2 for the messages, protoc-gen-micro with
`output=specs` for `_FILES`, the `Method` constants and the `ServiceSpec` (no clients or
handlers: `micro.health`, `micro.reflection` and `micro.broker.embedded` write those, and
a module that imported `micro` would be an import circle). `python -m scripts.golden`
regenerates and checks this tree with the golden ones.

The plugin imports the runtime, which imports this tree: if the tree is broken, restore it
from git (`git checkout runtime/micro/_builtin`) before regenerating.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click

from protoc_gen_micro.protoc import ProtocError, protoc
from protoc_gen_micro.trees import compare_trees, sync_tree

__all__ = ["BUILTIN", "PROTOS", "generate", "main"]

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "runtime" / "protos"
BUILTIN = ROOT / "runtime" / "micro" / "_builtin"
COMMAND = "python -m scripts.builtin_protos"


def protos() -> list[str]:
    return sorted(p.relative_to(PROTOS).as_posix() for p in PROTOS.rglob("*.proto"))


def generate(out: Path) -> None:
    protoc(protos(), proto_path=[str(PROTOS)], out=out, micro_opt="output=specs")


@click.command()
@click.option("--check", is_flag=True, help="Compare with the committed tree; write nothing.")
def main(check: bool) -> None:
    label = BUILTIN.relative_to(ROOT).as_posix()
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "_builtin"
        try:
            generate(fresh)
        except ProtocError as exc:
            raise click.ClickException(str(exc)) from None
        if check:
            diff = compare_trees(BUILTIN, fresh, old=f"a/{label}", new=f"b/{label}")
            if diff:
                sys.stdout.writelines(diff.lines)
                raise click.ClickException(f"{label}/ is stale ({diff.summary()}); run {COMMAND}")
            click.echo(f"{label}/ is up to date")
            return
        changes = sync_tree(fresh, BUILTIN)
        click.echo(f"{label}/: {changes.summary()}")


if __name__ == "__main__":
    main()
