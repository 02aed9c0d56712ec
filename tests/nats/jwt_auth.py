"""Decentralized (JWT) auth for a test nats-server, made at test time: an operator, a
system account and an application account (JetStream allowed), and a user's ``.creds``
file, as ``nsc`` would write them (nkeys Ed25519 keys; JWTs signed with them)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import nkeys  # type: ignore[import-untyped]

UNLIMITED = {
    "subs": -1,
    "data": -1,
    "payload": -1,
    "imports": -1,
    "exports": -1,
    "wildcards": True,
    "conn": -1,
    "leaf": -1,
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def keypair(prefix: int) -> tuple[bytes, Any, str]:
    seed = nkeys.encode_seed(os.urandom(32), prefix)
    pair = nkeys.from_seed(bytearray(seed))
    return seed, pair, pair.public_key.decode()


def jwt(signer: Any, issuer: str, subject: str, name: str, nats: dict[str, Any]) -> str:
    claims: dict[str, Any] = {
        "iat": int(time.time()),
        "iss": issuer,
        "name": name,
        "sub": subject,
        "nats": nats,
    }
    digest = hashlib.sha256(json.dumps(claims, sort_keys=True).encode()).digest()
    claims["jti"] = base64.b32encode(digest).decode().rstrip("=")
    head = _b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    body = _b64(json.dumps(claims).encode())
    signature = signer.sign(f"{head}.{body}".encode())
    return f"{head}.{body}.{_b64(signature)}"


def creds(path: Path, user_jwt: str, seed: bytes) -> Path:
    path.write_text(
        f"-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n"
        f"-----BEGIN USER NKEY SEED-----\n{seed.decode()}\n------END USER NKEY SEED------\n"
    )
    path.chmod(0o600)
    return path


def operator_setup(directory: Path) -> tuple[str, Path, Path]:
    """(server configuration, a valid user's .creds, a .creds signed by an unknown
    account)."""
    _, operator, op_pub = keypair(nkeys.PREFIX_BYTE_OPERATOR)
    _, account, acc_pub = keypair(nkeys.PREFIX_BYTE_ACCOUNT)
    _, _, sys_pub = keypair(nkeys.PREFIX_BYTE_ACCOUNT)
    _, stranger, stranger_pub = keypair(nkeys.PREFIX_BYTE_ACCOUNT)
    op_jwt = jwt(operator, op_pub, op_pub, "op", {"type": "operator", "version": 2})
    limits = {**UNLIMITED, "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1}
    acc_jwt = jwt(
        operator, op_pub, acc_pub, "app", {"limits": limits, "type": "account", "version": 2}
    )
    sys_jwt = jwt(
        operator, op_pub, sys_pub, "SYS", {"limits": UNLIMITED, "type": "account", "version": 2}
    )
    user = {"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1}
    user_claims = {**user, "type": "user", "version": 2}
    seed, _, user_pub = keypair(nkeys.PREFIX_BYTE_USER)
    good = creds(directory / "user.creds", jwt(account, acc_pub, user_pub, "u", user_claims), seed)
    seed2, _, user2_pub = keypair(nkeys.PREFIX_BYTE_USER)
    bad_jwt = jwt(stranger, stranger_pub, user2_pub, "x", user_claims)
    bad = creds(directory / "stranger.creds", bad_jwt, seed2)
    config = (
        f'operator: "{op_jwt}"\nsystem_account: {sys_pub}\nresolver: MEMORY\n'
        f'resolver_preload: {{ {acc_pub}: "{acc_jwt}", {sys_pub}: "{sys_jwt}" }}\n'
    )
    return config, good, bad
