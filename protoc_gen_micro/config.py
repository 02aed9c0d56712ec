"""The `[tool.micro]` table of a project's pyproject.toml, read strictly."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .options import OptionError, parse_options

DEFAULTS: Mapping[str, object] = {
    "proto_roots": ["proto"],
    "include": [],
    "out": "gen",
    "micro_opt": "",
}


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class MicroConfig:
    """Where a project's protos are and where `micro gen` writes; paths are absolute."""

    project: Path  # the directory of pyproject.toml (or the working directory without one)
    source: Path | None  # the pyproject.toml read, if any
    proto_roots: tuple[Path, ...]  # every .proto under these is generated; each is an -I path
    include: tuple[Path, ...]  # extra -I paths for imports that are not generated
    out: Path
    micro_opt: str

    def show(self, path: Path) -> str:
        """`path` relative to the project, for messages."""
        return (
            path.relative_to(self.project).as_posix()
            if path.is_relative_to(self.project)
            else str(path)
        )


def find_project(start: Path) -> Path:
    """The nearest directory from `start` upwards that has a pyproject.toml, else `start`."""
    start = start.resolve()
    for directory in (start, *start.parents):
        if (directory / "pyproject.toml").is_file():
            return directory
    return start


def _string_list(key: str, value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError(f"[tool.micro] {key} must be a string or a list of strings")


def load(project: Path) -> MicroConfig:
    pyproject = project / "pyproject.toml"
    table: dict[str, object] = {}
    source: Path | None = None
    if pyproject.is_file():
        source = pyproject
        try:
            data = tomllib.loads(pyproject.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{pyproject}: not valid TOML: {exc}") from None
        raw = data.get("tool", {}).get("micro", {})
        if not isinstance(raw, dict):
            raise ConfigError(f"{pyproject}: [tool.micro] must be a table")
        table = raw
    unknown = sorted(set(table) - set(DEFAULTS))
    if unknown:
        known = ", ".join(DEFAULTS)
        raise ConfigError(
            f"{pyproject}: unknown key {unknown[0]!r} in [tool.micro] (known keys: {known})"
        )
    merged = {**DEFAULTS, **table}
    out = merged["out"]
    if not isinstance(out, str) or not out.strip():
        raise ConfigError("[tool.micro] out must be a non-empty string")
    micro_opt = merged["micro_opt"]
    if isinstance(micro_opt, list):
        micro_opt = ",".join(_string_list("micro_opt", micro_opt))
    if not isinstance(micro_opt, str):
        raise ConfigError("[tool.micro] micro_opt must be a string or a list of strings")
    try:
        parse_options(micro_opt)
    except OptionError as exc:
        raise ConfigError(f"[tool.micro] micro_opt: {exc}") from None
    roots = _string_list("proto_roots", merged["proto_roots"])
    if not roots:
        raise ConfigError("[tool.micro] proto_roots must name at least one directory")
    config = MicroConfig(
        project=project,
        source=source,
        proto_roots=tuple((project / r).resolve() for r in roots),
        include=tuple((project / i).resolve() for i in _string_list("include", merged["include"])),
        out=(project / out).resolve(),
        micro_opt=micro_opt,
    )
    _check_out(config)
    return config


def _check_out(config: MicroConfig) -> None:
    """`out` is where `micro gen` writes (and removes the generated files no proto produces
    any more), so it must be a directory of its own inside the project."""
    out = config.out
    if out == config.project or not out.is_relative_to(config.project):
        raise ConfigError(
            f"[tool.micro] out must be a subdirectory of the project, not {config.show(out)!r}"
        )
    for root in (*config.proto_roots, *config.include):
        if root.is_relative_to(out) or out.is_relative_to(root):
            raise ConfigError(
                f"[tool.micro] out {config.show(out)!r} overlaps the proto directory "
                f"{config.show(root)!r}; generate into a directory of its own"
            )
