"""How generated Python is spelled: literals, docstrings, and black's layout for the few
shapes the plugin emits, so the plugin need not run black.

The model spells everything with these helpers; templates only place the results. Two
forms come back: *lines* (`fit`, `exploded`, `tuple_of`, `docstring`) start with their
indentation and are written at column 0; *values* (`exploded_value`, `tuple_value`)
continue a line that starts at `indent`, such as `key=` in a call, and carry the
indentation of their later lines.

black (any of 24.1-26.x: their output agrees) is the reference: `render.format_python`
hands a module to black only when a line is longer than these rules cover, and a test
checks that black leaves every generated module unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

LINE_LENGTH = 88
_PAD = "    "


def literal(value: str | bytes | bool | int | None) -> str:
    """A Python literal, quoted as black quotes it (double quotes unless more escapes)."""
    if isinstance(value, str):
        return _black_quotes(repr(value), value.count("'"), value.count('"'))
    if isinstance(value, bytes):
        return _black_quotes(repr(value), value.count(b"'"), value.count(b'"'))
    return repr(value)


def _black_quotes(text: str, singles: int, doubles: int) -> str:
    # black's normalize_string_quotes, for what repr() emits: repr escapes only its own
    # quote, and picks '"' only when the text holds a "'" and no '"'. Double quotes win
    # unless they need more escapes. (black's regexes cost more than the whole plugin
    # on descriptor bytes; a test checks this against black.)
    start = 1 if text[0] == "b" else 0
    if text[start] == '"' or doubles > singles:
        return text
    body = text[start + 1 : -1]
    if singles or doubles:
        body = body.replace("\\'", "'").replace('"', '\\"')
    return f'{text[:start]}"{body}"'


def fit(indent: int, head: str, items: Sequence[str], tail: str = "") -> str:
    """`head(items)tail` laid out as black does: on one line if it fits; else the items
    on one indented line; else one item a line with a trailing comma."""
    pad = " " * indent
    one = f"{pad}{head}({', '.join(items)}){tail}"
    if len(one) <= LINE_LENGTH:
        return one
    body = f"{pad}{_PAD}{', '.join(items)}"
    if len(items) == 1 or len(body) <= LINE_LENGTH:
        return f"{pad}{head}(\n{body}\n{pad}){tail}"
    lines = "".join(f"{pad}{_PAD}{item},\n" for item in items)
    return f"{pad}{head}(\n{lines}{pad}){tail}"


def exploded(indent: int, head: str, items: Sequence[str], tail: str = "") -> str:
    """`head(items)tail` with a magic trailing comma: black keeps one item a line.
    A one-item tuple's comma is not magic to black, so the caller avoids that case."""
    return f"{' ' * indent}{head}{exploded_value(indent, items)}{tail}"


def exploded_value(indent: int, items: Sequence[str]) -> str:
    """`(items)` one item a line, each with a comma (see `exploded`). An item spanning
    lines is laid out for `indent + 4`."""
    pad = " " * indent
    lines = "".join(f"{pad}{_PAD}{item},\n" for item in items)
    return f"(\n{lines}{pad})"


def tuple_of(indent: int, head: str, items: Sequence[str], tail: str = "") -> str:
    """A tuple display as black leaves it: `()`, `(x,)`, or one item a line."""
    return f"{' ' * indent}{head}{tuple_value(indent, items)}{tail}"


def tuple_value(indent: int, items: Sequence[str]) -> str:
    """The tuple display of `tuple_of`, as a value."""
    if not items:
        return "()"
    if len(items) == 1:
        return f"({items[0]},)"
    return exploded_value(indent, items)


def docstring(indent: int, text: str) -> str:
    """A safe triple-quoted docstring for any comment text, as lines at `indent`."""
    pad = " " * indent
    lines = [line.rstrip() for line in _escape_docstring_text(text).split("\n")]
    if len(lines) == 1:
        return f'{pad}"""{lines[0]}"""'
    body = "\n".join(f"{pad}{line}" if line else "" for line in lines[1:])
    return f'{pad}"""{lines[0]}\n{body}\n{pad}"""'


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


def needs_black(source: str) -> bool:
    """Whether a line is longer than the rules above cover. black leaves two kinds of long
    line alone: docstring text (it never wraps prose), and a line whose only long part is
    one string literal as a keyword argument or tuple item."""
    in_docstring = False
    # Only a long line or a docstring quote matters, and few lines are either: picking
    # them out first keeps the per-line work off the other 95% of the module.
    marked = [line for line in source.splitlines() if len(line) > LINE_LENGTH or '"""' in line]
    for line in marked:
        stripped = line.strip()
        opens, closes = stripped.startswith('"""'), stripped.endswith('"""')
        one_line = opens and closes and len(stripped) >= 6
        in_text = in_docstring or opens or closes
        if len(line) > LINE_LENGTH and not in_text and not _literal_item(stripped):
            return True
        if (opens or closes) and not one_line:
            in_docstring = not in_docstring
    return False


def _literal_item(stripped: str) -> bool:
    """`key="...",` or `"...",` (also bytes): one string literal and a comma."""
    if not stripped.endswith(","):
        return False
    key, eq, value = stripped[:-1].partition("=")
    if not (eq and key.isidentifier()):
        value = stripped[:-1]
    value = value.removeprefix("b")
    return len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'"
