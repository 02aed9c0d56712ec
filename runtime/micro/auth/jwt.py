"""JWT verification and issuing with pyjwt (the ``auth`` extra).

:class:`JWTVerifier` checks a token's signature with exactly one kind of key: an HS256
secret, a PEM public key (RSA: RS256/PS256 and their 384/512 twins; EC: ES256/384/512;
Ed25519/Ed448: EdDSA) or a JWKS, from an ``https://`` URL or a file. The algorithms a key
allows follow from the key itself, never from the token, so a token cannot choose
``none`` or sign with a public key as an HMAC secret. ``exp`` is required by default.

A JWKS is fetched on first use and kept ``jwks_ttl`` seconds; a token naming a ``kid``
the set lacks triggers one early re-fetch, at most every ``jwks_min_refresh`` seconds (so
forged ``kid`` values cannot make the service hammer the key server). A fetch takes at
most ``jwks_timeout`` seconds and reads at most ``max_jwks_bytes``; when one fails the
keys last fetched stay in use, and with none a call is answered UNAVAILABLE (at once for
a second after a failed fetch, so a down key server is not asked once per call).

:class:`Generator` issues tokens (tests, scripts, ``micro`` tooling; a real deployment
usually has an identity provider for that).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from micro import errors
from micro.auth._types import Account, InvalidToken

__all__ = ["Generator", "JWTVerifier", "account_from_claims", "algorithms_for"]

log = logging.getLogger("micro.auth")

HMAC = ("HS256", "HS384", "HS512")
RSA = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
EC = ("ES256", "ES384", "ES512")
EDDSA = ("EdDSA",)
#: seconds a JWKS that could not be loaded at all answers at once, before the next fetch
FAILED_FETCH_PAUSE = 1.0


def algorithms_for(key: Any) -> tuple[str, ...]:
    """The JWS algorithms a loaded public or private key can verify or sign."""
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return RSA
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        return EC
    if isinstance(
        key,
        ed25519.Ed25519PublicKey
        | ed25519.Ed25519PrivateKey
        | ed448.Ed448PublicKey
        | ed448.Ed448PrivateKey,
    ):
        return EDDSA
    raise ValueError(f"unsupported key type {type(key).__name__}: use RSA, EC or Ed25519")


def _public_key(pem: str | bytes) -> Any:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        return serialization.load_pem_public_key(data)
    except ValueError:
        raise ValueError("the key is not a PEM public key (-----BEGIN PUBLIC KEY-----)") from None


def account_from_claims(claims: Mapping[str, Any]) -> Account:
    """The :class:`Account` of verified claims (see :class:`micro.auth.Account`)."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise InvalidToken("token has no subject (sub)")
    scope = claims.get("scope", claims.get("scopes", ()))
    if isinstance(scope, str):
        scopes = tuple(scope.split())
    elif isinstance(scope, list | tuple) and all(isinstance(s, str) for s in scope):
        scopes = tuple(scope)
    else:
        raise InvalidToken("token scope is neither a string nor a list of strings")
    raw_meta = claims.get("metadata", {})
    metadata = (
        {str(k): v for k, v in raw_meta.items() if isinstance(v, str)}
        if isinstance(raw_meta, dict)
        else {}
    )
    kind = claims.get("type")
    issuer = claims.get("iss")
    return Account(
        id=subject,
        type=kind if isinstance(kind, str) and kind else "user",
        issuer=issuer if isinstance(issuer, str) else "",
        scopes=scopes,
        metadata=metadata,
    )


def _why(exc: jwt.PyJWTError) -> str:
    """One line about a rejected token; pyjwt's own messages are not shown."""
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "token expired"
    if isinstance(exc, jwt.ImmatureSignatureError):
        return "token not valid yet (nbf/iat in the future)"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "bad token signature"
    if isinstance(exc, jwt.InvalidAudienceError):
        return "token is for another audience"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "token is from another issuer"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"token lacks the {exc.claim!r} claim"
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return "token algorithm not allowed for this key"
    if isinstance(exc, jwt.DecodeError):
        return "malformed token"
    return "invalid token"


def redact_url(url: str) -> str:
    """``url`` without user info and query (what may hold a credential)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def _loopback(host: str | None) -> bool:
    """Whether ``host`` names this machine (where plain http cannot be intercepted)."""
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _SafeRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a JWKS redirect only to where the JWKS itself could be: https://, or plain
    http:// from a loopback http:// source to loopback. Never from https:// to http://,
    where the keys could be swapped on the way."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        new, old = urlsplit(newurl), urlsplit(req.full_url)
        if not (
            new.scheme == "https"
            or (new.scheme == old.scheme == "http" and _loopback(new.hostname))
        ):
            why = "from https://" if old.scheme == "https" else "off this machine"
            # the target is not named: its URL may carry a credential
            raise urllib.error.HTTPError(
                req.full_url, code, f"refused a redirect to {new.scheme}:// {why}", headers, fp
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _JWKS:
    """A key set from a URL or a file, cached and re-fetched within bounds."""

    def __init__(
        self,
        source: str,
        *,
        ttl: float,
        timeout: float,
        min_refresh: float,
        max_bytes: int,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        self._remote = source.startswith(("https://", "http://"))
        if source.startswith("http://") and not _loopback(urlsplit(source).hostname):
            raise ValueError(
                "a JWKS over plain http:// can be swapped on the way, and every token with "
                "it: use https:// or a file (http:// only to this machine's loopback)"
            )
        self._source = source
        self.label = redact_url(source) if self._remote else source
        self._ttl = ttl
        self._timeout = timeout
        self._min_refresh = min_refresh
        self._max_bytes = max_bytes
        self._ssl = ssl_context
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched = -float("inf")
        self._tried = -float("inf")
        self._lock = asyncio.Lock()
        self._failure: errors.Error | None = None

    def _read(self) -> bytes:
        if self._remote:
            request = urllib.request.Request(self._source, headers={"Accept": "application/json"})
            opener = urllib.request.build_opener(
                urllib.request.HTTPSHandler(context=self._ssl), _SafeRedirects()
            )
            with opener.open(request, timeout=self._timeout) as r:
                data: bytes = r.read(self._max_bytes + 1)
        else:
            with Path(self._source).open("rb") as f:
                data = f.read(self._max_bytes + 1)
        if len(data) > self._max_bytes:
            raise ValueError(f"larger than {self._max_bytes} bytes")
        return data

    def _parse(self, data: bytes) -> dict[str | None, jwt.PyJWK]:
        document = json.loads(data)
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError('not a JWKS (an object with "keys")')
        keys: dict[str | None, jwt.PyJWK] = {}
        for entry in document["keys"]:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            if entry.get("kty") == "oct":
                continue  # a published key set holds public keys, never HMAC secrets
            try:
                key = jwt.PyJWK(entry)
            except jwt.PyJWTError:
                continue  # an algorithm or curve this pyjwt does not know: skip it
            kid = entry.get("kid")
            keys[kid if isinstance(kid, str) else None] = key
        if not keys:
            raise ValueError("no usable signing key")
        return keys

    async def _refresh(self) -> None:
        async with self._lock:
            now = time.monotonic()
            if now - self._tried < self._min_refresh and self._keys:
                return  # fetched (or tried) just now, maybe by a concurrent call
            if self._failure is not None and now - self._tried < FAILED_FETCH_PAUSE:
                raise self._failure  # no keys, and a fetch failed just now: do not pile on
            self._tried = now
            try:
                async with asyncio.timeout(self._timeout + 1):
                    data = await asyncio.to_thread(self._read)
                self._keys = self._parse(data)
                self._fetched = time.monotonic()
                self._failure = None
            except (OSError, ValueError, TimeoutError, urllib.error.URLError) as exc:
                why = getattr(exc, "reason", None) or exc.__class__.__name__
                if isinstance(exc, ValueError):
                    why = str(exc)
                if not self._keys:
                    self._failure = errors.unavailable(
                        "micro.auth", f"cannot load the JWKS from {self.label}: {why}"
                    )
                    raise self._failure from None
                log.warning("JWKS %s: re-fetch failed (%s); keeping the last keys", self.label, why)

    async def key(self, kid: str | None) -> jwt.PyJWK:
        if time.monotonic() - self._fetched >= self._ttl:
            await self._refresh()
        found = self._pick(kid)
        if found is None and time.monotonic() - self._tried >= self._min_refresh:
            await self._refresh()  # a rotated key set
            found = self._pick(kid)
        if found is None:
            raise InvalidToken("token signed by a key the JWKS does not have")
        return found

    def _pick(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is not None:
            return self._keys.get(kid)
        if len(self._keys) == 1:
            return next(iter(self._keys.values()))
        return None


class JWTVerifier:
    """A :class:`micro.auth.Verifier` for JWTs; give exactly one of ``secret``, ``key``
    (PEM text, or a loaded ``cryptography`` public key) and ``jwks`` (URL or file).

    ``issuer`` / ``audience``: required values of ``iss`` / ``aud`` (``None``: not
    checked, but a token that names an audience is then refused); ``require``: claims a
    token must have; ``leeway``: seconds of clock skew allowed on ``exp`` and ``nbf``."""

    def __init__(
        self,
        *,
        secret: str | bytes | None = None,
        key: Any = None,
        jwks: str | None = None,
        issuer: str | None = None,
        audience: str | Iterable[str] | None = None,
        algorithms: Iterable[str] | None = None,
        require: Iterable[str] = ("exp", "sub"),
        leeway: float = 0.0,
        jwks_ttl: float = 300.0,
        jwks_timeout: float = 5.0,
        jwks_min_refresh: float = 30.0,
        max_jwks_bytes: int = 1 << 20,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        given = [name for name, v in (("secret", secret), ("key", key), ("jwks", jwks)) if v]
        if len(given) != 1:
            raise ValueError("JWTVerifier takes exactly one of secret=, key= and jwks=")
        self._key: Any = None
        self._jwks: _JWKS | None = None
        allowed: tuple[str, ...]
        if secret:
            self._key = secret.encode() if isinstance(secret, str) else secret
            if len(self._key) < 32:
                raise ValueError("an HS256 secret needs at least 32 bytes")
            allowed = HMAC
        elif key is not None and key != "":
            self._key = _public_key(key) if isinstance(key, str | bytes) else key
            allowed = algorithms_for(self._key)
        else:
            assert jwks is not None
            self._jwks = _JWKS(
                jwks,
                ttl=jwks_ttl,
                timeout=jwks_timeout,
                min_refresh=jwks_min_refresh,
                max_bytes=max_jwks_bytes,
                ssl_context=ssl_context,
            )
            allowed = (*RSA, *EC, *EDDSA)
        if algorithms is not None:
            wanted = tuple(algorithms)
            stray = [a for a in wanted if a not in allowed]
            if stray:
                raise ValueError(f"algorithms {stray} do not fit this key (it allows {allowed})")
            allowed = wanted
        self._algorithms = list(allowed)
        self._issuer = issuer
        self._audience = [audience] if isinstance(audience, str) else audience
        if self._audience is not None:
            self._audience = list(self._audience)
        self._require = list(require)
        self._leeway = leeway

    async def verify(self, token: str) -> Account:
        key: Any = self._key
        algorithms = self._algorithms
        try:
            if self._jwks is not None:
                header = jwt.get_unverified_header(token)
                kid = header.get("kid")
                jwk = await self._jwks.key(kid if isinstance(kid, str) else None)
                key = jwk.key
                if jwk.algorithm_name not in algorithms:
                    raise InvalidToken("token algorithm not allowed for this key")
                algorithms = [jwk.algorithm_name]
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
                options={"require": self._require, "verify_aud": self._audience is not None},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(_why(exc)) from None
        return account_from_claims(claims)

    def __repr__(self) -> str:  # never the key
        source = f"jwks={self._jwks.label!r}" if self._jwks is not None else "key=..."
        return f"JWTVerifier({source}, issuer={self._issuer!r}, audience={self._audience!r})"


class Generator:
    """Issues signed tokens: ``secret`` (HS256) or ``key`` (a PEM private key, or a loaded
    one; the algorithm defaults to the first the key allows: RS256, ES256, EdDSA).
    ``kid`` goes into the header, for verifiers with a JWKS."""

    def __init__(
        self,
        *,
        secret: str | bytes | None = None,
        key: Any = None,
        algorithm: str | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        kid: str | None = None,
    ) -> None:
        if (secret is None) == (key is None):
            raise ValueError("Generator takes exactly one of secret= and key=")
        if secret is not None:
            self._key: Any = secret.encode() if isinstance(secret, str) else secret
            if len(self._key) < 32:
                raise ValueError("an HS256 secret needs at least 32 bytes")
            self._algorithm = algorithm or "HS256"
        else:
            if isinstance(key, str | bytes):
                data = key.encode() if isinstance(key, str) else key
                key = serialization.load_pem_private_key(data, password=None)
            self._key = key
            self._algorithm = algorithm or algorithms_for(key)[0]
        self._issuer = issuer
        self._audience = audience
        self._kid = kid

    def token(
        self,
        subject: str,
        *,
        scopes: Iterable[str] = (),
        type: str = "user",
        metadata: Mapping[str, str] | None = None,
        ttl: float = 3600.0,
        claims: Mapping[str, Any] | None = None,
    ) -> str:
        """A token for ``subject`` valid ``ttl`` seconds (a negative ``ttl``: expired)."""
        now = int(time.time())
        payload: dict[str, Any] = {
            "sub": subject,
            "type": type,
            "iat": now,
            "exp": now + int(ttl),
        }
        if scopes:
            payload["scope"] = " ".join(scopes)
        if metadata:
            payload["metadata"] = dict(metadata)
        if self._issuer is not None:
            payload["iss"] = self._issuer
        if self._audience is not None:
            payload["aud"] = self._audience
        payload.update(claims or {})
        headers = {"kid": self._kid} if self._kid is not None else None
        return jwt.encode(payload, self._key, algorithm=self._algorithm, headers=headers)
