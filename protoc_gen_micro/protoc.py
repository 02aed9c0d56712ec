"""Running real protoc (grpcio-tools) with the betterproto2 and micro plugins."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path


class ProtocError(Exception):
    pass


def bin_dir() -> str:
    """The scripts directory of this Python (a venv's bin/, activated or not)."""
    return str(Path(sys.executable).parent)


def plugin_path(name: str) -> str:
    """A protoc plugin's executable: next to this Python first (a venv that is not activated),
    then on PATH."""
    exe = f"protoc-gen-{name}"
    beside = Path(sys.executable).parent / exe
    if beside.exists():
        return str(beside)
    found = shutil.which(exe)
    if found is None:
        raise ProtocError(f"{exe} is not installed (pip install protoc-gen-micro)")
    return found


def include_dirs() -> list[str]:
    """Include paths for the well-known types and google/api annotations."""
    import google.api
    import grpc_tools

    dirs = [str(Path(grpc_tools.__file__).parent / "_proto")]
    api_root = Path(next(iter(google.api.__path__))).parent.parent
    dirs.append(str(api_root))
    return dirs


def protoc(
    protos: Sequence[str],
    *,
    proto_path: Sequence[str],
    out: str | os.PathLike[str],
    betterproto2: bool = True,
    micro: bool = True,
    micro_opt: str = "",
    messages: str = "betterproto2",
) -> None:
    """Generate messages and micro modules for `protos` into `out`.

    `messages="betterproto2"` (the default) writes betterproto2 dataclasses;
    `messages="protobuf"` writes protobuf's own `_pb2` modules (with `.pyi` stubs) and
    tells the micro plugin to use them.
    """
    args = [sys.executable, "-m", "grpc_tools.protoc"]
    # Paths are made absolute: protoc runs in an empty directory (see below).
    out = Path(out).resolve()
    args += [f"-I{Path(p).resolve()}" for p in proto_path]
    args += [f"-I{p}" for p in include_dirs()]
    if messages == "protobuf":
        betterproto2 = False
        args += [f"--python_out={out}", f"--pyi_out={out}"]
        micro_opt = ",".join(o for o in (micro_opt, "messages=protobuf") if o)
    if betterproto2:
        args += [
            f"--plugin=protoc-gen-python_betterproto2={plugin_path('python_betterproto2')}",
            f"--python_betterproto2_out={out}",
            "--python_betterproto2_opt=client_generation=none",
        ]
    if micro:
        args += [f"--plugin=protoc-gen-micro={plugin_path('micro')}", f"--micro_out={out}"]
        if micro_opt:
            args.append(f"--micro_opt={micro_opt}")
    args += [str(Path(p).resolve()) if Path(p).exists() else p for p in protos]
    out.mkdir(parents=True, exist_ok=True)
    # betterproto2-compiler leaves out a package's __init__.py when one exists relative to its
    # working directory, so run it where nothing exists: the output must not depend on the cwd.
    # It also formats with `ruff` from PATH: this interpreter's (a venv's) scripts come first.
    env = dict(os.environ, PATH=os.pathsep.join([bin_dir(), os.environ.get("PATH", "")]))
    with tempfile.TemporaryDirectory(prefix="micro-protoc-") as cwd:
        result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ProtocError(result.stderr.strip() or f"protoc exited with {result.returncode}")
