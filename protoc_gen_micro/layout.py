"""Black's layout for the few shapes the templates emit, so the plugin need not run black.

black (pinned) is the reference: `render.format_python` hands a module to black only
when a line is longer than these rules cover, and a test checks that black leaves
every generated module unchanged.
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
    pad = " " * indent
    lines = "".join(f"{pad}{_PAD}{item},\n" for item in items)
    return f"{pad}{head}(\n{lines}{pad}){tail}"


def tuple_of(indent: int, head: str, items: Sequence[str], tail: str = "") -> str:
    """A tuple display as black leaves it: `()`, `(x,)`, or one item a line."""
    pad = " " * indent
    if not items:
        return f"{pad}{head}(){tail}"
    if len(items) == 1:
        return f"{pad}{head}({items[0]},){tail}"
    return exploded(indent, head, items, tail)


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
