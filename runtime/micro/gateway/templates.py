"""google.api.http path templates: parse `/v1/{book.name=shelves/*/books/*}:verb` and match
request paths against it.

Grammar (google/api/http.proto)::

    Template = "/" Segments [ Verb ] ;
    Segments = Segment { "/" Segment } ;
    Segment  = "*" | "**" | LITERAL | Variable ;
    Variable = "{" FieldPath [ "=" Segments ] "}" ;
    FieldPath = IDENT { "." IDENT } ;
    Verb     = ":" LITERAL ;

`{name}` is `{name=*}`. `*` matches one path segment, `**` zero or more (at most one `**`
per template). A variable captures the segments it spans: one segment is percent-decoded
whole; several are decoded segment by segment and joined with `/` (an encoded `%2F` stays
encoded).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

__all__ = ["PathTemplate", "Segment", "TemplateError", "Variable"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LITERAL = re.compile(r"[^/{}*:=]+|\*\*?")


class TemplateError(ValueError):
    """The path template does not follow the google.api.http grammar."""


@dataclass(frozen=True)
class Segment:
    """`*`, `**` or a literal."""

    text: str

    @property
    def wildcard(self) -> bool:
        return self.text == "*"

    @property
    def deep(self) -> bool:
        return self.text == "**"


@dataclass(frozen=True)
class Variable:
    field_path: tuple[str, ...]
    start: int
    end: int  # exclusive segment index

    @property
    def name(self) -> str:
        return ".".join(self.field_path)


@dataclass(frozen=True)
class PathTemplate:
    text: str
    segments: tuple[Segment, ...]
    variables: tuple[Variable, ...]
    verb: str = ""

    @classmethod
    def parse(cls, text: str) -> PathTemplate:
        return _Parser(text).template()

    @property
    def specificity(self) -> tuple[int, int, int, int]:
        """Higher wins when several templates match one path: a verb, then more literal
        segments, then no `**`, then more segments."""
        literals = sum(1 for s in self.segments if not (s.wildcard or s.deep))
        deep = any(s.deep for s in self.segments)
        return (1 if self.verb else 0, literals, 0 if deep else 1, len(self.segments))

    def match(self, raw_path: str) -> dict[str, str] | None:
        """The variables' values if `raw_path` (still percent-encoded) matches, else None."""
        if self.verb:
            suffix = ":" + self.verb
            if not raw_path.endswith(suffix):
                return None
            raw_path = raw_path[: -len(suffix)]
        if not raw_path.startswith("/"):
            return None
        parts = raw_path[1:].split("/")
        if parts == [""]:
            parts = []
        spans = self._align(parts)
        if spans is None:
            return None
        values: dict[str, str] = {}
        for variable in self.variables:
            start, end = spans[variable.start], spans[variable.end]
            captured = parts[start:end]
            if len(captured) == 1:
                values[variable.name] = unquote(captured[0])
            else:
                values[variable.name] = "/".join(
                    unquote(p.replace("%2F", "%252F").replace("%2f", "%252f")) for p in captured
                )
        return values

    def _align(self, parts: list[str]) -> list[int] | None:
        """Boundaries: index i of the template maps to parts[bounds[i]:bounds[i+1]]."""
        deep = next((i for i, s in enumerate(self.segments) if s.deep), None)
        n = len(self.segments)
        if deep is None:
            if len(parts) != n:
                return None
            bounds = list(range(n + 1))
        else:
            fixed = n - 1
            if len(parts) < fixed:
                return None
            extra = len(parts) - fixed
            bounds = [i if i <= deep else i - 1 + extra for i in range(n + 1)]
        for i, segment in enumerate(self.segments):
            if segment.deep:
                continue
            part = parts[bounds[i]]
            if segment.wildcard:
                if not part:
                    return None
            elif unquote(part) != segment.text:
                return None
        return bounds


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.segments: list[Segment] = []
        self.variables: list[Variable] = []

    def fail(self, why: str) -> TemplateError:
        return TemplateError(f"invalid path template {self.text!r}: {why} at offset {self.pos}")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise self.fail(f"expected {char!r}")
        self.pos += 1

    def template(self) -> PathTemplate:
        self.expect("/")
        self.parse_segments(in_variable=False)
        verb = ""
        if self.peek() == ":":
            self.pos += 1
            match = _LITERAL.match(self.text, self.pos)
            if match is None or match.group().startswith("*"):
                raise self.fail("expected a verb after ':'")
            verb = match.group()
            self.pos = match.end()
        if self.pos != len(self.text):
            raise self.fail("unexpected character")
        if sum(1 for s in self.segments if s.deep) > 1:
            raise self.fail("more than one '**'")
        names = [v.name for v in self.variables]
        if len(names) != len(set(names)):
            raise self.fail("a field is bound twice")
        return PathTemplate(self.text, tuple(self.segments), tuple(self.variables), verb)

    def parse_segments(self, *, in_variable: bool) -> None:
        while True:
            self.parse_segment(in_variable=in_variable)
            if self.peek() != "/":
                return
            self.pos += 1

    def parse_segment(self, *, in_variable: bool) -> None:
        if self.peek() == "{":
            if in_variable:
                raise self.fail("nested variable")
            self.parse_variable()
            return
        match = _LITERAL.match(self.text, self.pos)
        if match is None:
            raise self.fail("expected a segment")
        self.segments.append(Segment(match.group()))
        self.pos = match.end()

    def parse_variable(self) -> None:
        self.expect("{")
        path: list[str] = []
        while True:
            match = _IDENT.match(self.text, self.pos)
            if match is None:
                raise self.fail("expected a field name")
            path.append(match.group())
            self.pos = match.end()
            if self.peek() != ".":
                break
            self.pos += 1
        start = len(self.segments)
        if self.peek() == "=":
            self.pos += 1
            self.parse_segments(in_variable=True)
        else:
            self.segments.append(Segment("*"))
        self.expect("}")
        self.variables.append(Variable(tuple(path), start, len(self.segments)))
