"""google.api.http path templates and the route table, without processes."""

from __future__ import annotations

import json
import re

import pytest

import micro
from micro.gateway.routes import DefaultRoutes, RouteTable, routes_for
from micro.gateway.templates import PathTemplate, TemplateError


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("/v1/{name=shelves/*/books/*}", "/v1/shelves/1/books/2", {"name": "shelves/1/books/2"}),
        ("/v1/{name=shelves/*/books/*}", "/v1/shelves/1/books", None),
        ("/v1/{name=shelves/*/books/*}", "/v1/shelves//books/2", None),
        ("/v1/{name}", "/v1/a%2Fb", {"name": "a/b"}),  # one segment: decoded whole
        ("/v1/{name=**}", "/v1/a/b%2Fc", {"name": "a/b%2Fc"}),  # several: %2F stays
        ("/v1/{name=**}", "/v1", {"name": ""}),
        ("/a/**/c", "/a/x/y/c", {}),
        ("/a/**/c", "/a/c", {}),
        ("/a/**/c", "/a/x/y", None),
        ("/v1/{book.name=shelves/*}:verb", "/v1/shelves/x:verb", {"book.name": "shelves/x"}),
        ("/v1/{book.name=shelves/*}:verb", "/v1/shelves/x", None),
        ("/v1/x", "/v1/%78", {}),
    ],
)
def test_match(template: str, path: str, expected: dict[str, str] | None) -> None:
    assert PathTemplate.parse(template).match(path) == expected


@pytest.mark.parametrize(
    ("template", "why"),
    [
        ("v1", "expected '/'"),
        ("/v1/{a}/{a}", "a field is bound twice"),
        ("/v1/{a=**}/**", "more than one '**'"),
        ("/v1/{a.}", "expected a field name"),
        ("/v1/{a={b}}", "nested variable"),
        ("/v1/x:", "expected a verb"),
        ("/v1/{a", "expected '}'"),
        ("/v1//x", "expected a segment"),
    ],
)
def test_invalid_templates(template: str, why: str) -> None:
    with pytest.raises(TemplateError, match=re.escape(why)):
        PathTemplate.parse(template)


def endpoint(name: str, rules: list[dict[str, object]] | None = None) -> micro.Endpoint:
    metadata = {"http": json.dumps(rules)} if rules is not None else {}
    return micro.Endpoint(name=name, path=f"/pkg.{name.replace('.', '/')}", metadata=metadata)


def test_default_routes_are_opt_in_per_service_or_for_all() -> None:
    records = [
        micro.ServiceRecord(name=name, endpoints=(endpoint("S.Plain"),)) for name in ("a", "b")
    ]

    def served(default_routes: DefaultRoutes | None) -> list[str]:
        return [r.path for r in RouteTable.from_records(records, default_routes).routes]

    assert served(None) == [] == served(DefaultRoutes())
    assert served(DefaultRoutes(services=frozenset({"b"}))) == ["/b/S/Plain"]
    assert served(DefaultRoutes(every=True)) == ["/a/S/Plain", "/b/S/Plain"]


def test_most_specific_route_wins_and_default_route() -> None:
    table = RouteTable(
        [
            *routes_for("a", endpoint("S.Any", [{"method": "GET", "path": "/v1/{name=**}"}])),
            *routes_for("b", endpoint("S.Get", [{"method": "GET", "path": "/v1/{name=books/*}"}])),
            *routes_for("b", endpoint("S.Verb", [{"method": "GET", "path": "/v1/{name=*}:x"}])),
            *routes_for("c", endpoint("S.Plain"), default_route=True),
            *routes_for("c", endpoint("S.Bad", [{"method": "GET", "path": "no-slash"}])),
        ]
    )
    assert [(r.method, r.path, r.rule) for r in table.routes if r.service == "c"] == [
        ("POST", "/c/S/Plain", "default")
    ]

    def endpoint_of(method: str, path: str) -> str | None:
        found = table.match(method, path)
        return None if found is None else found.route.endpoint

    assert endpoint_of("GET", "/v1/books/1") == "S.Get"
    assert endpoint_of("GET", "/v1/x:x") == "S.Verb"
    assert endpoint_of("GET", "/v1/shelves/1/books/2") == "S.Any"
    assert endpoint_of("POST", "/c/S/Plain") == "S.Plain"
    assert endpoint_of("POST", "/v1/books/1") is None
    assert table.allowed("/v1/books/1") == ["GET"]
