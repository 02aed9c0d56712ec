"""The message types the codec tests run over: every one in golden/ (with its golden-pb2/
twin) and the field shapes of tests/codec/protos, generated once per session."""

from __future__ import annotations

import functools
import importlib
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pool, message_factory

from micro import _upb_codec

ROOT = Path(__file__).resolve().parents[2]
PROTOS = Path(__file__).resolve().parent / "protos"
CODEC_PROTO = "codecpb/v1/codec.proto"


@dataclass(frozen=True)
class Case:
    name: str  # full proto name
    cls: type[Any]  # the betterproto2 class
    pb2: type[Any]  # the protoc `_pb2` class of the same type
    descriptor: Any  # the upb descriptor of the type


@functools.cache
def generated() -> Path:
    """tests/codec/protos as betterproto2 + micro modules (package ``codecgen``) and
    ``_pb2`` modules, on sys.path for the session."""
    from protoc_gen_micro.protoc import protoc

    out = Path(tempfile.mkdtemp(prefix="micro-codec-"))
    protoc([CODEC_PROTO], proto_path=[str(PROTOS)], out=out / "bp" / "codecgen")
    (out / "pb").mkdir()
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTOS}", f"--python_out={out / 'pb'}",
         CODEC_PROTO],
        check=True,
        capture_output=True,
    )  # fmt: skip
    sys.path[:0] = [str(out / "bp"), str(out / "pb")]
    import atexit

    atexit.register(shutil.rmtree, out, True)
    return out


def _pb2_class(full_name: str) -> type[Any]:
    descriptor = descriptor_pool.Default().FindMessageTypeByName(full_name)
    cls: type[Any] = message_factory.GetMessageClass(descriptor)
    return cls


def _cases(pool: Any, modules: list[str]) -> list[Case]:
    for module in modules:
        importlib.import_module(module)
    cases = []
    for url, cls in sorted(pool.url_to_type.items()):
        name = url.rpartition("/")[2].lstrip(".")
        plan = _upb_codec.plan_for(cls)
        cases.append(Case(name, cls, _pb2_class(name), plan.upb.DESCRIPTOR))
    return cases


@functools.cache
def golden_cases() -> list[Case]:
    """Every message type of golden/ (betterproto2) with golden-pb2/'s class for it."""
    pb2_root = str(ROOT / "golden-pb2")
    if pb2_root not in sys.path:
        sys.path.append(pb2_root)
    micro_modules = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for p in (ROOT / "golden").rglob("*_micro.py")
    )
    pb2_modules = sorted(
        ".".join(p.relative_to(ROOT / "golden-pb2").with_suffix("").parts)
        for p in (ROOT / "golden-pb2").rglob("*_pb2.py")
    )
    for module in pb2_modules:
        importlib.import_module(module)
    from golden.message_pool import default_message_pool

    return _cases(default_message_pool, micro_modules)


@functools.cache
def codec_cases() -> list[Case]:
    generated()
    importlib.import_module("codecpb.v1.codec_pb2")
    modules = ["codecgen.codecpb.v1", "codecgen.codecpb.v1.codec_micro"]
    for module in modules:
        importlib.import_module(module)
    pool = importlib.import_module("codecgen.message_pool").default_message_pool
    return _cases(pool, modules)


def codec_module() -> Any:
    generated()
    return importlib.import_module("codecgen.codecpb.v1")


def wkt_module() -> Any:
    generated()
    return importlib.import_module("codecgen.google.protobuf")
