"""The benchmark suite still runs (no timing is asserted: speed lives only in bench/)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench import codegen
from bench.corpus import write_corpus
from bench.report import RAW
from bench.rpc_worker import STACKS
from protoc_gen_micro.protoc import include_dirs
from tests.cluster import ROOT


def test_corpus_compiles_with_protoc(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "protos", packages=3, files_per_package=2, seed=7)
    assert len(corpus.files) == 6
    text = (corpus.root / corpus.files[-1]).read_text()
    for shape in ("map<", "repeated ", "oneof ", "enum ", "import ", "stream "):
        assert shape in text
    out = tmp_path / "out"
    out.mkdir()
    result = subprocess.run(
        [
            sys.executable, "-m", "grpc_tools.protoc", f"-I{corpus.root}",
            *(f"-I{d}" for d in include_dirs()), f"--python_out={out}", *corpus.files,
        ],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(list(out.rglob("*_pb2.py"))) == 6


def test_codegen_smoke_writes_its_tables(tmp_path: Path) -> None:
    report = tmp_path / "smoke.md"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--suites", "codegen", "--out", str(report)],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=300,
        # as CI runs it: the venv not activated (betterproto2-compiler still finds ruff)
        env=dict(os.environ, PATH=os.defpath),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line.split(" | ") for line in report.read_text().splitlines()]
    timed = [r for r in rows if r[0].startswith("| ") and r[0][2:] in codegen.TOOLS]
    replayed = [r for r in rows if r[0] == "| micro plugin alone"]
    assert len(timed) == len(codegen.TOOLS) + len(codegen.REPLAYED)  # both tables
    for row in timed:  # every generator ran on every corpus (3 of them)
        assert all(float(cell.strip(" |")) > 0 for cell in row[1:]), row
    assert len(replayed) == 2


def test_rpc_smoke_writes_its_table(tmp_path: Path) -> None:
    report = tmp_path / "smoke.md"
    result = subprocess.run(
        [
            sys.executable, "-m", "bench", "--smoke", "--suites", "rpc", "memory",
            "--stacks", *STACKS,
            "--duration", "0.3", "--stream-count", "500",
            "--out", str(report),
        ],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    text = report.read_text()
    assert "### RPC" in text and "### Memory" in text
    prefixes = tuple(f"| {s} |" for s in STACKS)
    rows = [line for line in text.splitlines() if line.startswith(prefixes)]
    assert len(rows) == 2 * len(STACKS)  # one RPC row and one memory row per stack
    assert all("-" not in row.split("|")[2] for row in rows)  # every cell has a number
    for ours, raw in RAW.items():  # micro on each transport against its raw transport
        assert f"| target ({ours} vs raw {raw}) |" in text
    assert text.count("| unary/small/c64 req/s ratio") == len(RAW)
    assert "| target (micro vs grpcio-pb2) |" in text


def test_codec_smoke_writes_its_table(tmp_path: Path) -> None:
    report = tmp_path / "smoke.md"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--suites", "codec", "--out", str(report)],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    text = report.read_text()
    assert "## Codec" in text and "went through `upb`" in text
    rows = [line for line in text.splitlines() if line.startswith(("| small |", "| medium |"))]
    assert len(rows) == 8  # four codecs per message size
    assert all("-" not in row.split("|")[4] for row in rows)  # every total has a number
    assert text.count("| medium encode+decode") == 2
