"""The runtime installs alone, without the generator's dependencies; both wheels ship py.typed."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


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


def test_runtime_installs_without_generator_dependencies(tmp_path: Path) -> None:
    env = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env)
    python = env / "bin" / "python"
    pip(python, str(ROOT / "runtime"))
    probe = (
        "import importlib.util as u, micro; "
        "print([m for m in ('jinja2', 'black', 'grpc_tools', 'grpc', 'google.protobuf') "
        "if u.find_spec(m.split('.')[0]) is not None and u.find_spec(m) is not None])"
    )
    out = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
