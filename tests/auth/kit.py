"""Keys, tokens and a service that reports who called it, for the auth tests."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

import micro
from micro.auth.jwt import Generator
from tests.runtime.echo_kit import Echo, EchoReply, EchoRequest

SECRET = "s3cret-for-tests-only-0123456789abcdef"  # 32+ bytes, made up for the tests


def private_keys() -> dict[str, Any]:
    return {
        "RS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ES256": ec.generate_private_key(ec.SECP256R1()),
        "EdDSA": ed25519.Ed25519PrivateKey.generate(),
    }


def public_pem(key: Any) -> str:
    pem: bytes = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode()


def jwk(key: Any, kid: str) -> dict[str, Any]:
    """The public JWK of a private key, with its ``kid``."""
    algorithm: Any
    if isinstance(key, rsa.RSAPrivateKey):
        algorithm = jwt.algorithms.RSAAlgorithm
        alg = "RS256"
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        algorithm = jwt.algorithms.ECAlgorithm
        alg = "ES256"
    else:
        algorithm = jwt.algorithms.OKPAlgorithm
        alg = "EdDSA"
    data: dict[str, Any] = json.loads(algorithm.to_jwk(key.public_key()))
    return {**data, "kid": kid, "alg": alg, "use": "sig"}


def hs256(**options: Any) -> Generator:
    return Generator(secret=SECRET, **options)


class Whoami(Echo):
    """Echo that also answers with ``context.account``, and calls ``forward`` (an
    address) through its own client when asked."""

    def __init__(self, client: micro.Client | None = None) -> None:
        super().__init__()
        self.client = client
        self.accounts: list[micro.auth.Account | None] = []

    async def echo(self, request: EchoRequest, context: micro.Context) -> EchoReply:
        self.accounts.append(context.account)
        if request.forward:
            assert self.client is not None
            from tests.runtime.echo_kit import EchoClient

            inner: EchoReply = await EchoClient(address=request.forward, client=self.client).echo(
                EchoRequest(text=request.text)
            )
            return inner
        reply = await super().echo(request, context)
        account = context.account
        reply.metadata["account"] = account.id if account else "-"
        reply.metadata["scopes"] = " ".join(account.scopes) if account else "-"
        return reply


class JWKSServer:
    """A JWKS on http://127.0.0.1:PORT/jwks.json (https:// with ``tls``), counting its
    fetches; with ``redirect``, /jwks.json answers 302 to that URL instead."""

    def __init__(
        self,
        keys: list[dict[str, Any]],
        *,
        tls: ssl.SSLContext | None = None,
        redirect: str | None = None,
    ) -> None:
        self.keys = keys
        self.fetches = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.fetches += 1
                if redirect is not None and self.path == "/jwks.json":
                    self.send_response(302)
                    self.send_header("Location", redirect)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path not in ("/jwks.json", "/moved.json"):
                    self.send_error(404)
                    return
                body = json.dumps({"keys": owner.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        scheme = "http" if tls is None else "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}/jwks.json"

    @contextmanager
    def running(self) -> Iterator[JWKSServer]:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()
            thread.join()


def hand_signed(claims: dict[str, Any], secret: bytes, alg: str = "HS256") -> str:
    """An HS256 JWT signed by hand (pyjwt refuses a PEM as an HMAC secret: an attacker
    does not ask it)."""
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"
