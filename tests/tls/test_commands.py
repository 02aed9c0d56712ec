"""TLS end to end in real processes: service nodes configured by the MICRO_TLS_*
environment alone, `micro call` / `micro health` over mTLS, `buf curl` over mTLS, and
`micro api` serving HTTPS while calling services over mTLS."""

from __future__ import annotations

import json
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.helpers import micro, one_line_error
from tests.cluster import Cluster, Node
from tests.gateway.procs import Procs
from tests.tls.pki import Pki
from tests.tooling.test_ci_configs import buf


@pytest.fixture
def shop(cluster: Cluster, pki: Pki, monkeypatch: pytest.MonkeyPatch) -> Node:
    """A node serving mTLS, set up by the environment only."""
    for name, value in pki.env().items():
        monkeypatch.setenv(name, value)
    node = cluster.start("shop", "a")
    for name in pki.env():
        monkeypatch.delenv(name)
    return node


@pytest.fixture
def mtls_cluster(cluster: Cluster, shop: Node) -> Cluster:
    return cluster


def _client_flags(pki: Pki) -> list[str]:
    return [
        "--tls-ca",
        str(pki.ca),
        "--tls-cert",
        str(pki.client_cert),
        "--tls-key",
        str(pki.client_key),
    ]


def test_micro_call_over_mtls(mtls_cluster: Cluster, pki: Pki) -> None:
    args = ("call", "shop", "Greeter.SayHello", '{"name": "Ada"}')
    result = micro(mtls_cluster, *args[:1], *_client_flags(pki), *args[1:])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"message": "Hello, Ada!"}
    by_env = micro(
        mtls_cluster,
        *args,
        MICRO_TLS_CA=str(pki.ca),
        MICRO_TLS_CERT=str(pki.client_cert),
        MICRO_TLS_KEY=str(pki.client_key),
    )
    assert by_env.returncode == 0, by_env.stderr
    health = micro(mtls_cluster, "health", *_client_flags(pki), "shop")
    assert health.returncode == 0, health.stderr
    assert "SERVING" in health.stdout


def test_micro_call_without_tls_says_what_to_set(mtls_cluster: Cluster) -> None:
    result = micro(mtls_cluster, "call", "shop", "Greeter.SayHello", "{}")
    assert result.returncode != 0
    line = one_line_error(result)
    assert "every node serves TLS" in line and "MICRO_TLS_CA" in line, line


def test_micro_call_with_a_missing_file_is_one_line(mtls_cluster: Cluster, tmp_path: Path) -> None:
    result = micro(
        mtls_cluster,
        "call",
        "--tls-ca",
        str(tmp_path / "nope.pem"),
        "shop",
        "Greeter.SayHello",
        "{}",
    )
    assert result.returncode == 2, result.stderr
    line = one_line_error(result)
    assert "MICRO_TLS_CA: cannot read" in line, line


def test_buf_curl_over_mtls(shop: Node, pki: Pki) -> None:
    address = shop.address
    base = [buf(), "curl", "--protocol", "grpc", "--cacert", str(pki.ca)]
    identity = ["--cert", str(pki.client_cert), "--key", str(pki.client_key)]
    url = f"https://{address}"
    listed = _run([*base, *identity, "--list-methods", url])
    assert listed.returncode == 0, listed.stderr
    assert "helloworld.v1.Greeter/SayHello" in listed.stdout.split()
    said = _run(
        [*base, *identity, "-d", '{"name": "buf"}', f"{url}/helloworld.v1.Greeter/SayHello"]
    )
    assert said.returncode == 0, said.stderr
    assert json.loads(said.stdout) == {"message": "Hello, buf!"}
    refused = _run([*base, "--list-methods", url])  # no client certificate
    assert refused.returncode != 0


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def tls_procs(tmp_path: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch) -> Iterator[Procs]:
    for name, value in pki.env().items():
        monkeypatch.setenv(name, value)
    started = Procs(tmp_path / "registry.db")
    try:
        started.service("library", "a")
        yield started
    finally:
        started.stop_all()


def test_gateway_serves_https_and_calls_services_over_mtls(tls_procs: Procs, pki: Pki) -> None:
    gateway = tls_procs.gateway("--https-cert", str(pki.cert), "--https-key", str(pki.key))
    assert gateway.url.startswith("https://")
    trust = ssl.create_default_context(cafile=str(pki.ca))
    with httpx.Client(base_url=gateway.url, timeout=30, verify=trust) as client:
        response = client.get("/v1/shelves/1/books/2")
    assert response.status_code == 200, response.text
    with pytest.raises(httpx.ConnectError):
        httpx.get(gateway.url + "/v1/shelves/1/books/2", timeout=30)  # system trust: unknown CA


def test_gateway_requires_client_certificates_when_given_a_client_ca(
    tls_procs: Procs, pki: Pki
) -> None:
    gateway = tls_procs.gateway(
        *("--https-cert", str(pki.cert), "--https-key", str(pki.key)),
        *("--https-client-ca", str(pki.ca)),
    )
    identified = ssl.create_default_context(cafile=str(pki.ca))
    identified.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    with httpx.Client(base_url=gateway.url, timeout=30, verify=identified) as client:
        assert client.get("/v1/shelves/1/books/2").status_code == 200
    anonymous = ssl.create_default_context(cafile=str(pki.ca))
    with (
        httpx.Client(base_url=gateway.url, timeout=30, verify=anonymous) as client,
        pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)),
    ):
        client.get("/v1/shelves/1/books/2")


def test_gateway_with_a_bad_https_setting_is_one_line(cluster: Cluster, tmp_path: Path) -> None:
    missing = str(tmp_path / "api.pem")
    result = micro(cluster, "api", "--https-cert", missing, "--https-key", missing)
    assert result.returncode == 2, result.stderr
    line = one_line_error(result)
    assert "--https-cert: cannot read" in line, line


def test_insecure_skip_verify_says_where_it_is_available(mtls_cluster: Cluster) -> None:
    args = ("call", "--insecure-skip-verify", "shop", "Greeter.SayHello", "{}")
    on_grpcio = micro(mtls_cluster, *args, MICRO_TRANSPORT="grpcio")
    assert on_grpcio.returncode == 2, on_grpcio.stderr
    line = one_line_error(on_grpcio)
    assert "not available on the grpcio transport" in line, line
