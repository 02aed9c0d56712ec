"""A user's configuration mistakes, in the CLI and in a service: one line, a known exit code,
never a traceback (README: "Every failure is one `Error: ...` line", and `Service.run`)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from micro.cli import exits
from tests.cli.helpers import ROOT, one_line_error
from tests.tooling.helpers import BIN, env

SERVER = textwrap.dedent(
    """
    import micro
    from golden.helloworld.v1 import HelloReply, HelloRequest
    from golden.helloworld.v1.helloworld_micro import GreeterHandler, register_greeter_handler


    class Greeter(GreeterHandler):
        async def say_hello(self, request: HelloRequest, context: micro.Context) -> HelloReply:
            return HelloReply(message="hi")


    service = micro.Service("helloworld", address="127.0.0.1:0")
    register_greeter_handler(service, Greeter())
    service.run()
    """
)


def _cli(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "micro"), *args],
        cwd=ROOT,
        env={**env(), **extra},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _service(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    environ = {
        **env(),
        "PYTHONPATH": str(ROOT),
        "MICRO_REGISTRY_PATH": str(tmp_path / "registry.db"),
        **extra,
    }
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _one_service_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("micro: "), result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "extra", "code", "message"),
    [
        (
            ["call", "helloworld", "Greeter.SayHello"],
            {"MICRO_SELECTOR": "bogus"},
            exits.EXIT_USAGE,
            "unknown MICRO_SELECTOR='bogus'; valid values: random, roundrobin",
        ),
        (
            ["services"],
            {"MICRO_REGISTRY": "bogus"},
            exits.EXIT_USAGE,
            "unknown MICRO_REGISTRY='bogus'; valid values: local, memory, nats",
        ),
        (
            ["api", "--address", "127.0.0.1:99999"],
            {},
            exits.EXIT_USAGE,
            "port must be 0-65535, got '127.0.0.1:99999'",
        ),
        (
            ["call", "--address", "nonsense", "Greeter.SayHello"],
            {},
            exits.EXIT_USAGE,
            "address must be 'host:port', got 'nonsense'",
        ),
    ],
)
def test_cli_configuration_mistakes_are_one_line(
    tmp_path: Path, args: list[str], extra: dict[str, str], code: int, message: str
) -> None:
    result = _cli(*args, MICRO_REGISTRY_PATH=str(tmp_path / "registry.db"), **extra)
    assert result.returncode == code, result.stderr
    assert message in one_line_error(result)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"MICRO_REGISTRY": "bogus"}, "micro: helloworld: unknown MICRO_REGISTRY='bogus'"),
        ({"MICRO_SELECTOR": "bogus"}, "micro: helloworld: unknown MICRO_SELECTOR='bogus'"),
        ({"MICRO_BROKER": "bogus"}, "micro: helloworld: unknown MICRO_BROKER='bogus'"),
    ],
)
def test_a_service_with_a_bad_setting_exits_2_with_one_line(
    tmp_path: Path, extra: dict[str, str], message: str
) -> None:
    result = _service(tmp_path, **extra)
    assert result.returncode == 2
    assert _one_service_line(result).startswith(message)


def test_scaffold_main_reports_a_bad_server_address_in_one_line(tmp_path: Path) -> None:
    project = tmp_path / "hello"
    shutil.copytree(ROOT / "golden-scaffold/hello", project)
    for address, message in (
        ("nonsense", "micro: address must be 'host:port', got 'nonsense'"),
        ("127.0.0.1:99999", "micro: port must be 0-65535, got '127.0.0.1:99999'"),
    ):
        result = subprocess.run(
            [sys.executable, "main.py"],
            cwd=project,
            env={**env(), "MICRO_SERVER_ADDRESS": address},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2
        assert _one_service_line(result) == message


def _as_nobody() -> list[str]:
    """Run as another user than the registry's owner (root can read anything)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot act as another user")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]


def test_another_users_registry_is_one_line_not_a_permission_traceback() -> None:
    # pytest's tmp_path sits in a directory only its owner may enter
    with tempfile.TemporaryDirectory(prefix="micro-perm-") as tmp:
        _another_users_registry(Path(tmp))


def _another_users_registry(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (private / "registry.db").write_bytes(b"")
    tmp_path.chmod(0o755)
    prefix = _as_nobody()
    if not prefix:  # not root: make the directory another user's by taking our own rights
        private.chmod(0o000)
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    script.chmod(0o644)
    environ = {
        **env(),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),
        "MICRO_REGISTRY_PATH": str(private / "registry.db"),
    }
    try:
        for args, code, start in (
            ([str(BIN / "micro"), "services"], exits.EXIT_UNREACHABLE, "Error: registry"),
            ([sys.executable, str(script)], 1, "micro: helloworld: cannot register"),
        ):
            result = subprocess.run(
                [*prefix, *args],
                cwd=tmp_path,
                env=environ,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert result.returncode == code, result.stderr
            assert "Traceback" not in result.stderr, result.stderr
            line = result.stderr.strip()
            assert "\n" not in line and line.startswith(start), line
            assert "cannot open registry database" in line
    finally:
        private.chmod(0o700)


def test_ctrl_c_exits_130(tmp_path: Path) -> None:
    # A server that takes the connection and never answers: the call waits until Ctrl-C.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        process = subprocess.Popen(
            [str(BIN / "micro"), "call", "--address", address, "Greeter.SayHello"],
            cwd=ROOT,
            env={**env(), "MICRO_REGISTRY_PATH": str(tmp_path / "registry.db")},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(2.0)  # imported, connected, waiting for the server's answer
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == exits.EXIT_INTERRUPTED, stderr
    assert "Traceback" not in stderr and "Aborted" not in stderr, stderr


def test_publish_without_a_subscriber_says_the_embedded_broker_dropped_it(
    tmp_path: Path,
) -> None:
    result = _cli(
        "publish",
        "nobody.listens",
        '{"id": "1"}',
        MICRO_REGISTRY="local",
        MICRO_REGISTRY_PATH=str(tmp_path / "registry.db"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "published to nobody.listens\n"
    assert result.stderr == (
        "note: no subscriber of nobody.listens was listening; the embedded broker dropped it\n"
    )
