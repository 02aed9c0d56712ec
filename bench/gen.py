"""Generate the RPC benchmark's code from bench/protos, at bench time.

``OUT/bp/bpgen`` (package ``bpgen``): betterproto2 messages + micro modules;
``OUT/pb``: ``_pb2`` messages, micro modules on them (``messages=protobuf``), grpcio's
``_pb2_grpc`` and grpclib's ``_grpc`` modules.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from protoc_gen_micro.protoc import plugin_path, protoc

PROTOS = Path(__file__).resolve().parent / "protos"
BENCH_PROTO = "benchpb/v1/bench.proto"


def generate(out: Path) -> Path:
    protoc([BENCH_PROTO], proto_path=[str(PROTOS)], out=out / "bp" / "bpgen")
    (out / "pb").mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTOS}",
            # by path: a venv that is not activated has no plugins on PATH
            f"--plugin=protoc-gen-grpclib_python={plugin_path('grpclib_python')}",
            f"--plugin=protoc-gen-micro={plugin_path('micro')}",
            f"--python_out={out / 'pb'}", f"--grpc_python_out={out / 'pb'}",
            f"--grpclib_python_out={out / 'pb'}", f"--micro_out={out / 'pb'}",
            "--micro_opt=messages=protobuf", BENCH_PROTO,
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    for pkg in ("benchpb", "benchpb/v1"):
        (out / "pb" / pkg / "__init__.py").touch()
    return out
