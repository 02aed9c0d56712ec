"""The runtime installs alone, without the generator's dependencies; with its `cli` and
`api` extras it runs `micro services|call|api` with no generator dependency; both wheels
ship py.typed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import httpx

from tests.cluster import Cluster, spawn

ROOT = Path(__file__).resolve().parents[2]
GENERATOR_DEPS = ("jinja2", "black", "grpc_tools", "betterproto2_compiler", "protoc_gen_micro")


def pip(python: Path, *args: str) -> None:
    subprocess.run([str(python), "-m", "pip", "install", "-q", *args], check=True, timeout=900)


def test_wheels_ship_py_typed_and_templates(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "-w",
            str(tmp_path),
            str(ROOT / "runtime"),
            str(ROOT),
        ],
        check=True,
        timeout=600,
    )
    runtime = zipfile.ZipFile(next(tmp_path.glob("micro_runtime-*.whl"))).namelist()
    plugin = zipfile.ZipFile(next(tmp_path.glob("protoc_gen_micro-*.whl"))).namelist()
    assert "micro/py.typed" in runtime
    assert "micro/__init__.py" in runtime
    assert "protoc_gen_micro/py.typed" in plugin
    assert "protoc_gen_micro/templates/micro_module.py.j2" in plugin
    entry_points = next(n for n in plugin if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(next(tmp_path.glob("protoc_gen_micro-*.whl"))).read(entry_points)
    assert b"protoc-gen-micro = protoc_gen_micro.plugin:main" in text
    assert b"[micro.commands]" in text and b"gen = protoc_gen_micro.cli_gen:gen_command" in text
    runtime_eps = next(n for n in runtime if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(next(tmp_path.glob("micro_runtime-*.whl"))).read(runtime_eps)
    assert b"micro = micro.cli:main" in text


def test_runtime_installs_without_generator_dependencies(tmp_path: Path) -> None:
    """The slim install: betterproto2 and grpcio (the default transport), no protobuf, no
    grpclib (an extra), none of the generator's dependencies."""
    env = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env)
    python = env / "bin" / "python"
    pip(python, str(ROOT / "runtime"))
    slim = ("google.protobuf", "grpclib", "h2", "click", "starlette", *GENERATOR_DEPS)
    assert _installed(python, ("opentelemetry", "prometheus_client")) == []  # otel, metrics
    assert _installed(python, slim) == []
    probe = "import micro, micro.transport; print(micro.transport.from_env().name)"
    out = subprocess.run(
        [str(python), "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert out.stdout.strip() == "grpcio"
    # telemetry asked for without its extras: a warning each, and no middleware at all
    probe = (
        "import micro; s = micro.Service('slim'); "
        "print(s._dispatcher._chain.__name__, len(micro.Client()._middleware))"
    )
    asked = {"OTEL_TRACES_EXPORTER": "otlp", "MICRO_METRICS_ADDRESS": "127.0.0.1:0"}
    out = subprocess.run(
        [str(python), "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={**os.environ, **asked},
    )
    assert out.stdout.split() == ["_invoke", "0"]  # the handler itself, no middleware
    assert "pip install 'micro-runtime[otel]'" in out.stderr
    assert "pip install 'micro-runtime[metrics]'" in out.stderr


def _installed(python: Path, modules: tuple[str, ...]) -> list[str]:
    """Which of `modules` the venv of `python` can import (run outside the checkout)."""
    probe = (
        "import importlib.util as u, json; "
        f"print(json.dumps([m for m in {list(modules)!r} "
        "if u.find_spec(m.split('.')[0]) is not None and u.find_spec(m) is not None]))"
    )
    out = subprocess.run(
        [str(python), "-c", probe], capture_output=True, text=True, check=True, cwd=python.parent
    )
    found: list[str] = json.loads(out.stdout)
    return found


def test_runtime_with_cli_and_api_extras_runs_the_operations_commands(
    tmp_path: Path, cluster: Cluster
) -> None:
    env = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env)
    python, micro = env / "bin" / "python", env / "bin" / "micro"
    pip(python, f"{ROOT / 'runtime'}[cli,api]")
    assert _installed(python, GENERATOR_DEPS) == []
    cluster.start("shop", "a")  # a service run by the project's own environment
    environ = {k: v for k, v in cluster.env.items() if k != "PYTHONPATH"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(micro), *args],
            env=environ,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )

    listed = run("services", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert [s["name"] for s in json.loads(listed.stdout)] == ["shop"]
    called = run("call", "shop", "Greeter.SayHello", '{"name": "Ada"}')
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout) == {"message": "Hello, Ada!"}
    # the generator's subcommands exist exactly when it is installed
    missing = run("gen")
    assert missing.returncode == 2 and "No such command 'gen'" in missing.stderr
    assert "gen" not in run("--help").stdout.split("Commands:")[1].split()
    gateway, output, line = spawn(
        [str(micro), "api", "--address", "127.0.0.1:0", "--default-routes"],
        environ,
        "micro api listening on ",
    )
    try:
        url = line.split()[4]
        reply = httpx.post(f"{url}/shop/Greeter/SayHello", json={"name": "Bo"}, timeout=30)
        assert reply.status_code == 200, "".join(output)
        assert reply.json() == {"message": "Hello, Bo!"}
    finally:
        gateway.terminate()
        gateway.wait(timeout=60)
