"""Packaging as users meet it: `python -m build` makes a wheel and an sdist of each
distribution without setuptools warnings, and the wheels, installed by the README's line
into a fresh venv, generate, serve and call a service with no checkout in sight."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(1800)

PROTO = """syntax = "proto3";
package helloworld.v1;

service Greeter {
  rpc SayHello(HelloRequest) returns (HelloReply);
}
message HelloRequest { string name = 1; }
message HelloReply { string message = 1; }
"""

SERVER = """import micro
from gen.helloworld.v1 import HelloReply, HelloRequest
from gen.helloworld.v1.helloworld_micro import GreeterHandler, register_greeter_handler


class Greeter(GreeterHandler):
    async def say_hello(self, request: HelloRequest, context: micro.Context) -> HelloReply:
        return HelloReply(message=f"Hello, {request.name}!")


service = micro.Service("helloworld")
register_greeter_handler(service, Greeter())


@service.on_start
async def announce(service: micro.Service) -> None:
    print(f"serving {service.name} from {micro.__file__}", flush=True)


service.run()
"""


def _build(source: Path, dist: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(source)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def test_build_install_generate_serve_call_without_the_checkout(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    logs = _build(ROOT / "runtime", dist) + _build(ROOT, dist)
    assert "is absent from the `packages` configuration" not in logs  # no setuptools warnings
    assert "Package would be ignored" not in logs
    names = sorted(p.name for p in dist.iterdir())
    assert names == [
        "micro_runtime-0.1.0-py3-none-any.whl",
        "micro_runtime-0.1.0.tar.gz",
        "protoc_gen_micro-0.1.0-py3-none-any.whl",
        "protoc_gen_micro-0.1.0.tar.gz",
    ]
    for wheel in dist.glob("*.whl"):
        members = zipfile.ZipFile(wheel).namelist()
        assert any(m.endswith(".dist-info/licenses/LICENSE") for m in members), wheel.name
    plugin = zipfile.ZipFile(dist / "protoc_gen_micro-0.1.0-py3-none-any.whl").namelist()
    assert "protoc_gen_micro/templates/scaffold/main.py.j2" in plugin
    for sdist in dist.glob("*.tar.gz"):
        with tarfile.open(sdist) as archive:
            assert any(n.endswith("/LICENSE") for n in archive.getnames()), sdist.name

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    bin_dir = env_dir / "bin"
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    environ.update(
        PATH=f"{bin_dir}{os.pathsep}{environ.get('PATH', '')}",
        VIRTUAL_ENV=str(env_dir),
        MICRO_REGISTRY="local",
        MICRO_REGISTRY_PATH=str(tmp_path / "registry.db"),
        PYTHONUNBUFFERED="1",
    )
    # the README's line, from a directory that is not the checkout
    install = subprocess.run(
        ["pip", "install", "-q", "--find-links", str(dist), "protoc-gen-micro"],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert install.returncode == 0, install.stderr[-3000:]

    project = tmp_path / "project"
    (project / "proto/helloworld/v1").mkdir(parents=True)
    (project / "proto/helloworld/v1/helloworld.proto").write_text(PROTO)
    (project / "server.py").write_text(SERVER)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args),
            cwd=project,
            env=environ,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    generated = run("micro", "gen")
    assert generated.returncode == 0, generated.stderr
    assert (project / "gen/helloworld/v1/helloworld_micro.py").is_file()
    server = subprocess.Popen(
        [str(bin_dir / "python"), "server.py"],
        cwd=project,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        problem = line + (server.stderr.read() if server.stderr and not line else "")
        assert line.startswith("serving helloworld from "), problem
        assert line.split(" from ")[1].strip().startswith(str(env_dir))  # not the checkout
        called = run("micro", "call", "helloworld", "Greeter.SayHello", '{"name": "wheel"}')
        assert called.returncode == 0, called.stderr
        assert json.loads(called.stdout) == {"message": "Hello, wheel!"}
        versions = run("micro-new", "--version")
        assert versions.stdout == "micro-new, version 0.1.0\n"
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0
