"""Render the model with Jinja2 (StrictUndefined); black in-process only where needed."""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

import jinja2

from . import layout, runtime_names
from .model import FileModel

if TYPE_CHECKING:
    import black


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        # templates/ ships as the package protoc_gen_micro.templates (see pyproject.toml).
        loader=jinja2.FileSystemLoader(str(resources.files("protoc_gen_micro.templates"))),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    # The model spells every value (see layout.py); templates only place them, and name
    # the runtime's classes through `rt`.
    env.globals["rt"] = runtime_names
    return env


_ENV = _environment()


def render_file(file: FileModel) -> str:
    source = _ENV.get_template("micro_module.py.j2").render(file=file)
    return format_python(source, file.output)


def format_python(source: str, name: str) -> str:
    """The templates already emit black's layout; black (24.1-26.x, in-process) runs only
    when a line is longer than that layout covers. It took 98% of the plugin's time."""
    if not layout.needs_black(source):
        return source
    import black  # rarely needed, and slow to import
    from black.parsing import InvalidInput

    try:
        return black.format_str(source, mode=black_mode())
    except InvalidInput as exc:  # a template bug, never user input
        raise RuntimeError(f"generated {name} is not valid Python: {exc}") from exc


def black_mode() -> black.Mode:
    import black
    from black.mode import TargetVersion

    return black.Mode(target_versions={TargetVersion.PY311}, line_length=layout.LINE_LENGTH)
