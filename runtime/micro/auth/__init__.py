"""Authentication and authorization, go-micro style: accounts, verifiers, rules.

* :class:`Account`: who a call comes from (``id``, ``type``, ``issuer``, ``scopes``,
  ``metadata``), on ``context.account`` in handlers.
* :class:`Verifier`: token -> :class:`Account`, or :class:`InvalidToken`. The JWT one
  (HS256 secrets, RSA / EC / EdDSA public keys, JWKS from a URL or a file) is
  :class:`micro.auth.jwt.JWTVerifier`, with the ``auth`` extra (pyjwt); this module
  itself imports no JWT library.
* :class:`Rules` (:mod:`micro.auth.rules`): public endpoints and required scopes, per
  service and endpoint.
* :class:`Auth`: a verifier, its rules and the reflection setting, given to
  ``micro.Service(auth=...)`` or built from the environment (:func:`from_env`).

A service with auth answers a call without a valid token UNAUTHENTICATED (401) and a
call whose account lacks a scope PERMISSION_DENIED (403), before the handler and the
service's own middleware run. Tokens travel as ``authorization: Bearer <token>``; no
error, log line or HTTP body holds one.

Clients (``micro.Client(token=...)``, ``MICRO_TOKEN`` / ``MICRO_TOKEN_FILE``) attach
their own token. A handler's calls do **not** forward the token of the call it serves
unless told to (``micro.Client(forward_token=True)``, ``MICRO_AUTH_FORWARD=1``): a bearer
token handed to every downstream service would let any of them act as the caller
everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from micro import errors
from micro._config import ConfigError
from micro.auth._types import Account, InvalidToken, Verifier
from micro.auth.rules import HEALTH_PUBLIC, Endpoint, Rule, Rules, parse_rules
from micro.metadata import MetadataView
from micro.server import HandlerCall, HandlerNext, ServerMiddleware
from micro.status import Status

__all__ = [
    "AUTHORIZATION",
    "HEALTH_PUBLIC",
    "Account",
    "Auth",
    "Endpoint",
    "InvalidToken",
    "Reflection",
    "Rule",
    "Rules",
    "Verifier",
    "bearer",
    "client_token",
    "forward_from_env",
    "from_env",
    "middleware",
    "parse_rules",
]

#: the metadata key (and HTTP header) a bearer token travels in
AUTHORIZATION = "authorization"

#: reflection with auth on: ``public`` (anyone), ``auth`` (any valid token), ``off``
Reflection = Literal["public", "auth", "off"]
_REFLECTIONS: tuple[Reflection, ...] = ("public", "auth", "off")
_REFLECTION_PREFIX = "/grpc.reflection."


@dataclass
class Auth:
    """A service's (or the gateway's) auth: who is who (``verifier``), who may call what
    (``rules``; by default every endpoint needs a valid token but health), and reflection
    (``"public"`` by default: tools such as ``micro call``, ``micro api`` and ``buf curl``
    read the schema before they can send a call, and the schema holds no data;
    ``"auth"`` asks for a valid token, ``"off"`` answers UNIMPLEMENTED)."""

    verifier: Verifier
    rules: Rules = field(default_factory=Rules)
    reflection: Reflection = "public"

    def __post_init__(self) -> None:
        if self.reflection not in _REFLECTIONS:
            raise ValueError(
                f"reflection must be one of {', '.join(_REFLECTIONS)}, got {self.reflection!r}"
            )

    async def account(self, metadata: MetadataView) -> Account:
        """The account the request's bearer token proves; :class:`InvalidToken` if none."""
        token = bearer(metadata)
        if token is None:
            raise InvalidToken("no token (send 'authorization: Bearer <token>')")
        return await self.verifier.verify(token)

    async def check(self, service: str, method: Endpoint, metadata: MetadataView) -> Account | None:
        """Authenticate and authorize one call of ``method`` on ``service``: the account
        (``None`` on a public endpoint called without a valid token), or the 401 / 403 /
        501 :class:`~micro.errors.Error` to answer."""
        if method.path.startswith(_REFLECTION_PREFIX) and self.reflection != "auth":
            if self.reflection == "off":
                raise errors.Error(
                    service,
                    501,
                    "gRPC reflection is off on this service",
                    grpc_status=Status.UNIMPLEMENTED,
                )
            return None
        rule = self.rules.find(service, method)
        try:
            account: Account | None = await self.account(metadata)
            reason = ""
        except InvalidToken as exc:
            if rule.public:
                return None
            account, reason = None, str(exc)
        self.rules.verify(account, service, method, reason=reason)
        return account


def middleware(auth: Auth, service: str) -> ServerMiddleware:
    """The server middleware enforcing ``auth`` on ``service``'s endpoints; it puts the
    account on ``call.context.account``. (``micro.Service(auth=...)`` installs it.)"""

    async def authenticate(call: HandlerCall, next: HandlerNext) -> Any:
        call.context.account = await auth.check(service, call.method, call.context.metadata)
        return await next(call)

    return authenticate


def bearer(metadata: MetadataView | Mapping[str, Any]) -> str | None:
    """The bearer token of ``authorization`` metadata (``None`` without one); an
    :class:`InvalidToken` for another scheme or for more than one ``authorization``."""
    if isinstance(metadata, MetadataView):
        values = metadata.get_all(AUTHORIZATION)
    else:
        value = metadata.get(AUTHORIZATION)
        values = [] if value is None else [value]
    if not values:
        return None
    if len(values) > 1:
        raise InvalidToken("more than one authorization value")
    value = values[0]
    if not isinstance(value, str):
        raise InvalidToken("authorization is not text")
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("authorization is not 'Bearer <token>'")
    return token.strip()


# -- configuration from the environment -----------------------------------------------

_TRUE = ("1", "true", "yes", "on")


def _read_secret(path: str, variable: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{variable}: cannot read {path}: {exc.strerror}") from None
    if not text:
        raise ConfigError(f"{variable}: {path} is empty")
    return text


def client_token(environ: Mapping[str, str] | None = None) -> str | None:
    """A client's own token: ``MICRO_TOKEN``, or the file ``MICRO_TOKEN_FILE`` names."""
    env = os.environ if environ is None else environ
    token = env.get("MICRO_TOKEN", "").strip()
    if token:
        return token
    path = env.get("MICRO_TOKEN_FILE", "")
    return _read_secret(path, "MICRO_TOKEN_FILE") if path else None


def forward_from_env(environ: Mapping[str, str] | None = None) -> bool:
    """``MICRO_AUTH_FORWARD``: whether a handler's calls forward its caller's token."""
    env = os.environ if environ is None else environ
    return env.get("MICRO_AUTH_FORWARD", "").strip().lower() in _TRUE


def from_env(
    environ: Mapping[str, str] | None = None, *, rules: Rules | None = None
) -> Auth | None:
    """The :class:`Auth` the environment configures, or ``None`` when it configures none.

    One key source: ``MICRO_AUTH_JWKS`` (an ``https://`` URL, ``http://`` only to a loopback
    address, or a file),
    ``MICRO_AUTH_PUBLIC_KEY_FILE`` (PEM: RSA, EC or Ed25519) or ``MICRO_AUTH_SECRET_FILE``
    (HS256; ``MICRO_AUTH_SECRET`` holds the secret itself). Optional:
    ``MICRO_AUTH_ISSUER``, ``MICRO_AUTH_AUDIENCE``, ``MICRO_AUTH_REFLECTION``
    (``public`` / ``auth`` / ``off``) and ``MICRO_AUTH_RULES``
    (:func:`~micro.auth.rules.parse_rules`: ``Greeter.SayHello=public,Admin.*=admin``),
    added to ``rules``. A bad setting is a :class:`ConfigError`."""
    env = os.environ if environ is None else environ
    sources = {
        name: env[name]
        for name in (
            "MICRO_AUTH_JWKS",
            "MICRO_AUTH_PUBLIC_KEY_FILE",
            "MICRO_AUTH_SECRET_FILE",
            "MICRO_AUTH_SECRET",
        )
        if env.get(name, "").strip()
    }
    if not sources:
        return None
    if len(sources) > 1:
        raise ConfigError(f"set one of {', '.join(sorted(sources))}, not several")
    try:
        from micro.auth.jwt import JWTVerifier
    except ImportError:
        raise ConfigError(
            f"{next(iter(sources))} needs the JWT verifier: pip install 'micro-runtime[auth]'"
        ) from None
    ((name, value),) = sources.items()
    options: dict[str, Any] = {
        "issuer": env.get("MICRO_AUTH_ISSUER") or None,
        "audience": env.get("MICRO_AUTH_AUDIENCE") or None,
    }
    try:
        if name == "MICRO_AUTH_JWKS":
            verifier = JWTVerifier(jwks=value.strip(), **options)
        elif name == "MICRO_AUTH_PUBLIC_KEY_FILE":
            verifier = JWTVerifier(key=_read_secret(value, name), **options)
        elif name == "MICRO_AUTH_SECRET_FILE":
            verifier = JWTVerifier(secret=_read_secret(value, name), **options)
        else:
            verifier = JWTVerifier(secret=value.strip(), **options)
    except ConfigError:  # an unreadable file, already named
        raise
    except ValueError as exc:  # a short secret, a key that is none, a JWKS over http
        raise ConfigError(f"{name}: {exc}") from None
    reflection = env.get("MICRO_AUTH_REFLECTION", "").strip().lower() or "public"
    if reflection not in _REFLECTIONS:
        raise ConfigError(
            f"MICRO_AUTH_REFLECTION must be one of {', '.join(_REFLECTIONS)}, got {reflection!r}"
        )
    try:
        rules = parse_rules(env.get("MICRO_AUTH_RULES", ""), rules)
    except ValueError as exc:
        raise ConfigError(f"MICRO_AUTH_RULES: {exc}") from None
    return Auth(verifier, rules, reflection)
