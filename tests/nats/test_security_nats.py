"""Discovery that cannot be poisoned, against real nats-servers configured at test time:
permissions (only services write the registry bucket), passwords and tokens, TLS with
client certificates (made with trustme), signed records and bounded leases."""

from __future__ import annotations

import json
import logging
import os
import ssl
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import nkeys  # type: ignore[import-untyped]
import pytest
import trustme

import micro
from golden.streaming.v1 import EchoRequest
from golden.streaming.v1.streaming_micro import StreamerClient
from micro._nats import NatsOptions, redact_url
from micro.broker import BrokerError, Message
from micro.broker.nats import NatsBroker
from micro.registry import Node, NotFound, RegistryError, ServiceRecord, from_env
from micro.registry.nats import DEFAULT_BUCKET, NatsRegistry, node_key
from tests.cluster import ROOT
from tests.gateway.procs import Procs
from tests.nats.jwt_auth import operator_setup
from tests.nats.server import NatsServer, free_port
from tests.runtime.procs import nodes
from tests.waiting import eventually, eventually_sync

SECRET = "s3cr3t-pa55word-never-shown"
KEY = "deployment-key-0123456789abcdef"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def record(name: str, node: str = "n1", port: int = 1) -> ServiceRecord:
    return ServiceRecord(name, "1.0", (Node(node, f"127.0.0.1:{port}"),))


def documented_permissions() -> str:
    """The permission setup docs/security.md shows, with this test's passwords."""
    text = (ROOT / "docs" / "security.md").read_text()
    block = text.split("<!-- nats-permissions -->", 1)[1].split("```", 2)[1]
    return block.replace("SERVICE_PASSWORD", SECRET).replace("CLIENT_PASSWORD", SECRET)


# Services may write the registry bucket; clients may only read it.
PERMISSIONS = documented_permissions()


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "store", config=PERMISSIONS)
    server.start()
    yield server
    server.kill()


def with_user(url: str, user: str, password: str = SECRET) -> str:
    return url.replace("nats://", f"nats://{user}:{password}@")


async def test_only_services_may_register_and_clients_still_read(guarded: NatsServer) -> None:
    name = unique("perm")
    async with NatsRegistry(with_user(guarded.url, "service")) as service:
        await service.register(record(name))
        async with NatsRegistry(with_user(guarded.url, "client")) as client:
            found = await client.get_service(name)
            assert [n.id for r in found for n in r.nodes] == ["n1"]
            started = time.monotonic()
            with pytest.raises(RegistryError) as info:
                await client.register(record(name, "rogue", 2))
            assert time.monotonic() - started < 3  # the refusal, not a timeout
            message = str(info.value)
            assert "not permitted to register" in message
            assert "$KV.micro_registry" in message and SECRET not in message
            with pytest.raises(RegistryError, match="not permitted to deregister"):
                await client.deregister(record(name))
        assert [n.id for r in await service.get_service(name) for n in r.nodes] == ["n1"]


async def test_wrong_password_is_an_authorization_failure_without_the_password(
    guarded: NatsServer,
) -> None:
    url = with_user(guarded.url, "service", "wrong-" + SECRET)
    registry = NatsRegistry(url, connect_timeout=5)
    assert SECRET not in registry.address and SECRET not in repr(registry)
    with pytest.raises(RegistryError) as info:
        await registry.list_services()
    message = str(info.value)
    assert "authorization failed" in message and "cannot reach" not in message
    assert SECRET not in message and "service:***@" in message
    await registry.close()
    broker = NatsBroker(url, connect_timeout=5)
    with pytest.raises(BrokerError) as broken:
        await broker.publish(Message("t", b"x"))
    assert "authorization failed" in str(broken.value) and SECRET not in str(broken.value)
    await broker.close()


async def test_password_and_token_options_from_the_environment(tmp_path: Path) -> None:
    token = "tok-" + SECRET
    server = NatsServer(tmp_path / "store", config=f'authorization {{ token: "{token}" }}')
    server.start()
    try:
        token_file = tmp_path / "token"
        token_file.write_text(token + "\n")
        env = {
            "MICRO_REGISTRY": "nats",
            "MICRO_REGISTRY_ADDRESS": server.url,
            "MICRO_NATS_TOKEN_FILE": str(token_file),
        }
        registry = from_env(env)
        name = unique("tok")
        await registry.register(record(name))
        assert len(await registry.get_service(name)) == 1
        await registry.close()
        options = NatsOptions(token="bad-" + SECRET)
        assert SECRET not in repr(options)
        with pytest.raises(RegistryError, match="authorization failed") as info:
            await NatsRegistry(server.url, options=options, connect_timeout=5).list_services()
        assert SECRET not in str(info.value)
    finally:
        server.kill()


def test_redact_url() -> None:
    assert redact_url("nats://u:p%40ss@h:4222") == "nats://u:***@h:4222"
    assert redact_url("nats://tok@h:1,nats://h2:2") == "nats://***@h:1,nats://h2:2"
    assert redact_url("tls://a:b@c@h") == "tls://a:***@h"
    assert redact_url("nats://h:4222") == "nats://h:4222"
    assert redact_url("nats://u:a://b@h") == "nats://u:***@h"
    assert redact_url("u:secret@h:4222") == "u:***@h:4222"


# -- TLS ------------------------------------------------------------------------------


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[NatsServer, trustme.CA, Path]]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    config = f"""
tls {{
  cert_file: "{tmp_path / "server.pem"}"
  key_file: "{tmp_path / "server.pem"}"
  ca_file: "{tmp_path / "ca.pem"}"
  verify: true
  timeout: 2
}}
"""
    server = NatsServer(tmp_path / "store", config=config)
    server.start()
    yield server, ca, tmp_path
    server.kill()


async def test_tls_with_client_certificates(
    tls_server: tuple[NatsServer, trustme.CA, Path],
) -> None:
    server, ca, tmp = tls_server
    client = ca.issue_cert("micro-service")
    client.cert_chain_pems[0].write_to_path(str(tmp / "client.pem"))
    client.private_key_pem.write_to_path(str(tmp / "client.key"))
    env = {
        "MICRO_REGISTRY": "nats",
        "MICRO_REGISTRY_ADDRESS": server.url,
        "MICRO_NATS_TLS_CA": str(tmp / "ca.pem"),
        "MICRO_NATS_TLS_CERT": str(tmp / "client.pem"),
        "MICRO_NATS_TLS_KEY": str(tmp / "client.key"),
    }
    name = unique("tls")
    registry = from_env(env)
    await registry.register(record(name))
    assert len(await registry.get_service(name)) == 1
    await registry.close()

    # No client certificate: the server requires one.
    no_cert = NatsOptions(tls_ca=str(tmp / "ca.pem"))
    with pytest.raises(RegistryError, match=r"TLS handshake failed.*client certificate"):
        await NatsRegistry(server.url, options=no_cert, connect_timeout=5).list_services()

    # A server certificate from a CA the client does not trust: verification fails.
    other = trustme.CA()
    other.cert_pem.write_to_path(str(tmp / "other.pem"))
    untrusted = NatsOptions(
        tls_ca=str(tmp / "other.pem"),
        tls_cert=str(tmp / "client.pem"),
        tls_key=str(tmp / "client.key"),
    )
    with pytest.raises(RegistryError, match="TLS handshake failed") as info:
        await NatsRegistry(server.url, options=untrusted, connect_timeout=5).list_services()
    assert "MICRO_NATS_TLS_CA" in str(info.value)

    # No TLS settings: nats-py upgrades as the server requires, and the system's CAs
    # do not know this one, so verification (on by default) fails, quickly and clearly.
    started = time.monotonic()
    with pytest.raises(RegistryError, match="TLS handshake failed"):
        await NatsRegistry(server.url, options=NatsOptions(), connect_timeout=5).list_services()
    assert time.monotonic() - started < 4


def test_tls_context_verifies_by_default(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    context = NatsOptions(tls_ca=str(tmp_path / "ca.pem")).ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


# -- signed records, bounded leases -----------------------------------------------------


def env(url: str, **extra: str) -> dict[str, str]:
    return {"MICRO_REGISTRY": "nats", "MICRO_REGISTRY_ADDRESS": url, **extra}


async def test_rogue_writer_without_the_key_gets_no_calls(
    own_nats: NatsServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    name = unique("signed")
    with nodes(env(own_nats.url), tmp_path / "events") as group:
        group.start(name, "good", MICRO_REGISTRY_KEY=KEY)
        group.start(name, "rogue")  # bucket access, no key
        async with NatsRegistry(own_nats.url, signing_key=b"") as unsigned:

            async def both() -> bool:
                found = await unsigned.get_service(name)
                return len({n.id for r in found for n in r.nodes}) == 2  # good and rogue

            await eventually(both, what="both records in the bucket", retry_on=(NotFound,))
        answered: list[str] = []
        with caplog.at_level(logging.WARNING, logger="micro.registry"):
            registry = NatsRegistry(own_nats.url, signing_key=KEY)
            async with micro.Client(registry=registry) as client:
                stub = StreamerClient(name, client=client)
                for i in range(40):
                    reply = await stub.echo(EchoRequest(text=f"c{i}"), timeout=10)
                    answered.append(reply.text.rsplit(" ", 1)[-1])
    assert answered == ["good"] * 40
    rejected = [r for r in caplog.records if "unsigned record" in r.getMessage()]
    assert len(rejected) == 1 and KEY not in caplog.text


async def test_bad_signature_is_ignored(nats_url: str) -> None:
    name = unique("forged")
    async with NatsRegistry(nats_url, signing_key="another-key-0123456789") as forger:
        await forger.register(record(name, "forged"))
    async with NatsRegistry(nats_url, signing_key=KEY) as reader:
        with pytest.raises(NotFound):
            await reader.get_service(name)
        await reader.register(record(name, "real"))
        assert [n.id for r in await reader.get_service(name) for n in r.nodes] == ["real"]


async def test_far_future_lease_does_not_pin_a_dead_node(nats_url: str) -> None:
    name = unique("pinned")
    async with NatsRegistry(nats_url, signing_key=b"", max_lease=1.0, default_ttl=1.0) as reg:
        state = await reg._state_ready()
        body = {"service": record(name, "dead").to_dict(), "expires": time.time() + 1e9}
        await state.kv.put(node_key(name, "1.0", "dead"), json.dumps(body).encode())
        assert DEFAULT_BUCKET == reg.bucket

        async def gone() -> bool:
            try:
                await reg.get_service(name)
            except NotFound:
                return True
            return False

        await eventually(gone, timeout=10, what="the planted lease to end within max_lease")
    # A reader started later sees the same server timestamp: still gone.
    async with NatsRegistry(nats_url, signing_key=b"", max_lease=1.0, default_ttl=1.0) as late:
        with pytest.raises(NotFound):
            await late.get_service(name)


async def test_no_secret_in_a_callers_error_or_the_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"nats://ops:{SECRET}@127.0.0.1:{free_port()}"  # nothing listens there
    with caplog.at_level(logging.DEBUG):
        registry = NatsRegistry(url, connect_timeout=1)
        async with micro.Client(registry=registry) as client:
            with pytest.raises(micro.Error) as info:
                await StreamerClient("anything", client=client).echo(EchoRequest(text="x"))
    assert "registry unavailable" in str(info.value) and "ops:***@" in str(info.value)
    assert SECRET not in str(info.value) and SECRET not in caplog.text


async def test_nkey_seed_from_the_environment(tmp_path: Path) -> None:
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    public = nkeys.from_seed(bytearray(seed)).public_key.decode()
    config = f"authorization {{ users = [ {{ nkey: {public} }} ] }}"
    server = NatsServer(tmp_path / "store", config=config)
    server.start()
    try:
        seed_file = tmp_path / "user.nk"
        seed_file.write_bytes(seed)
        env = {"MICRO_REGISTRY_ADDRESS": server.url, "MICRO_NATS_NKEY": str(seed_file)}
        registry = from_env({"MICRO_REGISTRY": "nats", **env})
        name = unique("nkey")
        await registry.register(record(name))
        assert len(await registry.get_service(name)) == 1
        await registry.close()
        with pytest.raises(RegistryError, match="authorization failed"):
            await NatsRegistry(server.url, options=NatsOptions(), connect_timeout=5).list_services()
        other = tmp_path / "other.nk"
        other.write_bytes(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER))
        wrong = NatsRegistry(server.url, options=NatsOptions(nkey=str(other)), connect_timeout=5)
        with pytest.raises(RegistryError, match="authorization failed") as info:
            await wrong.list_services()
        assert seed.decode() not in str(info.value)
    finally:
        server.kill()


async def test_user_and_password_from_the_environment(guarded: NatsServer) -> None:
    env = {
        "MICRO_REGISTRY": "nats",
        "MICRO_REGISTRY_ADDRESS": guarded.url,
        "MICRO_NATS_USER": "service",
        "MICRO_NATS_PASSWORD": SECRET,
    }
    registry = from_env(env)
    name = unique("userpass")
    await registry.register(record(name))
    assert len(await registry.get_service(name)) == 1
    await registry.close()
    bad = from_env({**env, "MICRO_NATS_PASSWORD": "wrong-" + SECRET})
    with pytest.raises(RegistryError, match="authorization failed") as info:
        await bad.list_services()
    assert SECRET not in str(info.value)
    await bad.close()


def test_gateway_503_body_and_log_carry_no_password(tmp_path: Path) -> None:
    """The attack at the top of issue 13: the gateway answered 503 with the registry URL,
    password included. Routes are learnt, then NATS goes away before the first call."""
    server = NatsServer(
        tmp_path / "store", config=f'authorization {{ user: ops, password: "{SECRET}" }}'
    )
    server.start()
    url = with_user(server.url, "ops")

    class NatsProcs(Procs):
        @property
        def env(self) -> dict[str, str]:
            return {**super().env, "MICRO_REGISTRY": "nats", "MICRO_REGISTRY_ADDRESS": url}

    procs = NatsProcs(tmp_path / "unused.db")
    try:
        procs.service("library", "a")
        gateway = procs.gateway()
        with gateway.client() as http:

            def routes() -> bool:
                body = http.get("/v1/shelves/1/book").json()  # a 404 lists the routes
                return any("Library.GetBook" in r for r in body.get("routes", []))

            eventually_sync(routes, timeout=20, what="the gateway's routes")
            server.kill()
            response = http.get("/v1/shelves/1/books/2")
        assert response.status_code == 503, response.text
        # the body names what failed, no address at all (the hardening of 5xx bodies);
        # the gateway's log keeps the registry's error, its URL redacted
        assert SECRET not in response.text and "ops:" not in response.text
        gateway.proc.terminate()
        assert SECRET not in gateway.proc.log
        assert "registry unavailable" in gateway.proc.log and "ops:***@" in gateway.proc.log
    finally:
        procs.stop_all()
        server.kill()


async def test_creds_file_from_the_environment(tmp_path: Path) -> None:
    config, good, stranger = operator_setup(tmp_path)
    server = NatsServer(tmp_path / "store", config=config)
    server.start()
    try:
        env = {"MICRO_REGISTRY_ADDRESS": server.url, "MICRO_NATS_CREDS": str(good)}
        registry = from_env({"MICRO_REGISTRY": "nats", **env})
        name = unique("creds")
        await registry.register(record(name))
        assert len(await registry.get_service(name)) == 1
        await registry.close()
        options = NatsOptions(creds=str(stranger))
        with pytest.raises(RegistryError, match="authorization failed") as info:
            await NatsRegistry(server.url, options=options, connect_timeout=5).list_services()
        assert "SUA" not in str(info.value)  # no seed
        with pytest.raises(RegistryError, match="does not exist"):
            missing = NatsOptions(creds=str(tmp_path / "nope.creds"))
            await NatsRegistry(server.url, options=missing).list_services()
    finally:
        server.kill()
