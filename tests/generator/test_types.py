"""Generated code passes mypy --strict, and mypy catches a handler with the wrong signature."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
USAGE = ROOT / "tests" / "e2e" / "app.py"


def mypy(*targets: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--config-file",
            str(ROOT / "tests" / "mypy-generated.ini"),
            *targets,
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
