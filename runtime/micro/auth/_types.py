"""The account a verified token stands for, the verifier interface and its one error.

Imports nothing of micro, so :mod:`micro.context` can name :class:`Account` for
``context.account`` without an import circle."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = ["Account", "InvalidToken", "Verifier"]


@dataclass(frozen=True)
class Account:
    """Who a call comes from, as its verified token says (go-micro's ``auth.Account``).

    * ``id``: the subject (a JWT's ``sub``);
    * ``type``: ``"user"``, ``"service"``, ... (the ``type`` claim; ``"user"`` if absent);
    * ``issuer``: who issued the token (``iss``);
    * ``scopes``: what it may do (``scope``, space separated, or ``scopes``, a list);
    * ``metadata``: other string claims the issuer put under ``metadata``.
    """

    id: str
    type: str = "user"
    issuer: str = ""
    scopes: tuple[str, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)

    def has_scopes(self, *scopes: str) -> bool:
        """Whether the account holds every one of ``scopes``."""
        held = set(self.scopes)
        return all(scope in held for scope in scopes)


class InvalidToken(Exception):
    """A token that does not prove an account: malformed, badly signed, expired, from the
    wrong issuer or audience. Its message says why in one line and never holds the token
    (it reaches the caller as the detail of an UNAUTHENTICATED error)."""


@runtime_checkable
class Verifier(Protocol):
    """Turns a bearer token into the :class:`Account` it proves, or raises
    :class:`InvalidToken`. :class:`micro.auth.jwt.JWTVerifier` is the JWT one; anything
    with this method plugs in (an opaque-token lookup, a test double)."""

    async def verify(self, token: str) -> Account: ...
