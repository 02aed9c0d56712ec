"""Render the model with Jinja2 (StrictUndefined), then format with black in-process."""

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
    env.filters["py"] = layout.literal
    env.filters["docstring"] = docstring
    env.globals["rt"] = runtime_names
    env.globals["lay"] = layout
    return env


def _escape_docstring_text(text: str) -> str:
    out = []
    for ch in text.replace("\\", "\\\\"):
        if ch == "\n" or (ch >= " " and ch != "\x7f"):
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    escaped = "".join(out).replace('"""', '\\"\\"\\"')
    if escaped.endswith('"'):
        escaped = escaped[:-1] + '\\"'
    if escaped.startswith('"'):
        escaped = "\\" + escaped
    return escaped


def docstring(text: str, indent: int) -> str:
    """A safe triple-quoted docstring for any comment text."""
    lines = [line.rstrip() for line in _escape_docstring_text(text).split("\n")]
    if len(lines) == 1:
        return f'"""{lines[0]}"""'
    pad = " " * indent
    body = "\n".join(f"{pad}{line}" if line else "" for line in lines[1:])
    return f'"""{lines[0]}\n{body}\n{pad}"""'


_ENV = _environment()


def render_file(file: FileModel) -> str:
    source = _ENV.get_template("micro_module.py.j2").render(file=file)
    return format_python(source, file.output)


def format_python(source: str, name: str) -> str:
    """The templates already emit black's layout; black (pinned, in-process) runs only
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
