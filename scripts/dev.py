#!/usr/bin/env python3
"""Set up and run the project with nothing but Python 3.11+.

    python3 scripts/dev.py demo    # generate, serve and call helloworld on the embedded defaults
    python3 scripts/dev.py test    # ruff, mypy --strict and the whole test suite

Both create .venv/ on first use and install the runtime and the generator into it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("MICRO_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"


def _stamp() -> str:
    digest = hashlib.sha256()
    for name in ("pyproject.toml", "runtime/pyproject.toml"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def ensure_venv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script may run on any python3
        sys.exit(f"micro needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    marker = VENV / ".micro-installed"
    if marker.exists() and marker.read_text() == _stamp():
        return
    if not PY.exists():
        print(
            f"creating {VENV.relative_to(ROOT) if VENV.is_relative_to(ROOT) else VENV}", flush=True
        )
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("installing micro-runtime and protoc-gen-micro (editable, with dev tools)", flush=True)
    run([str(PY), "-m", "pip", "install", "-q", "--upgrade", "pip"])
    run([str(PY), "-m", "pip", "install", "-q", "-e", "./runtime", "-e", ".[dev]"])
    marker.write_text(_stamp())


def run(args: list[str]) -> None:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    code = subprocess.call(args, cwd=ROOT, env=env)
    if code:
        sys.exit(code)


def main() -> None:
    commands = {
        "demo": [str(PY), "examples/helloworld/demo.py"],
        "test": [str(PY), "-m", "pytest", *sys.argv[2:]],
        "lint": [str(PY), "-m", "ruff", "check", "."],
        "format": [str(PY), "-m", "ruff", "format", "--check", "."],
        "typecheck": [str(PY), "-m", "mypy"],
    }
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what not in commands:
        sys.exit(f"usage: python3 scripts/dev.py {{{'|'.join(commands)}}} [pytest args]")
    ensure_venv()
    if what == "test":
        run(commands["lint"])
        run(commands["format"])
        run(commands["typecheck"])
    run(commands[what])


if __name__ == "__main__":
    main()
