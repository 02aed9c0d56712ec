"""TLS interop with plain grpcio: a grpcio client (``ssl_channel_credentials``, with and
without a client certificate) calls a micro service; a micro client calls a grpcio
server; on both micro transports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import grpc.aio
import pytest

import micro
from micro.transport import Transport
from tests.runtime.echo_kit import ECHO, EchoReply, EchoRequest, serving
from tests.tls.pki import Pki


def _credentials(pki: Pki, *, identity: bool) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=pki.ca.read_bytes(),
        private_key=pki.client_key.read_bytes() if identity else None,
        certificate_chain=pki.client_cert.read_bytes() if identity else None,
    )


async def _grpcio_echo(address: str, credentials: grpc.ChannelCredentials, text: str) -> str:
    async with grpc.aio.secure_channel(address, credentials) as channel:
        echo = channel.unary_unary(ECHO.path)
        data = await echo(bytes(EchoRequest(text=text)), timeout=10)
    return EchoReply().parse(data).text


async def test_grpcio_client_calls_a_micro_service_over_tls(wire: Transport, pki: Pki) -> None:
    async with serving(transport=wire, tls=pki.server()) as service:
        anonymous = _credentials(pki, identity=False)
        assert await _grpcio_echo(service.address, anonymous, "tls") == "tls"


async def test_grpcio_client_calls_a_micro_service_over_mtls(wire: Transport, pki: Pki) -> None:
    async with serving(transport=wire, tls=pki.server("require")) as service:
        identified = _credentials(pki, identity=True)
        assert await _grpcio_echo(service.address, identified, "mtls") == "mtls"
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _grpcio_echo(service.address, _credentials(pki, identity=False), "x")
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE


@pytest.fixture
async def grpcio_tls_server(pki: Pki) -> AsyncIterator[str]:
    """A plain grpcio server answering Echo over TLS."""

    async def echo(request: bytes, context: Any) -> bytes:
        return bytes(EchoReply(text=f"grpcio: {EchoRequest().parse(request).text}"))

    handler = grpc.method_handlers_generic_handler(
        ECHO.path.split("/")[1], {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    credentials = grpc.ssl_server_credentials([(pki.key.read_bytes(), pki.cert.read_bytes())])
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


async def test_micro_client_calls_a_grpcio_server_over_tls(
    wire: Transport, pki: Pki, grpcio_tls_server: str
) -> None:
    tls = pki.client(identity=False)
    async with micro.Client(transport=wire, tls=tls, registry=micro.MemoryRegistry()) as client:
        reply = await client.unary(ECHO, EchoRequest(text="hi"), address=grpcio_tls_server)
    assert reply.text == "grpcio: hi"
