"""A system `protoc` with `protoc-gen-micro` on PATH generates the same micro modules."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from protoc_gen_micro.protoc import include_dirs, plugin_path
from scripts.golden import EXAMPLES, GOLDEN, example_protos


def _system_protoc() -> str:
    found = shutil.which("protoc")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("protoc is not installed; .ci/run installs Debian's protobuf-compiler")
        pytest.skip("no system protoc here (apt-get install protobuf-compiler); CI runs this")
    return found


def test_system_protoc_finds_the_plugin_on_path(tmp_path: Path) -> None:
    protoc = _system_protoc()
    bin_dir = str(Path(plugin_path("micro")).parent)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    args = [protoc, f"-I{EXAMPLES}", *(f"-I{d}" for d in include_dirs())]
    args += [f"--micro_out={tmp_path}", *example_protos()]
    result = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*_micro.py"))
    assert generated == sorted(p.relative_to(GOLDEN) for p in GOLDEN.rglob("*_micro.py"))
    for rel in generated:
        assert (tmp_path / rel).read_bytes() == (GOLDEN / rel).read_bytes(), rel


def test_system_protoc_reports_unknown_options(tmp_path: Path) -> None:
    protoc = _system_protoc()
    bin_dir = str(Path(plugin_path("micro")).parent)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    result = subprocess.run(
        [protoc, f"-I{EXAMPLES}", f"--micro_out=color=blue:{tmp_path}", "nopackage.proto"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "unknown option 'color'" in result.stderr
    assert "Traceback" not in result.stderr
