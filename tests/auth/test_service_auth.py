"""A service with auth, called over gRPC on 127.0.0.1: tokens, rules, accounts, keys."""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import trustme

import micro
from micro._config import ConfigError
from micro.auth import Auth, Rules
from micro.auth import from_env as auth_from_env
from micro.auth.jwt import Generator, JWTVerifier
from micro.health import HEALTH_CHECK, HealthCheckRequest
from micro.status import Status
from tests.auth.kit import (
    SECRET,
    JWKSServer,
    Whoami,
    hand_signed,
    hs256,
    jwk,
    private_keys,
    public_pem,
)
from tests.runtime.echo_kit import ECHO_SPEC, EchoClient, EchoRequest, serving

pytestmark = pytest.mark.timeout(60)


def rules() -> Rules:
    rules = Rules()
    rules.public("Echo.Count")
    rules.grant("Echo.Collect", scopes=["echo.admin"])
    return rules


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def rejected(call: Any, status: Status) -> micro.Error:
    with pytest.raises(micro.Error) as info:
        await call
    assert info.value.grpc_status is status, info.value
    return info.value


@pytest.fixture
async def service() -> AsyncIterator[micro.Service]:
    auth = Auth(JWTVerifier(secret=SECRET, issuer="tests"), rules())
    async with serving(Whoami(), auth=auth) as svc:
        yield svc


@pytest.fixture
async def stub(service: micro.Service) -> AsyncIterator[EchoClient]:
    async with micro.Client(registry=service.registry, token="") as client:
        yield EchoClient("echo", client=client)


async def test_a_valid_token_passes_and_its_account_is_on_the_context(stub: EchoClient) -> None:
    token = hs256(issuer="tests").token("ada", scopes=["echo.read"], metadata={"team": "x"})
    reply = await stub.echo(EchoRequest(text="hi"), metadata=bearer(token))
    assert reply.text == "hi"
    assert (reply.metadata["account"], reply.metadata["scopes"]) == ("ada", "echo.read")


async def test_missing_expired_and_badly_signed_tokens_are_unauthenticated(
    stub: EchoClient,
) -> None:
    error = await rejected(stub.echo(EchoRequest(text="x")), Status.UNAUTHENTICATED)
    assert (error.id, error.code) == ("echo", 401)
    assert "no token" in error.detail
    expired = hs256(issuer="tests").token("ada", ttl=-60)
    error = await rejected(
        stub.echo(EchoRequest(), metadata=bearer(expired)), Status.UNAUTHENTICATED
    )
    assert error.detail == "Echo.Echo: token expired"
    forged = Generator(secret="another-secret-of-the-same-length-000000", issuer="tests").token(
        "ada"
    )
    error = await rejected(
        stub.echo(EchoRequest(), metadata=bearer(forged)), Status.UNAUTHENTICATED
    )
    assert error.detail == "Echo.Echo: bad token signature"
    other = hs256(issuer="elsewhere").token("ada")
    error = await rejected(stub.echo(EchoRequest(), metadata=bearer(other)), Status.UNAUTHENTICATED)
    assert error.detail == "Echo.Echo: token is from another issuer"
    for value in ("Basic YWRhOnB3", "Bearer", "Bearer not.a.jwt"):
        await rejected(
            stub.echo(EchoRequest(), metadata={"authorization": value}), Status.UNAUTHENTICATED
        )
    good = hs256(issuer="tests").token("ada")
    twice = [("authorization", f"Bearer {good}"), ("authorization", f"Bearer {forged}")]
    error = await rejected(stub.echo(EchoRequest(), metadata=twice), Status.UNAUTHENTICATED)
    assert "more than one" in error.detail


async def test_a_missing_scope_is_permission_denied(stub: EchoClient) -> None:
    reader = hs256(issuer="tests").token("ada", scopes=["echo.read"])
    error = await rejected(
        stub.collect([EchoRequest(text="a")], metadata=bearer(reader)), Status.PERMISSION_DENIED
    )
    assert (error.code, error.detail) == (
        403,
        "Echo.Collect needs scopes 'echo.admin'; account 'ada' lacks 'echo.admin'",
    )
    admin = hs256(issuer="tests").token("root", scopes=["echo.admin", "echo.read"])
    reply = await stub.collect([EchoRequest(text="a")], metadata=bearer(admin))
    assert reply.text == "a"


async def test_streaming_endpoints_are_guarded_too(stub: EchoClient) -> None:
    async with stub.chat() as chat:
        with pytest.raises(micro.Error) as info:
            await chat.send(EchoRequest(text="x"))
            await chat.recv()
    assert info.value.grpc_status is Status.UNAUTHENTICATED
    token = hs256(issuer="tests").token("ada")
    async with stub.chat(metadata=bearer(token)) as chat:
        await chat.send(EchoRequest(text="x"))
        answer = await chat.recv()
        assert answer is not None and answer.text == "echo: x"


async def test_public_endpoints_and_health_need_no_token(
    service: micro.Service, stub: EchoClient
) -> None:
    assert [r.index async for r in stub.count(EchoRequest(count=2))] == [0, 1]
    # a stale token on a public endpoint does not turn it away
    stale = bearer(hs256(issuer="tests").token("ada", ttl=-60))
    assert [r.index async for r in stub.count(EchoRequest(count=1), metadata=stale)] == [0]
    async with micro.Client(registry=service.registry, token="") as client:
        answer = await client.unary(HEALTH_CHECK, HealthCheckRequest(), service="echo")
        assert answer.status == 1  # SERVING


async def reflection_names(client: micro.Client, address: str) -> list[str]:
    from micro.dynamic import Reflection, Target

    reflection = Reflection(client, Target(address=address), timeout=5)
    try:
        return await reflection.list_services()
    finally:
        await reflection.close()


@pytest.mark.parametrize("setting", ["public", "auth", "off"])
async def test_reflection_is_public_by_default_and_can_need_a_token_or_be_off(
    setting: str,
) -> None:
    auth = Auth(JWTVerifier(secret=SECRET), reflection=setting)  # type: ignore[arg-type]
    token = hs256().token("ada")
    async with (
        serving(Whoami(), auth=auth) as svc,
        micro.Client(registry=svc.registry, token="") as anonymous,
        micro.Client(registry=svc.registry, token=token) as member,
    ):
        if setting == "public":
            assert "test.v1.Echo" in await reflection_names(anonymous, svc.address)
        elif setting == "auth":
            await rejected(reflection_names(anonymous, svc.address), Status.UNAUTHENTICATED)
            assert "test.v1.Echo" in await reflection_names(member, svc.address)
        else:
            from micro.dynamic import Unreachable

            with pytest.raises(Unreachable, match="does not serve gRPC reflection"):
                await reflection_names(member, svc.address)


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA"])
async def test_asymmetric_keys_verify_and_refuse_algorithm_confusion(algorithm: str) -> None:
    key = private_keys()[algorithm]
    verifier = JWTVerifier(key=public_pem(key))
    async with (
        serving(Whoami(), auth=Auth(verifier)) as svc,
        micro.Client(registry=svc.registry, token="") as client,
    ):
        stub = EchoClient("echo", client=client)
        token = Generator(key=key).token("svc-a", type="service")
        reply = await stub.echo(EchoRequest(text="k"), metadata=bearer(token))
        assert reply.metadata["account"] == "svc-a"
        # the public key used as an HMAC secret: the classic confusion attack
        claims = {"sub": "mallory", "exp": 2**31}
        confused = hand_signed(claims, public_pem(key).encode())
        error = await rejected(
            stub.echo(EchoRequest(), metadata=bearer(confused)), Status.UNAUTHENTICATED
        )
        assert "algorithm not allowed" in error.detail
        none: Any = None
        unsigned = jwt.encode(claims, none, algorithm="none")
        await rejected(stub.echo(EchoRequest(), metadata=bearer(unsigned)), Status.UNAUTHENTICATED)


async def test_a_jwks_file_verifies_tokens_by_kid(tmp_path: Path) -> None:
    keys = private_keys()
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk(k, alg) for alg, k in keys.items()]}))
    async with (
        serving(Whoami(), auth=Auth(JWTVerifier(jwks=str(path)))) as svc,
        micro.Client(registry=svc.registry, token="") as client,
    ):
        stub = EchoClient("echo", client=client)
        for alg, key in keys.items():
            token = Generator(key=key, kid=alg).token(f"by-{alg}")
            reply = await stub.echo(EchoRequest(), metadata=bearer(token))
            assert reply.metadata["account"] == f"by-{alg}"
        stranger = Generator(key=private_keys()["ES256"], kid="ES256").token("mallory")
        error = await rejected(
            stub.echo(EchoRequest(), metadata=bearer(stranger)), Status.UNAUTHENTICATED
        )
        assert error.detail == "Echo.Echo: bad token signature"


async def test_a_jwks_over_http_is_cached_and_refetched_for_a_new_kid_within_bounds() -> None:
    first, second = private_keys()["RS256"], private_keys()["ES256"]
    jwks = JWKSServer([jwk(first, "k1")])
    with jwks.running():
        verifier = JWTVerifier(jwks=jwks.url, jwks_min_refresh=0.0)
        async with (
            serving(Whoami(), auth=Auth(verifier)) as svc,
            micro.Client(registry=svc.registry, token="") as client,
        ):
            stub = EchoClient("echo", client=client)
            for _ in range(3):
                token = Generator(key=first, kid="k1").token("ada")
                assert (await stub.echo(EchoRequest(), metadata=bearer(token))).metadata[
                    "account"
                ] == "ada"
            assert jwks.fetches == 1  # cached
            jwks.keys.append(jwk(second, "k2"))  # rotation: a new key appears
            token = Generator(key=second, kid="k2").token("bob")
            assert (await stub.echo(EchoRequest(), metadata=bearer(token))).metadata[
                "account"
            ] == "bob"
            assert jwks.fetches == 2
    # with the bound, forged kids cost at most one fetch per interval
    jwks = JWKSServer([jwk(first, "k1")])
    with jwks.running():
        verifier = JWTVerifier(jwks=jwks.url, jwks_min_refresh=3600)
        for n in range(5):
            forged = Generator(key=second, kid=f"forged-{n}").token("mallory")
            with pytest.raises(micro.auth.InvalidToken, match="key the JWKS does not have"):
                await verifier.verify(forged)
        assert jwks.fetches == 1


@pytest.mark.parametrize("url", ["http://idp.example/jwks.json", "http://10.0.0.7/jwks.json"])
def test_a_jwks_over_plain_http_off_this_machine_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="use https:// or a file"):
        JWTVerifier(jwks=url)
    JWTVerifier(jwks="http://[::1]:9/jwks.json")  # loopback: nobody on the way
    JWTVerifier(jwks="https://idp.example/jwks.json")
    with pytest.raises(ConfigError, match=r"^MICRO_AUTH_JWKS: a JWKS over plain http://"):
        auth_from_env({"MICRO_AUTH_JWKS": url})


async def test_a_jwks_redirect_never_leaves_https() -> None:
    key = private_keys()["RS256"]
    token = Generator(key=key, kid="k1").token("ada")
    ca = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_tls)
    client_tls = ssl.create_default_context()
    ca.configure_trust(client_tls)
    plain = JWKSServer([jwk(key, "k1")])
    with plain.running():
        # https -> http: refused before anything is fetched over plain http
        moved = plain.url.replace("http://", "http://user:hunter2@")
        with JWKSServer([], tls=server_tls, redirect=moved).running() as secure:
            verifier = JWTVerifier(jwks=secure.url, ssl_context=client_tls)
            with pytest.raises(micro.Error) as info:
                await verifier.verify(token)
        assert info.value.grpc_status is Status.UNAVAILABLE
        assert info.value.detail == (
            f"cannot load the JWKS from {secure.url}: refused a redirect to http:// from https://"
        )
        assert "hunter2" not in str(info.value)
        assert (secure.fetches, plain.fetches) == (1, 0)
        # loopback http -> http off this machine: refused the same way, nothing sent there
        with JWKSServer([], redirect="http://192.0.2.1/jwks.json").running() as local:
            with pytest.raises(micro.Error, match="refused a redirect to http:// off this"):
                await JWTVerifier(jwks=local.url).verify(token)
    # https -> https is followed
    with JWKSServer([jwk(key, "k1")], tls=server_tls).running() as target:
        new_home = target.url.replace("/jwks.json", "/moved.json")
        with JWKSServer([], tls=server_tls, redirect=new_home).running() as secure:
            account = await JWTVerifier(jwks=secure.url, ssl_context=client_tls).verify(token)
    assert account.id == "ada"
    assert target.fetches == 1


async def test_an_unreachable_jwks_is_unavailable_and_names_no_credentials() -> None:
    jwks = JWKSServer([])
    url = jwks.url.replace("http://", "http://user:hunter2@") + "?key=topsecret"
    jwks.server.server_close()  # nothing listens there any more
    verifier = JWTVerifier(jwks=url, jwks_timeout=2)
    token = Generator(key=private_keys()["RS256"], kid="k1").token("ada")
    with pytest.raises(micro.Error) as info:
        await verifier.verify(token)
    assert info.value.grpc_status is Status.UNAVAILABLE
    assert "cannot load the JWKS from http://127.0.0.1:" in info.value.detail
    assert "hunter2" not in str(info.value) and "topsecret" not in str(info.value)
    # right after a failed fetch, the next call is answered at once, with no new fetch
    with pytest.raises(micro.Error) as again:
        await verifier.verify(token)
    assert again.value is info.value


async def test_the_callers_token_is_forwarded_only_when_configured() -> None:
    downstream_auth = Auth(JWTVerifier(secret=SECRET))
    user = hs256().token("ada")
    own = hs256().token("frontend", type="service")
    for forward, expected in ((False, "frontend"), (True, "ada")):
        async with (
            serving(Whoami(), name="backend", auth=downstream_auth) as backend,
            micro.Client(registry=backend.registry, token=own, forward_token=forward) as inner,
            serving(Whoami(inner), name="frontend", auth=downstream_auth) as frontend,
            micro.Client(registry=frontend.registry, token="") as outer,
        ):
            reply = await EchoClient("frontend", client=outer).echo(
                EchoRequest(text="x", forward=backend.address), metadata=bearer(user)
            )
            assert reply.metadata["account"] == expected
    # without a token of its own and without forwarding, the inner call has none
    async with (
        serving(Whoami(), name="backend", auth=downstream_auth) as backend,
        micro.Client(registry=backend.registry, token="") as inner,
        serving(Whoami(inner), name="frontend", auth=downstream_auth) as frontend,
        micro.Client(registry=frontend.registry, token=user) as outer,
    ):
        await rejected(
            EchoClient("frontend", client=outer).echo(EchoRequest(forward=backend.address)),
            Status.UNAUTHENTICATED,
        )


@pytest.mark.parametrize("wire", ["grpcio", "grpclib"])
async def test_tokens_never_reach_logs_or_errors(
    wire: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Every record at DEBUG, the transports' libraries' included (hpack dumps headers)."""
    from micro.transport import GrpcioTransport
    from micro.transport.grpclib_impl import GrpclibTransport

    transport = GrpcioTransport() if wire == "grpcio" else GrpclibTransport()
    caplog.set_level(logging.DEBUG)
    auth = Auth(JWTVerifier(secret=SECRET, issuer="tests"), rules())
    tokens = [
        hs256(issuer="tests").token("ada", ttl=-5),
        hs256(issuer="other").token("ada"),
        Generator(secret="x" * 40, issuer="tests").token("ada"),
        hs256(issuer="tests").token("ada", scopes=["nope"]),
        "garbage-token-value-1234",
    ]
    texts: list[str] = []
    async with (
        serving(Whoami(), auth=auth, transport=transport) as svc,
        micro.Client(registry=svc.registry, token="", transport=transport) as client,
    ):
        stub = EchoClient("echo", client=client)
        failures = 0
        for token in tokens:
            for method in (stub.echo, stub.collect):
                request: Any = EchoRequest() if method == stub.echo else [EchoRequest()]
                try:
                    await method(request, metadata=bearer(token))
                except micro.Error as exc:
                    failures += 1
                    texts += [str(exc), repr(exc), exc.detail]
        assert failures == 9  # all but the right-issuer token on Echo.Echo
        texts.append(repr(client))
    texts.append(repr(auth.verifier))
    texts += [record.getMessage() for record in caplog.records]
    for token in [*tokens, SECRET]:
        assert not any(token in text for text in texts), token


async def test_environment_configuration(tmp_path: Path) -> None:
    from micro.auth import client_token, forward_from_env, from_env

    assert from_env({}) is None
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    env = {
        "MICRO_AUTH_SECRET_FILE": str(secret),
        "MICRO_AUTH_ISSUER": "tests",
        "MICRO_AUTH_RULES": "Echo.Echo=public, Echo.Count=auth, Echo.C*=echo.admin echo.x",
        "MICRO_AUTH_REFLECTION": "off",
    }
    auth = from_env(env)
    assert auth is not None and auth.reflection == "off"
    assert await auth.verifier.verify(hs256(issuer="tests").token("ada")) == micro.auth.Account(
        id="ada", issuer="tests"
    )
    echo, count, collect = ECHO_SPEC.methods[:3]
    assert auth.rules.find("echo", echo).public
    assert auth.rules.find("echo", count) == micro.auth.Rule("Echo.Count")
    assert auth.rules.find("echo", collect).scopes == ("echo.admin", "echo.x")
    with pytest.raises(micro.ConfigError, match=r"MICRO_AUTH_RULES: rule 'Echo\.Echo' is not"):
        from_env({**env, "MICRO_AUTH_RULES": "Echo.Echo"})
    with pytest.raises(micro.ConfigError, match="set one of"):
        from_env({**env, "MICRO_AUTH_JWKS": "https://idp.test/jwks.json"})
    with pytest.raises(micro.ConfigError, match="MICRO_AUTH_REFLECTION must be one of"):
        from_env({**env, "MICRO_AUTH_REFLECTION": "sometimes"})
    with pytest.raises(micro.ConfigError, match="cannot read"):
        from_env({"MICRO_AUTH_SECRET_FILE": str(tmp_path / "missing")})
    token_file = tmp_path / "token"
    token_file.write_text("tok-from-file\n")
    assert client_token({"MICRO_TOKEN_FILE": str(token_file)}) == "tok-from-file"
    assert client_token({"MICRO_TOKEN": "t1", "MICRO_TOKEN_FILE": str(token_file)}) == "t1"
    assert client_token({}) is None
    assert forward_from_env({"MICRO_AUTH_FORWARD": "1"}) and not forward_from_env({})


async def test_a_service_reads_its_auth_and_a_client_its_token_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SECRET)
    monkeypatch.setenv("MICRO_AUTH_SECRET_FILE", str(secret))
    monkeypatch.setenv("MICRO_TOKEN", hs256().token("from-env"))
    async with serving(Whoami()) as svc, micro.Client(registry=svc.registry) as client:
        assert svc.auth is not None
        reply = await EchoClient("echo", client=client).echo(EchoRequest())
        assert reply.metadata["account"] == "from-env"
        async with micro.Client(registry=svc.registry, token="") as anonymous:
            await rejected(
                EchoClient("echo", client=anonymous).echo(EchoRequest()), Status.UNAUTHENTICATED
            )
    async with serving(Whoami(), auth=False) as svc:
        assert svc.auth is None
