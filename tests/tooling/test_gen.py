"""`micro gen` and `micro gen --check`, run as commands against real protoc."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from protoc_gen_micro.trees import tree
from tests.tooling.helpers import GOLDEN_HELLO, micro, one_line_error


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the golden scaffold: protos, committed gen/ and a [tool.micro] table."""
    target = tmp_path / "hello"
    shutil.copytree(GOLDEN_HELLO, target)
    return target


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {name: (p.read_bytes(), p.stat().st_mtime_ns) for name, p in tree(root).items()}


def test_check_passes_when_current_and_writes_nothing(project: Path) -> None:
    before = snapshot(project)
    result = micro("gen", "--check", cwd=project)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "gen/ is up to date\n"
    assert snapshot(project) == before


def test_check_reports_stale_missing_and_extra_files_with_a_diff(project: Path) -> None:
    micro_module = project / "gen/hello/v1/hello_micro.py"
    micro_module.write_text(micro_module.read_text().replace("HelloClient", "OldClient"))
    (project / "gen/hello/v1/__init__.py").unlink()
    (project / "gen/hello/v1/leftover_micro.py").write_text("# from a deleted proto\n")
    before = snapshot(project)
    result = micro("gen", "--check", cwd=project)
    assert result.returncode == 1
    assert one_line_error(result) == (
        "Error: gen/ is out of date (1 stale, 1 missing, 1 extra); run `micro gen`"
    )
    diff = result.stdout
    assert "--- a/gen/hello/v1/hello_micro.py\n+++ b/gen/hello/v1/hello_micro.py\n" in diff
    assert "-class OldClient(_micro.Stub):" in diff and "+class HelloClient(_micro.Stub):" in diff
    assert "+++ b/gen/hello/v1/__init__.py" in diff and "+class CallRequest(" in diff
    assert "--- a/gen/hello/v1/leftover_micro.py" in diff and "-# from a deleted proto" in diff
    assert snapshot(project) == before  # --check never writes


def test_check_catches_a_proto_change_that_was_not_regenerated(project: Path) -> None:
    proto = project / "proto/hello/v1/hello.proto"
    proto.write_text(
        proto.read_text().replace(
            "  string name = 1;\n}", "  string name = 1;\n  string lang = 3;\n}", 1
        )
    )
    result = micro("gen", "--check", cwd=project)
    assert result.returncode == 1
    assert "+    lang: " in result.stdout
    written = micro("gen", cwd=project)
    assert written.returncode == 0, written.stderr
    assert written.stdout == "gen/: 2 changed\n"  # the messages and the embedded descriptor
    assert micro("gen", "--check", cwd=project).returncode == 0


def test_gen_makes_out_exactly_the_generated_tree_and_leaves_the_handler_alone(
    project: Path,
) -> None:
    handler = project / "hello/handler.py"
    handler.write_text(handler.read_text() + "\n# my edit\n")
    shutil.rmtree(project / "gen/hello")
    (project / "gen/stale_micro.py").write_text("x = 1\n")
    (project / "gen/old/v1").mkdir(parents=True)
    (project / "gen/old/v1/__init__.py").write_text("")
    result = micro("gen", cwd=project)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "gen/: 3 new, 2 removed\n"
    assert tree(project / "gen").keys() == tree(GOLDEN_HELLO / "gen").keys()
    assert not (project / "gen/old").exists()
    for name, path in tree(GOLDEN_HELLO / "gen").items():
        assert (project / "gen" / name).read_bytes() == path.read_bytes(), name
    assert handler.read_text().endswith("\n# my edit\n")
    again = micro("gen", cwd=project)
    assert again.stdout == "gen/ is up to date\n"


def test_gen_finds_the_project_from_a_subdirectory_and_with_dash_c(project: Path) -> None:
    assert micro("gen", "--check", cwd=project / "proto/hello").returncode == 0
    assert micro("gen", "--check", "-C", str(project), cwd=project.parent).returncode == 0


def test_config_defaults_apply_without_pyproject(tmp_path: Path) -> None:
    shutil.copytree(GOLDEN_HELLO / "proto", tmp_path / "proto")
    result = micro("gen", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "gen/hello/v1/hello_micro.py").read_bytes() == (
        GOLDEN_HELLO / "gen/hello/v1/hello_micro.py"
    ).read_bytes()


def test_configured_roots_include_paths_out_and_options(tmp_path: Path) -> None:
    (tmp_path / "api/shop/v1").mkdir(parents=True)
    (tmp_path / "vendor/common").mkdir(parents=True)
    (tmp_path / "vendor/common/money.proto").write_text(
        'syntax = "proto3";\npackage common;\nmessage Money { int64 cents = 1; }\n'
    )
    (tmp_path / "api/shop/v1/shop.proto").write_text(
        'syntax = "proto3";\npackage shop.v1;\nimport "common/money.proto";\n'
        "service Shop { rpc Price(common.Money) returns (common.Money); }\n"
    )
    (tmp_path / "pyproject.toml").write_text(
        '[tool.micro]\nproto_roots = ["api"]\ninclude = ["vendor"]\nout = "src/gen"\n'
        'micro_opt = ["paths=source_relative"]\n'
    )
    result = micro("gen", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "src/gen/shop/v1/shop_micro.py").is_file()
    assert not (tmp_path / "src/gen/common/money_micro.py").exists()  # included, not generated
    assert micro("gen", "--check", cwd=tmp_path).stdout == "src/gen/ is up to date\n"


@pytest.mark.parametrize(
    ("pyproject", "expected"),
    [
        (
            '[tool.micro]\nprotos = ["proto"]\n',
            "unknown key 'protos' in [tool.micro] (known keys: proto_roots, include, out, "
            "micro_opt)",
        ),
        ("[tool.micro]\nout = 3\n", "[tool.micro] out must be a non-empty string"),
        ('[tool.micro]\nout = "."\n', "[tool.micro] out must be a subdirectory of the project"),
        ('[tool.micro]\nout = "proto/gen"\n', "overlaps the proto directory 'proto'"),
        ('[tool.micro]\nmicro_opt = "color=blue"\n', "micro_opt: unknown option 'color'"),
        ("[tool.micro\n", "not valid TOML"),
    ],
)
def test_bad_config_is_a_one_line_error(project: Path, pyproject: str, expected: str) -> None:
    (project / "pyproject.toml").write_text(pyproject)
    result = micro("gen", cwd=project)
    assert result.returncode == 2
    assert expected in one_line_error(result)


def test_no_protos_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "proto").mkdir()
    result = micro("gen", cwd=tmp_path)
    assert result.returncode == 2
    assert one_line_error(result) == "Error: no .proto files found under 'proto'"
    (tmp_path / "proto").rmdir()
    missing = micro("gen", "--check", cwd=tmp_path)
    assert one_line_error(missing) == "Error: proto directory 'proto' does not exist"


def test_protoc_failure_shows_protocs_message(project: Path) -> None:
    proto = project / "proto/hello/v1/hello.proto"
    proto.write_text(proto.read_text().replace("string name = 1;", "strin name = 1;", 1))
    before = snapshot(project / "gen")
    result = micro("gen", cwd=project)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("Error: protoc failed: proto/hello/v1/hello.proto:16:3:")
    assert '"strin" is not defined' in result.stderr
    assert snapshot(project / "gen") == before  # nothing half-written
