"""The three CI setups in docs/ci.md, copied from the doc and run for real."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

from protoc_gen_micro.trees import compare_trees
from tests.tooling.helpers import BIN, GOLDEN_HELLO, ROOT, env

DOC = ROOT / "docs" / "ci.md"
# Where a buf from npm goes when none is on PATH: inside this venv (removed with it, never
# in the home directory), or MICRO_TEST_CACHE.
BUF_CACHE = Path(os.environ.get("MICRO_TEST_CACHE", Path(sys.prefix) / "micro-test-cache")) / "buf"


def doc_block(filename: str) -> str:
    """The ```yaml block of docs/ci.md whose first line is `# <filename>`."""
    blocks = DOC.read_text().split("```yaml\n")[1:]
    for block in blocks:
        text = block.split("```", 1)[0]
        if text.startswith(f"# {filename}\n"):
            return text
    raise AssertionError(f"docs/ci.md has no yaml block for {filename}")


def load(filename: str) -> Any:
    return yaml.safe_load(doc_block(filename))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    target = tmp_path / "hello"
    shutil.copytree(GOLDEN_HELLO, target)
    return target


def make_stale(project: Path) -> None:
    proto = project / "proto/hello/v1/hello.proto"
    proto.write_text(
        proto.read_text().replace("int32 index = 2;", "int32 index = 2;\n  bool last = 3;")
    )


def sh(args: list[str] | str, cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        cwd=cwd,
        env={**env(), **extra},
        shell=isinstance(args, str),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_pre_commit_hook(project: Path, tmp_path: Path) -> None:
    (project / ".pre-commit-config.yaml").write_text(doc_block(".pre-commit-config.yaml"))
    hook = load(".pre-commit-config.yaml")["repos"][0]["hooks"][0]
    assert hook["entry"] == "micro gen --check"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    assert sh([*git, "init", "-q"], project).returncode == 0
    assert sh([*git, "add", "-A"], project).returncode == 0
    pre_commit = [str(BIN / "pre-commit"), "run", "--all-files"]
    home = str(tmp_path / "pre-commit-home")
    clean = sh(pre_commit, project, PRE_COMMIT_HOME=home)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "generated code is current (micro gen --check)" in clean.stdout
    assert "Passed" in clean.stdout
    make_stale(project)
    assert sh([*git, "add", "-A"], project).returncode == 0
    stale = sh(pre_commit, project, PRE_COMMIT_HOME=home)
    assert stale.returncode == 1
    assert "Failed" in stale.stdout
    assert "+    last: " in stale.stdout
    assert "gen/ is out of date (2 stale); run `micro gen`" in stale.stdout


def test_github_actions_step(project: Path) -> None:
    workflow = load(".github/workflows/generated.yml")
    steps = workflow["jobs"]["check"]["steps"]
    step = next(s for s in steps if s.get("name") == "Generated code is current")
    command = step["run"]
    assert command == "micro gen --check"
    clean = sh(["bash", "-e", "-c", command], project)
    assert clean.returncode == 0, clean.stderr
    make_stale(project)
    stale = sh(["bash", "-e", "-c", command], project)
    assert stale.returncode == 1
    assert "--- a/gen/hello/v1/__init__.py" in stale.stdout


def buf() -> str:
    """buf on PATH, else from the npm registry (@bufbuild/buf), installed once into
    BUF_CACHE (a warning says where)."""
    on_path = shutil.which("buf")
    if on_path is not None:
        return on_path
    exe = BUF_CACHE / "node_modules" / ".bin" / "buf"
    if not exe.exists():
        warnings.warn(f"installing @bufbuild/buf from npm into {BUF_CACHE}", stacklevel=1)
        npm = shutil.which("npm")
        problem = "npm is not installed" if npm is None else ""
        if npm is not None:
            BUF_CACHE.mkdir(parents=True, exist_ok=True)
            result = subprocess.run(
                [npm, "install", "--no-save", "--silent", "@bufbuild/buf@1"],
                cwd=BUF_CACHE,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            if result.returncode != 0 or not exe.exists():
                problem = f"npm install @bufbuild/buf failed: {result.stderr.strip()[-500:]}"
        if problem:
            if os.environ.get("CI"):
                pytest.fail(f"{problem}; CI must run buf generate")
            pytest.skip(f"{problem}; CI runs this")
    return str(exe)


def test_buf_generate_matches_micro_gen(project: Path) -> None:
    exe = buf()
    (project / "buf.gen.yaml").write_text(doc_block("buf.gen.yaml"))
    config = load("buf.gen.yaml")
    assert [p["local"] for p in config["plugins"]] == [
        "protoc-gen-micro-messages",
        "protoc-gen-micro",
    ]
    shutil.rmtree(project / "gen")
    (project / "gen").mkdir()
    (project / "gen" / "leftover.py").write_text("")  # clean: true removes it
    result = sh([exe, "generate"], project)
    assert result.returncode == 0, result.stderr
    diff = compare_trees(GOLDEN_HELLO / "gen", project / "gen", old="micro-gen", new="buf")
    assert not diff, "".join(diff.lines)
    check = sh([str(BIN / "micro"), "gen", "--check"], project)
    assert check.returncode == 0, check.stdout + check.stderr
