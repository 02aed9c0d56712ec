"""The route table: HTTP routes built from the registry's endpoints.

Every `google.api.http` rule of an endpoint (`Endpoint.metadata["http"]`, the rule and then
its `additional_bindings`) is a route. An endpoint with no rule gets the default route
`POST /{service}/{Service}/{Method}` (the registry name of the service, the proto service's
short name and the rpc name, with the whole JSON body as the request) only where
:class:`DefaultRoutes` turns it on: it would expose every internal method, so it is off
unless asked for, for every service or for the services named.

When several routes match a request, the most specific template wins (a `:verb`, then more
literal segments, then no `**`); ties go to the service that sorts first.
"""

from __future__ import annotations

import difflib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import micro
from micro.gateway.templates import PathTemplate, TemplateError

__all__ = ["DEFAULT_RULE", "DefaultRoutes", "Match", "Route", "RouteTable", "routes_for"]

log = logging.getLogger(__name__)

DEFAULT_RULE = "default"


@dataclass(frozen=True)
class DefaultRoutes:
    """Which registry services get default routes (``micro api --default-routes``,
    ``--default-routes-for NAME``): none unless asked."""

    every: bool = False
    services: frozenset[str] = frozenset()

    def __call__(self, service: str) -> bool:
        return self.every or service in self.services


@dataclass(frozen=True)
class Route:
    method: str  # GET, POST, ... or a custom verb, upper case
    template: PathTemplate
    service: str  # the registry name
    endpoint: str  # "Library.GetBook"
    grpc_path: str  # "/gateway.v1.Library/GetBook"
    kind: str  # micro.Kind value
    body: str = ""
    response_body: str = ""
    rule: str = "google.api.http"  # or "additional_bindings[i]", or "default"

    @property
    def path(self) -> str:
        return self.template.text

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    def describe_rule(self) -> str:
        parts = [self.rule]
        if self.body:
            parts.append(f"body={self.body}")
        if self.response_body:
            parts.append(f"response_body={self.response_body}")
        return " ".join(parts)

    def to_dict(self) -> dict[str, str]:
        return {
            "method": self.method,
            "path": self.path,
            "service": self.service,
            "endpoint": self.endpoint,
            "grpc_path": self.grpc_path,
            "kind": self.kind,
            "body": self.body,
            "response_body": self.response_body,
            "rule": self.rule,
        }


@dataclass(frozen=True)
class Match:
    route: Route
    variables: dict[str, str]


def _rules(endpoint: micro.registry.Endpoint) -> list[dict[str, object]]:
    raw = endpoint.metadata.get("http")
    if not raw:
        return []
    try:
        rules = json.loads(raw)
    except json.JSONDecodeError:
        log.warning("%s: malformed http metadata %r; ignored", endpoint.name, raw)
        return []
    if not isinstance(rules, list):
        return []
    return [r for r in rules if isinstance(r, dict)]


def _literal(template: PathTemplate, segments: int) -> bool:
    plain = not any(s.wildcard or s.deep for s in template.segments)
    return plain and len(template.segments) == segments and not template.verb


def routes_for(
    service: str, endpoint: micro.registry.Endpoint, *, default_route: bool = False
) -> list[Route]:
    """The routes of one endpoint of the registry service `service` (with `default_route`,
    the default route if it has no rule)."""
    grpc_path = endpoint.path or ""
    rules = _rules(endpoint)
    out: list[Route] = []
    for index, rule in enumerate(rules):
        method, path = str(rule.get("method", "")).upper(), str(rule.get("path", ""))
        try:
            template = PathTemplate.parse(path)
        except TemplateError as exc:
            log.warning("%s %s: %s; route ignored", service, endpoint.name, exc)
            continue
        name = "google.api.http" if index == 0 else f"additional_bindings[{index - 1}]"
        if rule.get("custom"):
            name += f" custom {method}"
        out.append(
            Route(
                method=method,
                template=template,
                service=service,
                endpoint=endpoint.name,
                grpc_path=grpc_path,
                kind=endpoint.kind,
                body=str(rule.get("body", "")),
                response_body=str(rule.get("response_body", "")),
                rule=name,
            )
        )
    if not rules and default_route:
        proto_service, _, rpc = endpoint.name.rpartition(".")
        try:
            template = PathTemplate.parse(f"/{service}/{proto_service}/{rpc}")
        except TemplateError:
            log.warning("%s %s: no default route for this name", service, endpoint.name)
            return out
        if proto_service and rpc and _literal(template, 3):
            out.append(
                Route(
                    method="POST",
                    template=template,
                    service=service,
                    endpoint=endpoint.name,
                    grpc_path=grpc_path,
                    kind=endpoint.kind,
                    body="*",
                    rule=DEFAULT_RULE,
                )
            )
    return out


class RouteTable:
    """Immutable; rebuilt whenever the registry changes."""

    def __init__(self, routes: Iterable[Route] = ()) -> None:
        unique = {(r.method, r.path, r.service, r.grpc_path): r for r in routes}
        self.routes: tuple[Route, ...] = tuple(
            sorted(unique.values(), key=lambda r: (r.path, r.method, r.service, r.endpoint))
        )
        ranked = sorted(
            self.routes, key=lambda r: (tuple(-x for x in r.template.specificity), r.service)
        )
        self._ranked: tuple[Route, ...] = tuple(ranked)

    @classmethod
    def from_records(
        cls, records: Sequence[micro.ServiceRecord], default_routes: DefaultRoutes | None = None
    ) -> RouteTable:
        wanted = default_routes or DefaultRoutes()
        routes: list[Route] = []
        for record in records:
            default_route = wanted(record.name)
            for endpoint in record.endpoints:
                routes.extend(routes_for(record.name, endpoint, default_route=default_route))
        return cls(routes)

    def __len__(self) -> int:
        return len(self.routes)

    def match(self, method: str, raw_path: str) -> Match | None:
        for route in self._ranked:
            if route.method != method:
                continue
            variables = route.template.match(raw_path)
            if variables is not None:
                return Match(route, variables)
        return None

    def allowed(self, raw_path: str) -> list[str]:
        """The methods of the routes whose template matches `raw_path` (for a 405)."""
        return sorted({r.method for r in self._ranked if r.template.match(raw_path) is not None})

    def closest(self, method: str, raw_path: str, limit: int = 3) -> list[Route]:
        """The routes whose `METHOD path` looks most like the request's."""
        wanted = f"{method} {raw_path}"

        def score(route: Route) -> float:
            return difflib.SequenceMatcher(None, wanted, route.label).ratio()

        return sorted(self.routes, key=score, reverse=True)[:limit]
