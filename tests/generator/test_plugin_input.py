"""The plugin under real protoc, fed good and bad input."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from protoc_gen_micro.protoc import ProtocError, plugin_path, protoc

ROOT = Path(__file__).resolve().parents[2]


def write(root: Path, name: str, text: str) -> str:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return name


def run_plugin(data: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [plugin_path("micro")], input=data, capture_output=True, check=False, timeout=60
    )


SIMPLE = """
    syntax = "proto3";
    package a.b;
    service S { rpc Do(M) returns (M); }
    message M { string x = 1; }
"""


def test_unknown_option_fails_protoc_and_names_it(tmp_path: Path) -> None:
    write(tmp_path, "a.proto", SIMPLE)
    with pytest.raises(ProtocError) as info:
        protoc(["a.proto"], proto_path=[str(tmp_path)], out=tmp_path / "out", micro_opt="fast=yes")
    assert "unknown option 'fast'" in str(info.value)
    assert "paths" in str(info.value)  # and lists the known ones


def test_bad_option_value_is_named(tmp_path: Path) -> None:
    write(tmp_path, "a.proto", SIMPLE)
    with pytest.raises(ProtocError, match="paths='sideways'"):
        protoc(
            ["a.proto"], proto_path=[str(tmp_path)], out=tmp_path / "o", micro_opt="paths=sideways"
        )


@pytest.mark.parametrize("data", [b"\xff\xfe garbage \x00\x01", b"\x0a\xff\xff\xff\xff\x0f"])
def test_garbage_on_stdin_is_one_line_without_traceback(data: bytes) -> None:
    result = run_plugin(data)
    assert result.returncode != 0
    err = result.stderr.decode()
    assert err.startswith("protoc-gen-micro: ")
    assert "CodeGeneratorRequest" in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert result.stdout == b""


def test_empty_stdin_is_a_clear_error() -> None:
    result = run_plugin(b"")
    assert result.returncode != 0
    assert "no CodeGeneratorRequest" in result.stderr.decode()
    assert "Traceback" not in result.stderr.decode()


def test_malformed_proto_is_reported_by_protoc(tmp_path: Path) -> None:
    write(tmp_path, "bad.proto", 'syntax = "proto3"; service S { rpc Do(Missing) returns (M); }')
    with pytest.raises(ProtocError, match="Missing"):
        protoc(["bad.proto"], proto_path=[str(tmp_path)], out=tmp_path / "o")


def test_rpc_names_that_collide_in_python_are_reported(tmp_path: Path) -> None:
    write(
        tmp_path,
        "c.proto",
        """
        syntax = "proto3";
        package c;
        service Clash { rpc GetFoo(M) returns (M); rpc get_foo(M) returns (M); }
        message M {}
        """,
    )
    with pytest.raises(ProtocError) as info:
        protoc(["c.proto"], proto_path=[str(tmp_path)], out=tmp_path / "o")
    text = str(info.value)
    assert "c.proto" in text and "Clash" in text
    assert "GetFoo" in text and "get_foo" in text
    assert "Traceback" not in text


def test_a_message_whose_class_name_is_a_keyword_is_reported(tmp_path: Path) -> None:
    write(
        tmp_path,
        "k.proto",
        """
        syntax = "proto3";
        package k;
        service S { rpc Do(none) returns (none); }
        message none {}
        """,
    )
    with pytest.raises(ProtocError) as info:
        protoc(["k.proto"], proto_path=[str(tmp_path)], out=tmp_path / "o", betterproto2=False)
    text = str(info.value)
    assert "k.proto" in text and "k.none" in text and "'None'" in text
    assert "Traceback" not in text


def test_source_relative_into_a_non_package_directory_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "my-protos/a.proto", SIMPLE)
    with pytest.raises(ProtocError, match="my-protos"):
        protoc(
            ["my-protos/a.proto"],
            proto_path=[str(tmp_path)],
            out=tmp_path / "o",
            micro_opt="paths=source_relative",
        )


def test_editions_files_are_accepted(tmp_path: Path) -> None:
    # betterproto2 does not support editions yet; the micro plugin alone must.
    protoc(
        ["editions/v1/editions.proto"],
        proto_path=[str(ROOT / "example_protos")],
        out=tmp_path,
        betterproto2=False,
    )
    module = tmp_path / "editions" / "v1" / "editions_micro.py"
    assert "class CounterClient(" in module.read_text()
    compile(module.read_text(), str(module), "exec")


def _import_and_call(out: Path, module: str) -> str:
    code = (
        "import importlib, sys; sys.path.insert(0, sys.argv[1]); "
        "m = importlib.import_module(sys.argv[2]); "
        "print(m.SClient.__name__, m.S_SPEC.methods[0].request_type.__module__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(out.parent), module],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


@pytest.mark.parametrize(
    ("opt", "expected"),
    [
        ("", "out/a/b/service_micro.py"),
        ("paths=import", "out/a/b/service_micro.py"),
        ("paths=source_relative", "out/protos/x/service_micro.py"),
    ],
)
def test_paths_option_places_the_module(tmp_path: Path, opt: str, expected: str) -> None:
    write(tmp_path, "src/protos/x/service.proto", SIMPLE)
    out = tmp_path / "out"
    protoc(["protos/x/service.proto"], proto_path=[str(tmp_path / "src")], out=out, micro_opt=opt)
    assert (tmp_path / expected).exists()
    module = expected.removesuffix(".py").replace("/", ".")
    assert _import_and_call(out, module) == "SClient out.a.b"
