"""The scaffold's own documented commands, in a fresh venv with nothing but its README:
python3 -m venv .venv; make install; make generate; make check; make test; make run + client.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from protoc_gen_micro.trees import compare_trees
from tests.tooling.helpers import GOLDEN_HELLO, ROOT, fresh_env, micro_new

START_TIMEOUT = 60.0


def sh(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_scaffold_documented_commands_work_in_a_fresh_venv(tmp_path: Path) -> None:
    if shutil.which("make") is None:
        if os.environ.get("CI"):
            pytest.fail("make is not installed; .ci/run installs it")
        pytest.skip("no make here (apt-get install make); CI runs this")
    python3 = shutil.which("python3")
    assert python3 is not None
    created = micro_new("hello", "--micro-source", str(ROOT), cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    project = tmp_path / "hello"
    (tmp_path / "again").mkdir()
    env = fresh_env(tmp_path)

    # The README's commands, in order.
    sh([python3, "-m", "venv", ".venv"], project, env)
    sh(["make", "install"], project, env)
    assert "gen/ is up to date" in sh(["make", "generate"], project, env)
    assert "gen/ is up to date" in sh(["make", "check"], project, env)
    assert " 4 passed" in sh(["make", "test"], project, env)

    server = subprocess.Popen(
        ["make", "run"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # make and python main.py: one process group to signal
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert server.stdout is not None
        for line in server.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    output: list[str] = []
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while not any(line.startswith("serving hello on 127.0.0.1:") for line in output):
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            assert line is not None, "make run exited:\n" + "".join(output)
            output.append(line)
        client = sh(["make", "client"], project, env)
        assert client.splitlines()[-4:] == [
            "Hello world",
            "0: Hello world",
            "1: Hello world",
            "2: Hello world",
        ]
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # as a terminal's process group gets it
        code = server.wait(timeout=30)
        rest = iter(lambda: lines.get(timeout=10), None)  # what the pump read until EOF
    # make itself dies of the signal; the service deregisters, drains and exits quietly.
    assert code in (0, -signal.SIGTERM), code
    text = "".join([*output, *rest])
    assert "Traceback" not in text and "Error" not in text, text

    # Editing the handler and regenerating: the handler survives, gen/ stays current.
    handler = project / "hello/handler.py"
    edited = handler.read_text().replace('f"Hello {request.name}"', 'f"Hi {request.name}"')
    handler.write_text(edited)
    sh(["make", "generate"], project, env)
    assert handler.read_text() == edited

    # The installed (non-editable) protoc-gen-micro ships the scaffold templates.
    sh(
        [str(project / ".venv/bin/micro-new"), "hello", "--micro-source", "index"],
        tmp_path / "again",
        env,
    )
    diff = compare_trees(GOLDEN_HELLO, tmp_path / "again" / "hello")
    assert not diff, "".join(diff.lines)
