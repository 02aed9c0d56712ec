"""`micro-new` / `micro new`: the golden scaffold, names, options and overwrite refusal."""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

import pytest

from protoc_gen_micro.trees import compare_trees, tree
from tests.tooling.helpers import BIN, GOLDEN_HELLO, ROOT, micro, micro_new, one_line_error, run


def test_scaffold_matches_golden_byte_for_byte(tmp_path: Path) -> None:
    result = micro_new("hello", "--micro-source", "index", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    diff = compare_trees(GOLDEN_HELLO, tmp_path / "hello")
    assert not diff, (
        "golden-scaffold/ is stale; regenerate with `python -m scripts.golden` "
        "and read the diff:\n" + "".join(diff.lines)
    )


def test_micro_new_and_micro_new_subcommand_agree(tmp_path: Path) -> None:
    a = micro_new("hello", "--dir", "a", "--micro-source", "index", cwd=tmp_path)
    b = micro("new", "hello", "--dir", "b", "--micro-source", "index", cwd=tmp_path)
    assert a.returncode == b.returncode == 0, a.stderr + b.stderr
    assert not compare_trees(tmp_path / "a", tmp_path / "b")
    assert "created hello in a/" in a.stdout and "make install test" in a.stdout


def test_micro_source_checkout_is_written_as_file_requirements(tmp_path: Path) -> None:
    result = micro_new("hello", "--micro-source", str(ROOT), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "hello/requirements-micro.txt").read_text().splitlines()
    assert lines[1:] == [
        f"micro-runtime @ {(ROOT / 'runtime').as_uri()}",
        f"protoc-gen-micro @ {ROOT.as_uri()}",
    ]
    bad = micro_new("other", "--micro-source", str(tmp_path), cwd=tmp_path)
    assert bad.returncode == 2
    assert "not a micro checkout" in one_line_error(bad)


def test_golden_scaffold_passes_ruff_and_mypy_strict(tmp_path: Path) -> None:
    ruff = [sys.executable, "-m", "ruff"]
    check = run([*ruff, "check", "--no-cache", "."], GOLDEN_HELLO)
    assert check.returncode == 0, check.stdout
    fmt = run([*ruff, "format", "--check", "--no-cache", "."], GOLDEN_HELLO)
    assert fmt.returncode == 0, fmt.stdout
    assert mypy_strict(GOLDEN_HELLO, tmp_path, "hello") == ""


def mypy_strict(project: Path, tmp_path: Path, package: str) -> str:
    """mypy --strict over the project's own code; micro from source, gen/ followed silently."""
    config = tmp_path / "mypy.ini"
    config.write_text(
        f"[mypy]\nstrict = True\npython_version = 3.11\nmypy_path = {ROOT / 'runtime'}\n"
        f"cache_dir = {tmp_path / 'mypy-cache'}\n"
        "[mypy-micro.*]\nfollow_imports = silent\n[mypy-gen.*]\nfollow_imports = silent\n"
    )
    args = [sys.executable, "-m", "mypy", "--config-file", str(config)]
    result = run([*args, "main.py", "client.py", package, "tests"], project)
    return "" if result.returncode == 0 else result.stdout + result.stderr


def test_options_module_namespace_and_dir_make_a_working_project(tmp_path: Path) -> None:
    result = micro_new(
        "shop-cart",
        "--module",
        "acme.cart",
        "--namespace",
        "acme",
        "--dir",
        "svc",
        "--micro-source",
        "index",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    project = tmp_path / "svc"
    files = tree(project)
    assert "proto/acme/shop_cart/v1/shop_cart.proto" in files
    assert "gen/acme/shop_cart/v1/shop_cart_micro.py" in files
    assert {"acme/__init__.py", "acme/cart/__init__.py", "acme/cart/handler.py"} <= set(files)
    assert (
        "package acme.shop_cart.v1;" in files["proto/acme/shop_cart/v1/shop_cart.proto"].read_text()
    )
    assert 'SERVICE = "shop-cart"' in files["acme/cart/handler.py"].read_text()
    assert micro("gen", "--check", cwd=project).returncode == 0
    assert mypy_strict(project, tmp_path, "acme") == ""
    tests = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], project)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "4 passed" in tests.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["Hello"], "invalid service name 'Hello': use lowercase letters and digits"),
        (["1hello"], "invalid service name '1hello'"),
        (["a--b"], "invalid service name 'a--b'"),
        (["hello.world"], "invalid service name 'hello.world'"),
        (["x" * 51], "at most 50 characters"),
        (["class"], "invalid service name 'class': 'class' is a Python keyword"),
        (["json"], "the Python package 'json' would shadow the standard library module 'json'"),
        (["micro"], "the Python package 'micro' would shadow the 'micro' module the project uses"),
        (["gen"], "would shadow the 'gen' module"),
        (["ok", "--module", "acme.class"], "--module 'acme.class': 'class' is a Python keyword"),
        (["ok", "--module", "a-b"], "--module 'a-b': 'a-b' is not a Python identifier"),
        (["ok", "--namespace", "Acme"], "invalid namespace 'Acme'"),
    ],
)
def test_invalid_names_are_refused_with_one_line(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    result = micro_new(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert expected in one_line_error(result)
    assert list(tmp_path.iterdir()) == []


def test_refuses_a_non_empty_directory_unless_forced(tmp_path: Path) -> None:
    target = tmp_path / "hello"
    target.mkdir()
    (target / "notes.txt").write_text("mine\n")
    result = micro_new("hello", cwd=tmp_path)
    assert result.returncode == 2
    assert one_line_error(result) == (
        f"Error: {Path('hello')} exists and is not empty; pick another --dir, or pass --force "
        "to write the project's files into it"
    )
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    forced = micro_new("hello", "--force", "--micro-source", "index", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert (target / "notes.txt").read_text() == "mine\n"
    assert (target / "main.py").is_file()
    assert "replaced" not in forced.stdout  # nothing was there to replace
    (target / "main.py").write_text("# my main\n")
    (target / "README.md").write_text("# my readme\n")
    again = micro_new("hello", "--force", "--micro-source", "index", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "replaced 2 existing file(s) with new content:\n  README.md\n  main.py\n" in (
        again.stdout
    )
    (tmp_path / "empty").mkdir()
    assert micro_new("hello", "--dir", "empty", cwd=tmp_path).returncode == 0
    (tmp_path / "file").write_text("")
    not_dir = micro_new("hello", "--dir", "file", cwd=tmp_path)
    assert "file exists and is not a directory" in one_line_error(not_dir)


def test_help_lists_the_options() -> None:
    result = run([str(BIN / "micro-new"), "--help"], ROOT)
    for option in ("--dir", "--module", "--namespace", "--micro-source", "--force"):
        assert option in result.stdout


def test_versions_and_the_index_note(tmp_path: Path) -> None:
    version = importlib.metadata.version("protoc-gen-micro")
    assert run([str(BIN / "micro-new"), "--version"], ROOT).stdout == (
        f"micro-new, version {version}\n"
    )
    assert run([str(BIN / "protoc-gen-micro"), "--version"], ROOT).stdout == (
        f"protoc-gen-micro {version}\n"
    )
    created = micro_new("hello", "--micro-source", "index", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    assert created.stderr == (
        f"note: micro-runtime and protoc-gen-micro {version} are not on a package index yet, "
        "so `make install` can only find them with PIP_FIND_LINKS=DIR naming a directory of "
        "their wheels (`python -m build` in a micro checkout), or re-run micro-new with "
        "--micro-source PATH_OF_A_CHECKOUT\n"
    )
    local = micro_new("other", "--micro-source", str(ROOT), cwd=tmp_path)
    assert local.returncode == 0 and local.stderr == ""
