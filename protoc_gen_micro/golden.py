"""Regenerate golden/ and golden-pb2/: `python -m protoc_gen_micro.golden [--check]`.

golden/ holds everything generated for the example protos (betterproto2 messages and
micro modules), as one importable package, so tests can type-check and run it.
golden-pb2/ holds the same with protobuf's `_pb2` messages, plus the editions protos.
"""

from __future__ import annotations

import difflib
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

import click

from .protoc import ProtocError, protoc

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "example_protos"
GOLDEN = ROOT / "golden"
# The same example protos with protobuf's `_pb2` messages (`--micro_opt=messages=protobuf`).
# `_pb2` modules import each other absolutely, so this tree is a sys.path root of its own.
GOLDEN_PB2 = ROOT / "golden-pb2"
# betterproto2-compiler refuses editions files; only the `_pb2` backend generates these.
EDITIONS = "editions/"


def example_protos(*, editions: bool = False) -> list[str]:
    names = sorted(p.relative_to(EXAMPLES).as_posix() for p in EXAMPLES.rglob("*.proto"))
    return [n for n in names if editions or not n.startswith(EDITIONS)]


def generate(out: Path) -> None:
    protoc(example_protos(), proto_path=[str(EXAMPLES)], out=out)


def generate_pb2(out: Path) -> None:
    protoc(example_protos(editions=True), proto_path=[str(EXAMPLES)], out=out, messages="protobuf")


def tree(root: Path) -> dict[str, Path]:
    return {
        p.relative_to(root).as_posix(): p
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def diff_trees(expected: Path, actual: Path) -> list[str]:
    """A unified diff of what differs between two trees, empty when identical."""
    want, have = tree(expected), tree(actual)
    lines: list[str] = []
    for name in sorted(want.keys() | have.keys()):
        a = want.get(name)
        b = have.get(name)
        if a and b and filecmp.cmp(a, b, shallow=False):
            continue
        old = a.read_text().splitlines(keepends=True) if a else []
        new = b.read_text().splitlines(keepends=True) if b else []
        lines += difflib.unified_diff(old, new, f"golden/{name}", f"generated/{name}")
        if not old and not new:
            lines.append(f"{name}: {'missing' if a else 'extra'} empty file\n")
    return lines


@click.command()
@click.option(
    "--check", is_flag=True, help="Compare with the golden trees; print a diff, write nothing."
)
def main(check: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out, out_pb2 = Path(tmp) / "golden", Path(tmp) / "golden-pb2"
        try:
            generate(out)
            generate_pb2(out_pb2)
        except ProtocError as exc:
            raise click.ClickException(str(exc)) from None
        pairs = ((GOLDEN, out), (GOLDEN_PB2, out_pb2))
        if check:
            diff = [line for golden, fresh in pairs for line in diff_trees(golden, fresh)]
            if diff:
                sys.stdout.writelines(diff)
                raise SystemExit(1)
            click.echo("golden/ and golden-pb2/ are up to date")
            return
        for golden, fresh in pairs:
            if golden.exists():
                shutil.rmtree(golden)
            shutil.copytree(fresh, golden)
            click.echo(f"regenerated {len(tree(golden))} files in {golden.name}/")


if __name__ == "__main__":
    main()
