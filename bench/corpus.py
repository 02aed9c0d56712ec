"""A seeded synthetic proto corpus: packages of files with every field shape and rpc kind.

    python -m bench.corpus OUT_DIR [--packages 20] [--files-per-package 10] [--seed 1]

File ``corpus/pNN/v1/fKK.proto`` (package ``corpus.pNN.v1``) has an enum, messages with
scalars, repeated fields, maps, a oneof and a nested message, a message that uses a
type from the previous package (a cross-package import), and a service with six rpcs
covering all four kinds.
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass
from pathlib import Path

SCALARS = ("int32", "int64", "uint32", "uint64", "sint32", "bool", "string", "bytes", "double")
MAP_KEYS = ("string", "int32", "int64", "bool")


@dataclass(frozen=True)
class Corpus:
    root: Path
    files: list[str]  # relative to root, for protoc's command line


def _message(rng: random.Random, name: str, enum: str, imported: str | None) -> list[str]:
    lines = [f"// {name} carries a mix of field shapes.", f"message {name} {{"]
    lines += [
        f"  message {name}Inner {{",
        "    string label = 1;",
        "    repeated int64 values = 2;",
        "  }",
    ]
    number = 1
    for _ in range(rng.randint(4, 8)):
        lines.append(f"  {rng.choice(SCALARS)} scalar_{number} = {number};")
        number += 1
    lines.append(f"  repeated {rng.choice(SCALARS)} items_{number} = {number};")
    number += 1
    key = rng.choice(MAP_KEYS)
    lines.append(f"  map<{key}, {name}Inner> by_key_{number} = {number};")
    number += 1
    lines.append(f"  map<string, string> labels_{number} = {number};")
    number += 1
    lines.append(f"  {enum} state = {number};")
    number += 1
    lines.append(f"  optional string note = {number};")
    number += 1
    lines.append("  oneof choice {")
    lines.append(f"    string text = {number};")
    lines.append(f"    {name}Inner inner = {number + 1};")
    lines.append(f"    int64 count = {number + 2};")
    lines.append("  }")
    number += 3
    lines.append(f"  repeated {name}Inner inners = {number};")
    number += 1
    if imported is not None:
        lines.append(f"  {imported} remote = {number};")
    lines.append("}")
    return lines


def render_file(rng: random.Random, pkg: int, index: int, packages: int) -> tuple[str, str]:
    prefix = f"F{index:02d}"
    path = f"corpus/p{pkg:02d}/v1/f{index:02d}.proto"
    imported_file = None
    imported_type = None
    if pkg > 0:
        other = rng.randrange(0, index + 1)
        imported_file = f"corpus/p{pkg - 1:02d}/v1/f{other:02d}.proto"
        imported_type = f"corpus.p{pkg - 1:02d}.v1.F{other:02d}Item"
    enum = f"{prefix}State"
    out = [
        'syntax = "proto3";',
        "",
        f"package corpus.p{pkg:02d}.v1;",
        "",
    ]
    if imported_file is not None:
        out += [f'import "{imported_file}";', ""]
    out += [
        f"// {enum} is a lifecycle.",
        f"enum {enum} {{",
        f"  {prefix.upper()}_STATE_UNSPECIFIED = 0;",
        f"  {prefix.upper()}_STATE_ACTIVE = 1;",
        f"  {prefix.upper()}_STATE_DONE = 2;",
        "}",
        "",
    ]
    out += _message(rng, f"{prefix}Item", enum, imported_type)
    out.append("")
    out += _message(rng, f"{prefix}Request", enum, None)
    out.append("")
    out += _message(rng, f"{prefix}Reply", enum, f"{prefix}Item")
    out.append("")
    req, rep = f"{prefix}Request", f"{prefix}Reply"
    out += [
        f"// {prefix}Service exercises all four rpc kinds.",
        f"service {prefix}Service {{",
        f"  // Get fetches one.\n  rpc Get({req}) returns ({rep});",
        f"  rpc Put({prefix}Item) returns ({rep});",
        f"  rpc Remove({req}) returns ({prefix}Item);",
        f"  rpc List({req}) returns (stream {rep});",
        f"  rpc Upload(stream {prefix}Item) returns ({rep});",
        f"  rpc Chat(stream {req}) returns (stream {rep});",
        "}",
        "",
    ]
    return path, "\n".join(out)


def write_corpus(root: Path, *, packages: int, files_per_package: int, seed: int = 1) -> Corpus:
    rng = random.Random(seed)
    files: list[str] = []
    for pkg in range(packages):
        for index in range(files_per_package):
            rel, text = render_file(rng, pkg, index, packages)
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            files.append(rel)
    return Corpus(root, files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--packages", type=int, default=20)
    parser.add_argument("--files-per-package", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    corpus = write_corpus(
        args.out, packages=args.packages, files_per_package=args.files_per_package, seed=args.seed
    )
    print(f"wrote {len(corpus.files)} files under {args.out}")


if __name__ == "__main__":
    main()
