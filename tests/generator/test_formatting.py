"""The plugin emits black's layout itself; black (whichever of 24.1-26.x is installed) must
leave every module unchanged.

black used to run on every generated module and took 98% of the plugin's time; now it
runs only where `layout.needs_black` finds a line the templates' layout does not cover.
"""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
from pathlib import Path

import black
import pytest

from protoc_gen_micro import layout
from protoc_gen_micro.protoc import protoc
from protoc_gen_micro.render import black_mode
from scripts.golden import BUILTIN, GOLDEN, GOLDEN_PB2

ROOT = Path(__file__).resolve().parents[2]


def assert_black_stable(modules: list[Path]) -> None:
    assert modules
    for path in modules:
        text = path.read_text()
        assert black.format_str(text, mode=black_mode()) == text, path


@pytest.mark.parametrize("golden", [GOLDEN, GOLDEN_PB2, BUILTIN])
def test_golden_modules_are_black_stable(golden: Path) -> None:
    assert_black_stable(sorted(golden.rglob("*_micro.py")))


def test_a_synthetic_corpus_is_black_stable(tmp_path: Path) -> None:
    protos = tmp_path / "protos"
    subprocess.run(
        [sys.executable, "-m", "bench.corpus", str(protos), "--packages", "4",
         "--files-per-package", "3"],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    names = sorted(p.relative_to(protos).as_posix() for p in protos.rglob("*.proto"))
    for messages in ("betterproto2", "protobuf"):
        out = tmp_path / messages
        protoc(names, proto_path=[str(protos)], out=out, betterproto2=False, messages=messages)
        assert_black_stable(sorted(out.rglob("*_micro.py")))


LONG = """
    syntax = "proto3";
    package a.very.long.package.name.that.goes.on;
    service AnExtraordinarilyLongServiceNameThatNobodyShouldWriteButSomebodyWill {
      rpc AnEquallyLongMethodNameThatPushesEveryGeneratedSignaturePastTheLimit(
          AMessageWithAVeryLongNameIndeedWhichStillHasToFitSomewhere)
        returns (stream AMessageWithAVeryLongNameIndeedWhichStillHasToFitSomewhere);
      rpc Short(stream AMessageWithAVeryLongNameIndeedWhichStillHasToFitSomewhere)
        returns (AMessageWithAVeryLongNameIndeedWhichStillHasToFitSomewhere) {
        option deprecated = true;
      }
    }
    message AMessageWithAVeryLongNameIndeedWhichStillHasToFitSomewhere { string x = 1; }
"""


def test_names_too_long_for_the_layout_fall_back_to_black(tmp_path: Path) -> None:
    (tmp_path / "long.proto").write_text(textwrap.dedent(LONG))
    for messages in ("betterproto2", "protobuf"):
        out = tmp_path / messages
        protoc(["long.proto"], proto_path=[str(tmp_path)], out=out, messages=messages)
        modules = sorted(out.rglob("*_micro.py"))
        assert_black_stable(modules)
        compile(modules[0].read_text(), str(modules[0]), "exec")


def test_fit_follows_blacks_three_layouts() -> None:
    assert layout.fit(4, "def f", ["a", "b"], ":") == "    def f(a, b):"
    wide = [f"argument_{i}" for i in range(6)]
    head = "def a_rather_long_function_name"
    assert layout.fit(4, head, wide, ":") == f"    {head}(\n        " + ", ".join(wide) + "\n    ):"
    wider = [f"argument_number_{i}" for i in range(6)]
    assert layout.fit(0, "f", wider) == "f(\n" + "".join(f"    {a},\n" for a in wider) + ")"
    for text in (
        layout.fit(4, "def f", ["a", "b"], ":"),
        layout.fit(4, head, wide, ":"),
        layout.fit(0, "x = f", wider),
        layout.tuple_of(0, "x = ", ['"a"']),
        layout.tuple_of(0, "x = ", ['"a"', '"b"']),
        layout.tuple_of(0, "x = ", []),
    ):
        body = "\n" + " " * (len(text) - len(text.lstrip()) + 4) + "pass\n"
        source = text + (body if text.endswith(":") else "\n")
        source = f"class C:\n{source}" if source.startswith("    ") else source
        assert black.format_str(source, mode=black_mode()) == source


def test_literals_use_blacks_quotes() -> None:
    assert layout.literal("it's") == '"it\'s"'
    assert layout.literal('say "hi"') == "'say \"hi\"'"
    assert layout.literal(b"\x00'") == 'b"\\x00\'"'
    assert layout.literal(True) == "True"


def test_literals_match_black_on_every_kind_of_string() -> None:
    """The quote fast path (no quote inside) and black's own rule agree everywhere."""
    rng = random.Random(20261128)
    alphabet = "ab '\"\\\n\t\x00\x7fé€😀"
    values: list[str | bytes] = ["", "'", '"', "\\", "\\'", "plain", "a\tb", "é"]
    values += ["".join(rng.choices(alphabet, k=rng.randint(0, 12))) for _ in range(400)]
    values += [rng.randbytes(rng.randint(0, 40)) for _ in range(400)]
    values += [bytes(rng.choices(b"a'\"\\\n", k=rng.randint(0, 12))) for _ in range(400)]
    values += [b"", b"'", b'"', b"\\'", bytes(range(256))]
    for value in values:
        source = f"x = {layout.literal(value)}\n"
        assert black.format_str(source, mode=black_mode()) == source, value
        assert eval(layout.literal(value)) == value


def test_needs_black_spots_uncovered_long_lines() -> None:
    assert not layout.needs_black('    doc="' + "x" * 100 + '",\n')
    assert not layout.needs_black('    """' + "x" * 100 + '"""\n')
    assert layout.needs_black("    raise error(" + "X" * 100 + ")\n")
