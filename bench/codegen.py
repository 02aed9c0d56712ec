"""Codegen benchmark: each generator timed as one whole ``protoc`` process per corpus."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.corpus import write_corpus
from protoc_gen_micro.protoc import include_dirs, plugin_path

# name -> protoc output flags (OUT is replaced by a fresh directory per run)
TOOLS: dict[str, list[str]] = {
    "protoc --python_out (floor)": ["--python_out=OUT"],
    "--grpc_python_out (C++)": ["--grpc_python_out=OUT"],
    "grpclib plugin": ["--grpclib_python_out=OUT"],
    "betterproto2-compiler": [
        "--python_betterproto2_out=OUT",
        "--python_betterproto2_opt=client_generation=none",
    ],
    "micro plugin alone": ["--micro_out=OUT"],
    "micro full (betterproto2 + micro)": [
        "--python_betterproto2_out=OUT",
        "--python_betterproto2_opt=client_generation=none",
        "--micro_out=OUT",
    ],
}
# The Python plugins again, each timed alone on the request protoc sends it (saved once per
# corpus), so protoc's own parsing, which every row above shares, is left out.
REPLAYED: dict[str, tuple[str, str]] = {  # name -> (plugin, parameter)
    "grpclib plugin": ("grpclib_python", ""),
    "betterproto2-compiler": ("python_betterproto2", "client_generation=none"),
    "micro plugin alone": ("micro", ""),
}
GRPC_PYTHON = "--grpc_python_out (C++)"
OURS = "micro plugin alone"
BETTERPROTO2 = "betterproto2-compiler"


@dataclass
class CorpusSpec:
    name: str
    root: Path
    files: list[str]
    include: list[str] = field(default_factory=list)


@dataclass
class CodegenResults:
    corpora: list[CorpusSpec]
    times: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    replayed: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    errors: dict[tuple[str, str], str] = field(default_factory=dict)

    def median(self, corpus: str, tool: str, replayed: bool = False) -> float | None:
        samples = (self.replayed if replayed else self.times).get((corpus, tool))
        return statistics.median(samples) if samples else None


def _plugins() -> list[str]:
    return [
        f"--plugin=protoc-gen-{name}={plugin_path(name)}"
        for name in ("micro", "python_betterproto2", "grpclib_python")
    ]


def googleapis_corpus() -> CorpusSpec:
    """Every .proto shipped in googleapis-common-protos (site-packages/google/...)."""
    import google.api

    root = Path(next(iter(google.api.__path__))).parent.parent
    files = sorted(str(p.relative_to(root)) for p in (root / "google").rglob("*.proto"))
    return CorpusSpec("googleapis-common-protos", root, files)


def make_corpora(work: Path, smoke: bool) -> list[CorpusSpec]:
    packages, per = (2, 3) if smoke else (20, 10)
    base = write_corpus(work / "x1", packages=packages, files_per_package=per)
    double = write_corpus(work / "x2", packages=packages * 2, files_per_package=per)
    corpora = [
        CorpusSpec(f"synthetic {len(base.files)} files", base.root, base.files),
        CorpusSpec(f"synthetic {len(double.files)} files (2x)", double.root, double.files),
    ]
    google = googleapis_corpus()
    if smoke:
        google.files = [f for f in google.files if f.startswith("google/rpc/")]
    corpora.append(google)
    return corpora


def _env(**extra: str) -> dict[str, str]:
    """This interpreter's bin directory first on PATH: betterproto2-compiler runs `ruff`
    from there, and a venv used without activating it has no other way to find it."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return dict(os.environ, PATH=path, **extra)


def run_once(corpus: CorpusSpec, tool: str, out: Path, env: dict[str, str] | None = None) -> float:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    flags = [flag.replace("OUT", str(out)) for flag in TOOLS[tool]]
    includes = [f"-I{corpus.root}", *(f"-I{d}" for d in include_dirs())]
    args = [sys.executable, "-m", "grpc_tools.protoc", *includes, *_plugins(), *flags]
    started = time.perf_counter()
    result = subprocess.run(
        [*args, *corpus.files],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
        env=env or _env(),
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        lines = (result.stderr or "").strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"exit {result.returncode}")
    return elapsed


def save_requests(corpus: CorpusSpec, work: Path) -> dict[str, Path]:
    """The CodeGeneratorRequest protoc sends for ``corpus``, once per replayed plugin
    (with that plugin's parameter)."""
    from google.protobuf.compiler.plugin_pb2 import CodeGeneratorRequest

    dump = work / "request.bin"
    run_once(corpus, OURS, work / "out", env=_env(MICRO_DUMP_REQUEST=str(dump)))
    request = CodeGeneratorRequest.FromString(dump.read_bytes())
    paths: dict[str, Path] = {}
    for tool, (_, parameter) in REPLAYED.items():
        request.parameter = parameter
        paths[tool] = work / f"request-{len(paths)}.bin"
        paths[tool].write_bytes(request.SerializeToString())
    return paths


def replay_once(tool: str, request: Path) -> float:
    with request.open("rb") as stdin:
        started = time.perf_counter()
        result = subprocess.run(
            [plugin_path(REPLAYED[tool][0])],
            stdin=stdin,
            capture_output=True,
            check=False,
            env=_env(),
        )
        elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(result.stderr.decode(errors="replace").strip()[-200:])
    return elapsed


def run(rounds: int, smoke: bool, log: Callable[[str], None] = print) -> CodegenResults:
    work = Path(tempfile.mkdtemp(prefix="micro-bench-codegen-"))
    try:
        results = CodegenResults(make_corpora(work, smoke))
        tools = list(TOOLS)
        for round_no in range(rounds):
            # alternate: every tool once per round, the order rotated each round
            order = tools[round_no % len(tools) :] + tools[: round_no % len(tools)]
            for corpus in results.corpora:
                for tool in order:
                    key = (corpus.name, tool)
                    if key in results.errors:
                        continue
                    try:
                        elapsed = run_once(corpus, tool, work / "out")
                    except (RuntimeError, subprocess.TimeoutExpired) as exc:
                        results.errors[key] = str(exc)
                        continue
                    results.times.setdefault(key, []).append(elapsed)
                    log(f"  codegen {round_no + 1}/{rounds} {corpus.name}: {tool}: {elapsed:.2f}s")
        for corpus in results.corpora:
            requests = save_requests(corpus, work)
            for round_no in range(rounds):
                for tool in REPLAYED:
                    key = (corpus.name, f"{tool} (replayed)")
                    if key in results.errors:
                        continue
                    try:
                        elapsed = replay_once(tool, requests[tool])
                    except RuntimeError as exc:
                        results.errors[key] = str(exc)
                        continue
                    results.replayed.setdefault((corpus.name, tool), []).append(elapsed)
                    log(f"  replayed {round_no + 1}/{rounds} {corpus.name}: {tool}: {elapsed:.2f}s")
        return results
    finally:
        shutil.rmtree(work, ignore_errors=True)
