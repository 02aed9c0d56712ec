"""Who may call what: rules per service and endpoint (go-micro's ``auth.Rules``).

A :class:`Rule` names endpoints by pattern and says what a call to them needs: nothing
(``public=True``), a valid token (the default), or a valid token holding every scope in
``scopes``. For a call, the most specific matching rule decides: an exact endpoint beats
``Greeter.*``, which beats ``*``; among equally specific ones the last granted wins, so
:meth:`Rules.grant` can override a default. An endpoint no rule names needs a valid token.

Endpoint patterns match the endpoint's registry name (``Greeter.SayHello``) or, when they
start with ``/``, its gRPC path (``/helloworld.v1.Greeter/SayHello``); ``*`` is a
wildcard. Service patterns match the registry name (``helloworld``); they matter where one
set of rules covers several services (the gateway).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Protocol

from micro import errors
from micro.auth._types import Account

__all__ = ["HEALTH_PUBLIC", "Endpoint", "Rule", "Rules", "parse_rules"]


class Endpoint(Protocol):
    """What rules look at: a :class:`micro.Method`, or a gateway route's endpoint."""

    @property
    def name(self) -> str: ...
    @property
    def path(self) -> str: ...


@dataclass(frozen=True)
class Rule:
    endpoint: str = "*"
    scopes: tuple[str, ...] = ()
    public: bool = False
    service: str = "*"

    def __post_init__(self) -> None:
        if self.public and self.scopes:
            raise ValueError(f"rule {self.endpoint!r}: a public endpoint needs no scopes")
        if isinstance(self.scopes, str):
            raise TypeError(f"rule {self.endpoint!r}: scopes is a tuple of names, not a str")

    def matches(self, service: str, method: Endpoint) -> bool:
        target = method.path if self.endpoint.startswith("/") else method.name
        return fnmatchcase(service, self.service) and fnmatchcase(target, self.endpoint)

    @property
    def specificity(self) -> tuple[int, int, int, int]:
        return (
            "*" not in self.endpoint,
            len(self.endpoint.replace("*", "")),
            "*" not in self.service,
            len(self.service.replace("*", "")),
        )

    def describe(self) -> str:
        if self.public:
            return "public"
        if self.scopes:
            return "scopes " + ", ".join(repr(s) for s in self.scopes)
        return "any valid token"


#: health answers everyone by default (load balancers and orchestrators hold no token)
HEALTH_PUBLIC = Rule("/grpc.health.v1.Health/*", public=True)


class Rules:
    """An ordered set of :class:`Rule`; starts with :data:`HEALTH_PUBLIC` (revoke it, or
    grant a rule for the same pattern, to put health behind auth)."""

    def __init__(self, rules: Iterable[Rule] = (), *, health_public: bool = True) -> None:
        self._rules: list[Rule] = [HEALTH_PUBLIC] if health_public else []
        self._rules.extend(rules)
        self._cache: dict[tuple[str, str], Rule] = {}

    def grant(
        self,
        endpoint: str = "*",
        *,
        scopes: Iterable[str] = (),
        public: bool = False,
        service: str = "*",
    ) -> Rule:
        """Add a rule (see the module docs) and return it."""
        rule = Rule(endpoint, tuple(scopes), public, service)
        self._rules.append(rule)
        self._cache.clear()
        return rule

    def public(self, *endpoints: str, service: str = "*") -> None:
        """Make ``endpoints`` callable without a token."""
        for endpoint in endpoints:
            self.grant(endpoint, public=True, service=service)

    def revoke(self, rule: Rule) -> None:
        """Remove ``rule`` (every equal one); a ``ValueError`` if there is none."""
        if rule not in self._rules:
            raise ValueError(f"no such rule: {rule}")
        self._rules = [r for r in self._rules if r != rule]
        self._cache.clear()

    def __iter__(self) -> Iterator[Rule]:
        return iter(list(self._rules))

    def find(self, service: str, method: Endpoint) -> Rule:
        """The rule deciding calls of ``method`` on ``service``."""
        key = (service, method.path)
        rule = self._cache.get(key)
        if rule is None:
            best: Rule | None = None
            for candidate in self._rules:  # later rules win ties
                if candidate.matches(service, method) and (
                    best is None or candidate.specificity >= best.specificity
                ):
                    best = candidate
            rule = self._cache[key] = best if best is not None else Rule()
        return rule

    def verify(
        self, account: Account | None, service: str, method: Endpoint, *, reason: str = ""
    ) -> Rule:
        """Raise the error a call by ``account`` (``None``: no valid token; ``reason``:
        why) gets: 401 (UNAUTHENTICATED) or 403 (PERMISSION_DENIED); else return the rule
        that allowed it."""
        rule = self.find(service, method)
        if rule.public:
            return rule
        if account is None:
            why = reason or "no token (send 'authorization: Bearer <token>')"
            raise errors.unauthorized(service, f"{method.name}: {why}")
        if not account.has_scopes(*rule.scopes):
            missing = [s for s in rule.scopes if s not in account.scopes]
            raise errors.forbidden(
                service,
                f"{method.name} needs {rule.describe()}; account {account.id!r} lacks "
                + ", ".join(repr(s) for s in missing),
            )
        return rule

    def __repr__(self) -> str:
        return f"Rules({self._rules!r})"


def parse_rules(text: str, rules: Rules | None = None) -> Rules:
    """Rules from their one-line form (``MICRO_AUTH_RULES``): comma-separated
    ``PATTERN=public``, ``PATTERN=auth`` (any valid token) or ``PATTERN=SCOPE SCOPE...``
    (every scope needed), e.g. ``Greeter.SayHello=public,Admin.*=admin``. A
    ``ValueError`` names the entry that does not parse."""
    rules = rules if rules is not None else Rules()
    for entry in text.split(","):
        if not entry.strip():
            continue
        pattern, sep, need = (part.strip() for part in entry.partition("="))
        if not sep or not pattern or not need:
            raise ValueError(f"rule {entry.strip()!r} is not PATTERN=public|auth|SCOPES")
        if need == "public":
            rules.grant(pattern, public=True)
        elif need == "auth":
            rules.grant(pattern)
        else:
            rules.grant(pattern, scopes=need.split())
    return rules
