"""Generated code passes mypy --strict, and mypy catches a handler with the wrong signature."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
USAGE = ROOT / "tests" / "e2e" / "app.py"


def mypy(
    *targets: str, cwd: Path = ROOT, config: Path = ROOT / "tests" / "mypy-generated.ini"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--config-file",
            str(config),
            *list(targets),
        ],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
        timeout=600,
    )


def test_golden_and_usage_pass_mypy_strict() -> None:
    modules = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "golden").rglob("*_micro.py"))
    assert modules
    result = mypy(*modules, str(USAGE.relative_to(ROOT)))
    assert result.returncode == 0, result.stdout + result.stderr


def mypy_pb2(tmp_path: Path, *targets: str) -> subprocess.CompletedProcess[str]:
    """mypy over golden-pb2/: protoc's `.pyi` stubs give the types; errors inside protoc's
    own stubs are not ours, so each `_pb2` module is listed with ignore_errors."""
    pb2 = ROOT / "golden-pb2"
    stubs = sorted(p.relative_to(pb2).with_suffix("") for p in pb2.rglob("*_pb2.pyi"))
    assert stubs
    config = tmp_path / "mypy.ini"
    base = (ROOT / "tests" / "mypy-generated.ini").read_text()
    base = base.replace("$MYPY_CONFIG_FILE_DIR/../runtime", f"{ROOT / 'runtime'}:{pb2}:{ROOT}")
    sections = "".join(f"\n[mypy-{'.'.join(s.parts)}]\nignore_errors = True\n" for s in stubs)
    sections += "\n[mypy-grpc.*,grpc_reflection.*]\nignore_missing_imports = True\n"
    # `_pb2` packages have no __init__.py: module names come from the mypy_path roots.
    config.write_text(base + "explicit_package_bases = True\n" + sections)
    return mypy(*targets, cwd=pb2, config=config)


#: the tests' files that import golden-pb2/'s packages as top-level ones; the root mypy
#: config excludes them, as only this run has golden-pb2/ as a module root
PB2_USAGE = (
    "tests/e2e_pb2/app.py",
    "tests/e2e_pb2/client.py",
    "tests/e2e_pb2/server.py",
    "tests/gateway/grpc_server.py",
)


def test_golden_pb2_and_usage_pass_mypy_strict(tmp_path: Path) -> None:
    pb2 = ROOT / "golden-pb2"
    modules = sorted(str(p.relative_to(pb2)) for p in pb2.rglob("*_micro.py"))
    result = mypy_pb2(tmp_path, *modules, *(str(ROOT / usage) for usage in PB2_USAGE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_sees_pb2_message_types(tmp_path: Path) -> None:
    bad = tmp_path / "bad_pb2_usage.py"
    bad.write_text(
        textwrap.dedent(
            """
            import micro
            from helloworld.v1 import helloworld_pb2
            from helloworld.v1.helloworld_micro import GreeterClient, GreeterHandler


            class Wrong(GreeterHandler):
                async def say_hello(
                    self, request: helloworld_pb2.HelloReply, context: micro.Context
                ) -> helloworld_pb2.HelloReply:
                    return helloworld_pb2.HelloReply()


            async def call() -> None:
                reply = await GreeterClient("x").say_hello(helloworld_pb2.HelloRequest())
                reply.no_such_field
            """
        )
    )
    result = mypy_pb2(tmp_path, str(bad))
    assert result.returncode == 1
    assert 'Argument 1 of "say_hello" is incompatible' in result.stdout
    assert '"HelloReply" has no attribute "no_such_field"' in result.stdout


def test_mypy_rejects_a_handler_with_the_wrong_signature(tmp_path: Path) -> None:
    bad = ROOT / "tests" / "generator" / "_bad_handler_tmp.py"
    bad.write_text(
        textwrap.dedent(
            """
        import micro
        from golden.helloworld.v1 import HelloReply, HelloRequest
        from golden.helloworld.v1.helloworld_micro import GreeterHandler


        class Wrong(GreeterHandler):
            async def say_hello(self, request: HelloReply, context: micro.Context) -> HelloRequest:
                return HelloRequest()
        """
        )
    )
    try:
        result = mypy(str(bad.relative_to(ROOT)))
    finally:
        bad.unlink()
    assert result.returncode == 1
    assert "say_hello" in result.stdout
    assert "incompatible with supertype" in result.stdout


def test_mypy_rejects_wrong_request_type_in_a_client_call() -> None:
    bad = ROOT / "tests" / "generator" / "_bad_call_tmp.py"
    bad.write_text(
        textwrap.dedent(
            """
        from golden.helloworld.v1 import HelloReply
        from golden.helloworld.v1.helloworld_micro import GreeterClient


        async def main() -> None:
            await GreeterClient("helloworld").say_hello(HelloReply())
        """
        )
    )
    try:
        result = mypy(str(bad.relative_to(ROOT)))
    finally:
        bad.unlink()
    assert result.returncode == 1
    assert 'incompatible type "HelloReply"' in result.stdout
