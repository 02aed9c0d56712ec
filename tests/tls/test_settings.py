"""TLS settings: the environment, one clear line for a bad setting, the loud opt-out,
and certificate rotation without a restart."""

from __future__ import annotations

import asyncio
import logging
import shutil
import ssl
from pathlib import Path

import pytest

import micro
from micro._config import ConfigError
from micro.address import parse_address
from micro.tls import TLS, resolve
from micro.transport import GrpcioTransport, Transport
from micro.transport.grpclib_impl import GrpclibTransport
from tests.runtime.echo_kit import ECHO, EchoRequest, serving
from tests.tls.pki import Pki, make_pki, write_chain
from tests.waiting import eventually


def test_no_variable_means_plaintext() -> None:
    assert TLS.from_env({}) is None
    assert resolve(None, {}) is None
    assert resolve(False, {"MICRO_TLS_CA": "ca.pem"}) is None
    off = {"MICRO_TLS_CLIENT_AUTH": "none", "MICRO_TLS_INSECURE_SKIP_VERIFY": "false"}
    assert TLS.from_env(off) is None


def test_the_variables(pki: Pki) -> None:
    tls = TLS.from_env({**pki.env(), "MICRO_TLS_SERVER_NAME": "localhost"})
    assert tls == TLS(
        cert=str(pki.cert),
        key=str(pki.key),
        ca=str(pki.ca),
        client_auth="require",
        server_name="localhost",
    )
    assert TLS.from_env({"MICRO_TLS_INSECURE_SKIP_VERIFY": "true"}) == TLS(
        insecure_skip_verify=True
    )


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"MICRO_TLS_CLIENT_AUTH": "always"}, "MICRO_TLS_CLIENT_AUTH must be one of"),
        ({"MICRO_TLS_CERT": "a.pem"}, "MICRO_TLS_CERT is set but MICRO_TLS_KEY is not"),
        ({"MICRO_TLS_CLIENT_AUTH": "require"}, "MICRO_TLS_CLIENT_AUTH=require needs MICRO_TLS_CA"),
        ({"MICRO_TLS_INSECURE_SKIP_VERIFY": "maybe"}, "must be true or false"),
    ],
)
def test_bad_variables_are_one_line(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as bad:
        TLS.from_env(environ)
    assert "\n" not in str(bad.value)


def test_a_missing_file_names_its_variable(pki: Pki, tmp_path: Path) -> None:
    environ = {**pki.env(), "MICRO_TLS_CA": str(tmp_path / "nope.pem")}
    tls = TLS.from_env(environ)
    assert tls is not None
    with pytest.raises(ConfigError, match=r"^MICRO_TLS_CA: cannot read .*nope\.pem"):
        tls.server_files()


def test_a_key_that_is_not_the_certificates(pki: Pki, tmp_path: Path) -> None:
    other = make_pki(tmp_path / "other")
    environ = {**pki.env(), "MICRO_TLS_KEY": str(other.key)}
    tls = TLS.from_env(environ)
    assert tls is not None
    with pytest.raises(ConfigError) as bad:
        tls.server_files()
    text = str(bad.value)
    assert text.startswith("MICRO_TLS_KEY (")
    assert "is not the key of the certificate in MICRO_TLS_CERT" in text
    assert "PRIVATE KEY" not in text
    assert other.key.read_text().splitlines()[1] not in text


def test_a_service_reports_a_bad_setting_before_it_binds(pki: Pki, tmp_path: Path) -> None:
    service = micro.Service("bad", registry=micro.MemoryRegistry(), tls=TLS(ca=str(pki.ca)))
    with pytest.raises(ConfigError, match=r"^bad: serving TLS needs TLS\.cert and TLS\.key"):
        asyncio.run(service.start())


def test_grpcio_refuses_what_it_cannot_do(pki: Pki) -> None:
    with pytest.raises(ConfigError, match="not available on the grpcio transport"):
        GrpcioTransport().client(tls=TLS(insecure_skip_verify=True))
    with pytest.raises(ConfigError, match="request is not available on the grpcio transport"):
        GrpcioTransport().server({}, _never, tls=pki.server("request"))


async def _never(call: object) -> None:
    raise AssertionError("not called")


async def test_insecure_skip_verify_on_grpclib_warns_every_time(
    pki: Pki, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    other = make_pki(tmp_path / "other")  # the client trusts nothing the server shows
    wire = GrpclibTransport()
    async with serving(transport=wire, tls=pki.server()) as service:
        with caplog.at_level(logging.WARNING, logger="micro.tls"):
            for _ in range(2):
                skip = TLS(ca=str(other.ca), insecure_skip_verify=True)
                async with micro.Client(
                    registry=service.registry, transport=wire, tls=skip
                ) as client:
                    reply = await client.unary(ECHO, EchoRequest(text="hi"), service="echo")
                    assert reply.text == "hi"
        warnings = [r for r in caplog.records if "NOT verified" in r.getMessage()]
        assert len(warnings) == 2


async def test_request_client_auth_on_grpclib(pki: Pki) -> None:
    wire = GrpclibTransport()
    async with serving(transport=wire, tls=pki.server("request")) as service:
        for identity in (True, False):
            async with micro.Client(
                registry=service.registry, transport=wire, tls=pki.client(identity=identity)
            ) as client:
                reply = await client.unary(ECHO, EchoRequest(text="r"), service="echo")
                assert reply.text == "r"


async def _presented_issuer(address: str, ca: Path) -> str | None:
    """The issuer's common name of the certificate a new connection is shown, if it
    verifies against ``ca``."""
    host, port = parse_address(address)
    context = ssl.create_default_context(cafile=str(ca))
    context.set_alpn_protocols(["h2"])
    try:
        _, writer = await asyncio.open_connection(host, port, ssl=context)
    except ssl.SSLError:
        return None
    try:
        cert = writer.get_extra_info("peercert")
        return str(dict(x[0] for x in cert["issuer"]).get("organizationName"))
    finally:
        writer.close()


@pytest.mark.parametrize("wire_name", ["grpcio", "grpclib"])
async def test_rotated_certificates_are_served_without_a_restart(
    wire_name: str, pki: Pki, tmp_path: Path
) -> None:
    wire: Transport = GrpcioTransport() if wire_name == "grpcio" else GrpclibTransport()
    served = tmp_path / "served"
    served.mkdir()
    cert, key = served / "node.pem", served / "node-key.pem"
    shutil.copy(pki.cert, cert)
    shutil.copy(pki.key, key)
    renewed = make_pki(tmp_path / "renewed")
    tls = TLS(cert=str(cert), key=str(key))
    async with serving(transport=wire, tls=tls) as service:
        assert await _presented_issuer(service.address, pki.ca) is not None
        assert await _presented_issuer(service.address, renewed.ca) is None
        write_chain(renewed.authority.issue_cert("127.0.0.1", "localhost"), cert, key)

        async def renewed_is_served() -> bool:
            return await _presented_issuer(service.address, renewed.ca) is not None

        await eventually(renewed_is_served, timeout=15)
        async with micro.Client(
            registry=service.registry, transport=wire, tls=renewed.client(identity=False)
        ) as client:
            assert (await client.unary(ECHO, EchoRequest(text="new"), service="echo")).text == "new"
