"""What goes over the wire: junk payloads, plain gRPC peers (grpclib / grpcio), health."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpclib.client import Channel
from grpclib.const import Cardinality, Handler
from grpclib.const import Status as GrpclibStatus
from grpclib.encoding.base import CodecBase
from grpclib.exceptions import GRPCError
from grpclib.server import Server, Stream

import micro
from micro.errors import Status
from micro.health import HealthCheckRequest, HealthCheckResponse, ServingStatus
from micro.transport import GrpcioTransport, Transport
from micro.transport.grpclib_impl import GrpclibTransport
from tests.runtime.echo_kit import ECHO, EchoClient, EchoRequest, serving

pytestmark = pytest.mark.timeout(60)


class RawCodec(CodecBase):
    """Sends and receives payload bytes untouched."""

    __content_subtype__ = "proto"

    def encode(self, message: Any, message_type: Any) -> bytes:
        assert isinstance(message, bytes)
        return message

    def decode(self, data: bytes, message_type: Any) -> Any:
        return data


async def _raw_unary(address: str, path: str, payload: bytes) -> bytes:
    host, port = address.rsplit(":", 1)
    channel = Channel(host, int(port), codec=RawCodec())
    try:
        stream = channel.request(path, Cardinality.UNARY_UNARY, bytes, bytes, timeout=5)
        async with stream:
            await stream.send_message(payload, end=True)
            reply = await stream.recv_message()
        assert isinstance(reply, bytes)
        return reply
    finally:
        channel.close()


@pytest.mark.parametrize("junk", [b"\x08\x99", b"\x12\x02\xff\xfe", b"\xff" * 11, b"\x08"])
async def test_garbage_request_answers_invalid_argument_and_server_keeps_serving(
    junk: bytes,
) -> None:
    async with serving() as svc:
        with pytest.raises(GRPCError) as info:
            await _raw_unary(svc.address, ECHO.path, junk)
        assert info.value.status is GrpclibStatus.INVALID_ARGUMENT
        assert "cannot decode EchoRequest" in (info.value.message or "")
        # a valid request on the very same kind of raw connection still works
        reply = await _raw_unary(svc.address, ECHO.path, bytes(EchoRequest(text="fine")))
        assert b"fine" in reply
        async with micro.Client(registry=svc.registry) as client:
            assert (
                await EchoClient("echo", client=client).echo(EchoRequest(text="ok"))
            ).text == "ok"


async def test_garbage_in_a_client_stream_answers_invalid_argument() -> None:
    async with serving() as svc:
        host, port = svc.address.rsplit(":", 1)
        channel = Channel(host, int(port), codec=RawCodec())
        try:
            stream = channel.request(
                "/test.v1.Echo/Collect", Cardinality.STREAM_UNARY, bytes, bytes, timeout=5
            )
            with pytest.raises(GRPCError) as info:
                async with stream:
                    await stream.send_message(bytes(EchoRequest(text="a")))
                    await stream.send_message(b"\x08\x99", end=True)
                    await stream.recv_message()
            assert info.value.status is GrpclibStatus.INVALID_ARGUMENT
        finally:
            channel.close()


class _PlainServer:
    """A non-micro grpclib server: junk replies, plain gRPC errors, a reply cut short."""

    def __init__(self) -> None:
        self.vanished = 0  # calls the Vanish handler got

    async def vanish(self, stream: Stream[Any, Any]) -> None:
        self.vanished += 1
        await stream.recv_message()
        await stream.send_message(bytes(EchoRequest(text="handled")))
        # the reply is on its way; the connection goes before the call's status does
        stream._stream._transport.close()

    async def junk(self, stream: Stream[Any, Any]) -> None:
        await stream.recv_message()
        await stream.send_message(b"\x08\x99")

    async def denied(self, stream: Stream[Any, Any]) -> None:
        await stream.recv_message()
        raise GRPCError(GrpclibStatus.PERMISSION_DENIED, "nope, not you")

    async def slow(self, stream: Stream[Any, Any]) -> None:
        await stream.recv_message()
        await asyncio.sleep(5)

    async def expired(self, stream: Stream[Any, Any]) -> None:
        # what a grpclib server sends when its deadline timer fires: a bare status
        await stream.recv_message()
        raise GRPCError(GrpclibStatus.DEADLINE_EXCEEDED)

    async def silent(self, stream: Stream[Any, Any]) -> None:
        # served as a stream of zero replies: status OK and no message, which grpclib
        # refuses to send for a unary handler (the wire does not carry the call's kind)
        await stream.recv_message()

    def __mapping__(self) -> dict[str, Handler]:
        return {
            ECHO.path: Handler(self.junk, Cardinality.UNARY_UNARY, bytes, bytes),
            "/test.v1.Echo/Missing": Handler(self.denied, Cardinality.UNARY_UNARY, bytes, bytes),
            EXPIRED.path: Handler(self.expired, Cardinality.UNARY_UNARY, bytes, bytes),
            SLOW.path: Handler(self.slow, Cardinality.UNARY_UNARY, bytes, bytes),
            SILENT.path: Handler(self.silent, Cardinality.UNARY_STREAM, bytes, bytes),
            VANISH.path: Handler(self.vanish, Cardinality.UNARY_UNARY, bytes, bytes),
        }


def _unary(name: str) -> micro.Method[EchoRequest, EchoRequest]:
    """A unary Echo method that only the plain server above serves."""
    return micro.Method(
        name=f"Echo.{name}",
        path=f"/test.v1.Echo/{name}",
        kind=micro.Kind.UNARY,
        request_type=EchoRequest,
        response_type=EchoRequest,
        handler_attr=name.lower(),
    )


SILENT, EXPIRED, SLOW, VANISH = (_unary(n) for n in ("Silent", "Expired", "Slow", "Vanish"))


@pytest.fixture
async def plain() -> AsyncIterator[tuple[_PlainServer, str]]:
    handlers = _PlainServer()
    server = Server([handlers], codec=RawCodec())
    await server.start("127.0.0.1", 0)
    assert isinstance(server._server, asyncio.Server)
    port = server._server.sockets[0].getsockname()[1]
    try:
        yield handlers, f"127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
def plain_server(plain: tuple[_PlainServer, str]) -> str:
    return plain[1]


@pytest.mark.parametrize(
    ("wire", "lost"),
    [
        (GrpclibTransport, "lost after 1 response message(s), before the call's status"),
        # grpcio's unary API does not say whether the reply had arrived: any loss after
        # the request went out commits the call
        (GrpcioTransport, "lost, before the call's status"),
    ],
)
async def test_connection_lost_after_the_reply_fails_the_call_without_a_retry(
    plain: tuple[_PlainServer, str], wire: type[Transport], lost: str
) -> None:
    """As in gRPC: a call is committed once a response message arrived. Without its
    status it fails (UNAVAILABLE), and it is not retried: the server handled it."""
    handlers, address = plain
    async with micro.Client(registry=micro.MemoryRegistry(), retries=2, transport=wire()) as client:
        with pytest.raises(micro.Error) as info:
            await client.unary(VANISH, EchoRequest(text="x"), address=address)
        assert info.value.grpc_status is Status.UNAVAILABLE
        assert info.value.detail.startswith(f"Echo.Vanish: connection to {address} {lost}")
        assert handlers.vanished == 1
        with pytest.raises(micro.Error, match="invalid response"):  # a new connection
            await EchoClient(address=address, client=client).echo(EchoRequest(text="x"))


async def test_garbage_response_raises_an_error_on_the_client(plain_server: str) -> None:
    async with micro.Client(registry=micro.MemoryRegistry()) as client:
        stub = EchoClient(address=plain_server, client=client)
        with pytest.raises(micro.Error) as info:
            await stub.echo(EchoRequest(text="x"))
        assert info.value.code == 500
        assert info.value.grpc_status is Status.INTERNAL
        assert "invalid response" in info.value.detail


async def test_ok_status_without_a_reply_is_an_error_and_the_channel_stays_usable(
    plain_server: str,
) -> None:
    """On grpclib. grpcio hands a missing unary reply over as b"", the bytes of an empty
    message, so a grpcio client reads it as one (the wire does not tell them apart)."""
    async with micro.Client(
        registry=micro.MemoryRegistry(), transport=GrpclibTransport()
    ) as client:
        for _ in range(2):  # the first failure leaves nothing behind on the connection
            with pytest.raises(micro.Error) as info:
                await client.unary(SILENT, EchoRequest(text="x"), address=plain_server)
            assert info.value.grpc_status is Status.INTERNAL
            assert info.value.detail == "Echo.Silent: server sent no response message"
        with pytest.raises(micro.Error, match="invalid response"):
            await EchoClient(address=plain_server, client=client).echo(EchoRequest(text="x"))


async def test_the_servers_deadline_is_the_same_error_as_the_clients(plain_server: str) -> None:
    """Client and server time the same deadline; whichever fires first, the caller sees
    one error (grpclib servers send DEADLINE_EXCEEDED without a message)."""
    async with micro.Client(registry=micro.MemoryRegistry()) as client:
        with pytest.raises(micro.Error) as server_first:
            await client.unary(EXPIRED, EchoRequest(text="x"), address=plain_server)
        with pytest.raises(micro.Error) as client_first:
            await client.unary(SLOW, EchoRequest(text="x"), address=plain_server, timeout=0.05)
    assert server_first.value.to_dict() == {
        "id": "micro.client",
        "code": 408,
        "detail": "Echo.Expired: deadline exceeded",
        "status": "Request Timeout",
    }
    assert client_first.value.detail == "Echo.Slow: deadline exceeded"
    assert client_first.value.code == 408


async def test_plain_grpc_error_becomes_an_error_with_its_status(plain_server: str) -> None:
    async with micro.Client(registry=micro.MemoryRegistry()) as client:
        with pytest.raises(micro.Error) as info:
            await EchoClient(address=plain_server, client=client).missing(EchoRequest())
        err = info.value
        assert err.grpc_status is Status.PERMISSION_DENIED
        assert (err.code, err.detail, err.status) == (403, "nope, not you", "Forbidden")


async def test_health_check_via_grpcio() -> None:
    async with serving() as svc:
        async with grpc.aio.insecure_channel(svc.address) as channel:
            check = channel.unary_unary("/grpc.health.v1.Health/Check")
            for service in ("", "test.v1.Echo"):
                raw = await check(bytes(HealthCheckRequest(service=service)), timeout=5)
                assert HealthCheckResponse.parse(raw).status == ServingStatus.SERVING
                assert raw == b"\x08\x01"
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await check(bytes(HealthCheckRequest(service="nope.v1.Nope")), timeout=5)
            assert info.value.code() == grpc.StatusCode.NOT_FOUND

            # Watch streams the current status, then changes
            watch = channel.unary_stream("/grpc.health.v1.Health/Watch")
            call = watch(bytes(HealthCheckRequest(service="")), timeout=10)
            first = await call.read()
            assert HealthCheckResponse.parse(first).status == ServingStatus.SERVING
            svc.health.set("", ServingStatus.NOT_SERVING)
            second = await asyncio.wait_for(call.read(), 5)
            assert HealthCheckResponse.parse(second).status == ServingStatus.NOT_SERVING
            call.cancel()


async def test_grpcio_client_gets_micro_errors_as_grpc_status() -> None:
    async with serving() as svc, grpc.aio.insecure_channel(svc.address) as channel:
        echo = channel.unary_unary(ECHO.path)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await echo(bytes(EchoRequest(text="7", fail="not_found")), timeout=5)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        assert info.value.details() == "no such thing: 7"
        trailers = dict(info.value.trailing_metadata() or ())
        assert micro.Error.parse(trailers["micro-error"]) == micro.errors.not_found(
            "echo", "no such thing: 7"
        )
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await channel.unary_unary("/test.v1.Echo/Missing")(b"", timeout=5)
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
