"""The README's marked blocks, run as a user would: in a fresh directory, in order, with real
protoc, a real service in its own process and real calls.

A block is marked by an HTML comment on the line before its opening fence (the README
restructure keeps these):

* ``<!-- readme-test: write PATH -->``: the block is written to PATH;
* ``<!-- readme-test: run -->``: the ``sh`` block runs (``bash -e``) and must exit 0;
* ``<!-- readme-test: serve PATH -->``: the Python block is written to PATH and started with
  ``python PATH`` in the background; its first stdout line must be ``serving ...``; it is
  stopped with SIGTERM at the end and must exit 0;
* ``<!-- readme-test: python PATH [expect TEXT] -->``: written to PATH, run, must exit 0
  (and print TEXT);
* ``<!-- readme-test: quickstart -->``: the ``sh`` block runs as a user runs it, in a copy of
  this checkout with a fresh venv and ``HOME`` (its own test, below): a line ending in ``&``
  runs in the background until it prints ``serving ...``, then the next line runs; the
  background command gets SIGTERM at the end.

Every Python file written is also type-checked with ``mypy`` under the README's own mypy
configuration (the ``pyproject.toml`` block). Unmarked blocks are API shapes and
fragments, or need what a test cannot assume (NATS, Docker, a clone: other tests cover
the scaffold, the CLI and the packages).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.tooling.helpers import BIN, ROOT, env, fresh_env

README = ROOT / "README.md"
MARK = re.compile(r"^<!-- readme-test: (?P<what>\w+)(?: (?P<arg>.*?))? -->$")
FENCE = re.compile(r"^```(\w*)$")

pytestmark = pytest.mark.timeout(600)


@dataclass(frozen=True)
class Block:
    line: int  # of the mark, 1-based
    what: str
    arg: str
    language: str
    text: str


def marked_blocks(text: str) -> list[Block]:
    lines = text.splitlines()
    blocks = []
    for index, line in enumerate(lines):
        mark = MARK.match(line)
        if mark is None:
            continue
        fence = FENCE.match(lines[index + 1]) if index + 1 < len(lines) else None
        assert fence, f"README.md:{index + 1}: a readme-test mark must precede a code fence"
        end = lines.index("```", index + 2)
        body = "\n".join(lines[index + 2 : end]) + "\n"
        blocks.append(Block(index + 1, mark["what"], mark["arg"] or "", fence.group(1), body))
    return blocks


def test_the_marks_parse() -> None:
    blocks = marked_blocks(README.read_text())
    assert {b.what for b in blocks} == {"write", "run", "serve", "python", "quickstart"}
    for block in blocks:
        if block.what in ("run", "quickstart"):
            assert block.language == "sh", block
        if block.what in ("serve", "python"):
            assert block.language == "python" and block.arg, block


_INSTALLED_MICRO = """
[[tool.mypy.overrides]]
module = ["micro", "micro.*"]
follow_imports = "silent"
"""


def _user_env(tmp_path: Path) -> dict[str, str]:
    environ = {
        **env(),  # this venv's scripts (python, micro, mypy) first on PATH
        "MICRO_REGISTRY": "local",
        "MICRO_REGISTRY_PATH": str(tmp_path / "registry.db"),
        "PYTHONUNBUFFERED": "1",
    }
    environ.pop("PYTHONPATH", None)
    # This venv installs micro-runtime editable, through an import hook mypy cannot follow;
    # point mypy at the package as a regular install would place it.
    environ["MYPYPATH"] = str(ROOT / "runtime")
    # `python` in the blocks is this venv's, as in an activated venv
    environ["VIRTUAL_ENV"] = str(Path(sys.executable).parent.parent)
    return environ


def test_readme_blocks_run_in_a_fresh_directory(tmp_path: Path) -> None:
    work = tmp_path / "project"
    work.mkdir()
    environ = _user_env(tmp_path)
    servers: list[tuple[Block, subprocess.Popen[str]]] = []
    written: list[str] = []
    try:
        for block in marked_blocks(README.read_text()):
            where = f"README.md:{block.line} ({block.what} {block.arg})".rstrip()
            if block.what in ("write", "serve", "python"):
                path = work / block.arg.split(" expect ")[0]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(block.text)
                if path.name == "pyproject.toml":
                    # mypy reads micro here from the checkout (MYPYPATH), as source whose
                    # own errors it reports; an installed micro-runtime is a site-package,
                    # whose errors it never reports. This override makes the two alike.
                    path.write_text(block.text + _INSTALLED_MICRO)
                if path.suffix == ".py":
                    written.append(path.name)
            if block.what == "run":
                result = subprocess.run(
                    ["bash", "-e", "-c", block.text],
                    cwd=work,
                    env=environ,
                    capture_output=True,
                    text=True,
                    timeout=300,
                    check=False,
                )
                assert result.returncode == 0, f"{where}:\n{result.stdout}{result.stderr}"
            elif block.what == "serve":
                server = subprocess.Popen(
                    [str(BIN / "python"), block.arg],
                    cwd=work,
                    env=environ,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                servers.append((block, server))
                assert server.stdout is not None
                first = server.stdout.readline()
                assert first.startswith("serving "), f"{where}: {first!r}"
            elif block.what == "python":
                name, _, expect = block.arg.partition(" expect ")
                result = subprocess.run(
                    [str(BIN / "python"), name],
                    cwd=work,
                    env=environ,
                    capture_output=True,
                    text=True,
                    timeout=120,
                    check=False,
                )
                assert result.returncode == 0, f"{where}:\n{result.stdout}{result.stderr}"
                assert expect in result.stdout, f"{where}: {result.stdout!r}"
                assert "Traceback" not in result.stderr, f"{where}: {result.stderr}"
        typed = subprocess.run(
            [str(BIN / "python"), "-m", "mypy", *written],
            cwd=work,
            env=environ,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert typed.returncode == 0, typed.stdout + typed.stderr
    finally:
        for block, server in servers:
            server.send_signal(signal.SIGTERM)
            try:
                code = server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                code = server.wait()
            err = server.stderr.read() if server.stderr else ""
            assert code == 0, f"README.md:{block.line}: server exited {code}: {err}"
            assert "Traceback" not in err, err
    assert os.listdir(work)  # the blocks wrote the project


BACKGROUND = re.compile(r"^(?P<command>[^#]*?)\s*&\s*(?:#.*)?$")

# The background command's output goes through a FIFO: the script reads it up to the
# "serving" line (a blocking read, no polling), and the rest when it stops the command.
_START = """set -m
{command} > "$QS_FIFO" 2>&1 &
QS_SERVER=$!
set +m
exec 3< "$QS_FIFO"
qs_serving=""
while IFS= read -r qs_line <&3; do
  printf '%s\\n' "$qs_line"
  case $qs_line in "serving "*) qs_serving=1; break;; esac
done
[ -n "$qs_serving" ] || {{ echo "quickstart: '{command}' exited without serving" >&2; exit 1; }}
"""
_STOP = """qs_stop() {
  qs_rc=$?
  if [ -n "${QS_SERVER:-}" ]; then
    kill -TERM -- "-$QS_SERVER" 2>/dev/null || true
    qs_code=0
    wait "$QS_SERVER" || qs_code=$?
    cat <&3
    echo "quickstart: background command stopped ($qs_code)"
  fi
  exit "$qs_rc"
}
trap qs_stop EXIT
"""


def quickstart_script(block: Block) -> str:
    lines = [_STOP]
    for line in block.text.splitlines():
        background = BACKGROUND.match(line)
        if background:
            lines.append(_START.format(command=background["command"]))
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


def _copy_checkout(to: Path) -> None:
    """This checkout as a clone has it: tracked files and new ones, none that git ignores."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (to / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, to / name)


def test_the_quickstart_runs_as_written(tmp_path: Path) -> None:
    (block,) = [b for b in marked_blocks(README.read_text()) if b.what == "quickstart"]
    assert len(block.text.splitlines()) <= 10, "the quickstart is at most 10 lines"
    clone, home = tmp_path / "micro", tmp_path / "home"
    clone.mkdir()
    home.mkdir()
    _copy_checkout(clone)
    script = tmp_path / "quickstart.sh"
    script.write_text(quickstart_script(block))
    fifo = tmp_path / "server.fifo"
    os.mkfifo(fifo)
    environ = fresh_env(tmp_path)
    del environ["PIP_NO_CACHE_DIR"]  # the copy's path is new each run: no stale wheel
    environ.update(HOME=str(home), QS_FIFO=str(fifo), PYTHONUNBUFFERED="1")
    result = subprocess.run(
        ["bash", "-e", str(script)],
        cwd=clone,
        env=environ,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    where = f"README.md:{block.line} (quickstart)"
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{where}:\n{output}"
    lines = result.stdout.splitlines()
    assert any(line.startswith("serving greeter on 127.0.0.1:") for line in lines), output
    assert "Hello world" in lines and "2: Hello world" in lines, output
    assert "Traceback" not in output, output
    assert "quickstart: background command stopped" in result.stdout, output
