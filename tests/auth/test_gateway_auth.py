"""`micro api` with auth in front of a `library` service with auth, each its own process:
the gateway answers 401/403 itself before calling, the service still checks its own rules,
and no token reaches a log."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.auth.kit import SECRET, hs256
from tests.gateway.procs import Gateway, Procs

pytestmark = pytest.mark.timeout(120)


@dataclass
class AuthProcs(Procs):
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {**super().env, **self.extra}


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Gateway, Gateway, list[AuthProcs]]]:
    base = tmp_path_factory.mktemp("gateway-auth")
    secret = base / "secret"
    secret.write_text(SECRET)
    common = {"MICRO_AUTH_SECRET_FILE": str(secret), "MICRO_TOKEN": ""}
    service_rules = "Library.ListBooks=public,Library.DeleteBook=library.admin"
    services = AuthProcs(base / "registry.db", extra={**common, "MICRO_AUTH_RULES": service_rules})
    services.service("library", "a")
    gateways = AuthProcs(
        base / "registry.db",
        extra={
            **common,
            # the gateway's own rules: one the service does not have, none for DeleteBook
            "MICRO_AUTH_RULES": "Library.ListBooks=public,Library.GetTitle=gateway.only",
        },
    )
    started = gateways.gateway()
    # a gateway without rules of its own, holding a token for reflection behind auth
    lender = AuthProcs(base / "registry.db", extra={"MICRO_TOKEN": hs256().token("gateway")})
    lending = lender.gateway()
    yield started, lending, [services, gateways, lender]
    assert started.proc.terminate() == 0
    for procs in (services, gateways, lender):
        procs.stop_all()


def error(response: httpx.Response, code: int, id: str) -> str:
    assert response.status_code == code, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert (body["code"], body["id"]) == (code, id), body
    detail: str = body["detail"]
    return detail


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_gateway_enforces_the_rules_before_calling(
    gateway: tuple[Gateway, Gateway, list[AuthProcs]],
) -> None:
    started, _, procs = gateway
    reader = hs256().token("ada", scopes=["library.read"])
    expired = hs256().token("ada", ttl=-30)
    special = hs256().token("gus", scopes=["gateway.only"])
    admin = hs256().token("root", scopes=["library.admin"])
    with started.client() as http:
        assert http.get("/v1/shelves/1/books").status_code == 200  # public
        answer = http.get("/v1/shelves/1/books/2")
        assert error(answer, 401, "micro.api") == (
            "Library.GetBook: no token (send 'authorization: Bearer <token>')"
        )
        assert answer.headers["www-authenticate"] == "Bearer"
        got = http.get("/v1/shelves/1/books/2", headers=auth(expired))
        assert error(got, 401, "micro.api") == "Library.GetBook: token expired"
        assert http.get("/v1/shelves/1/books/2", headers=auth(reader)).status_code == 200
        # a gateway rule: refused before the service is called
        got = http.get("/v1/shelves/1/books/2/title", headers=auth(reader))
        assert "needs scopes 'gateway.only'" in error(got, 403, "micro.api")
        assert http.get("/v1/shelves/1/books/2/title", headers=auth(special)).status_code == 200
        # a service rule the gateway does not have: the service refuses (its own id)
        got = http.delete("/v1/shelves/1/books/2", headers=auth(reader))
        assert "needs scopes 'library.admin'" in error(got, 403, "library")
        assert http.delete("/v1/shelves/1/books/2", headers=auth(admin)).status_code == 200
        # identity cannot be forged through the metadata prefix
        forged = {"Micro-Meta-Authorization": f"Bearer {admin}", **auth(reader)}
        got = http.delete("/v1/shelves/1/books/2", headers=forged)
        assert admin not in error(got, 400, "micro.api")
    logs = started.proc.log + "".join(p.log for ps in procs for p in ps.started)
    for token in (reader, expired, special, admin, SECRET):
        assert token not in logs


def test_the_gateway_never_lends_its_own_token_to_a_request(
    gateway: tuple[Gateway, Gateway, list[AuthProcs]],
) -> None:
    _, lending, _ = gateway
    with lending.client() as http:
        got = http.get("/v1/shelves/1/books/2")
        assert "no token" in error(got, 401, "library")  # the service refused: none was sent
        reader = hs256().token("ada")
        assert http.get("/v1/shelves/1/books/2", headers=auth(reader)).status_code == 200


def test_a_bad_auth_setting_stops_micro_api_with_a_usage_error(tmp_path: Path) -> None:
    import subprocess

    from micro.cli import exits
    from tests.tooling.helpers import BIN, ROOT

    procs = AuthProcs(tmp_path / "registry.db", extra={"MICRO_AUTH_SECRET_FILE": "/nonexistent"})
    result = subprocess.run(
        [str(BIN / "micro"), "api", "--address", "127.0.0.1:0"],
        env=procs.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == exits.EXIT_USAGE, result.stderr
    assert (
        result.stderr.strip()
        == "Error: MICRO_AUTH_SECRET_FILE: cannot read /nonexistent: No such file or directory"
    )
