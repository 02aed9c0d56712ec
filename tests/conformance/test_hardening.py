"""Hardening of both transports (issue 14, transport half): message size limits checked
before buffering, gzip both ways with grpcio peers, unknown methods answered properly,
connection management against idle and abusive peers, client cancel as RST_STREAM CANCEL.

Real sockets on 127.0.0.1 throughout; a raw HTTP/2 peer (tests.conformance.raw_h2) sends
what no gRPC library would."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip as gzip_module
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import grpc.aio
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import pytest

import micro
from micro import codec
from micro.status import Status
from micro.transport import GrpcioTransport, Transport, TransportOptions
from micro.transport.grpclib_impl import GrpclibTransport
from micro.transport.options import MiB
from tests.conformance.raw_h2 import RawClient, bare_server, grpc_headers
from tests.runtime.echo_kit import ECHO, Echo, EchoReply, EchoRequest, serving
from tests.waiting import eventually

WIRES: dict[str, Callable[[], Transport]] = {"grpcio": GrpcioTransport, "grpclib": GrpclibTransport}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=sorted(WIRES))
def wire(request: pytest.FixtureRequest) -> Transport:
    return WIRES[request.param]()


def _port(service: micro.Service) -> int:
    return int(service.address.rpartition(":")[2])


# -- limits ---------------------------------------------------------------------------


async def test_a_request_over_4_mib_is_resource_exhausted_and_the_limit_configurable(
    wire: Transport,
) -> None:
    big = EchoRequest(text="x" * (5 * MiB))
    async with (
        serving(transport=wire) as service,
        micro.Client(registry=service.registry, transport=wire, retries=0) as client,
    ):
        with pytest.raises(micro.Error) as info:
            await client.unary(ECHO, big, service="echo")
        assert info.value.grpc_status is Status.RESOURCE_EXHAUSTED
        assert "larger than max" in info.value.detail.lower()
        # the connection and the server are fine afterwards
        assert (await client.unary(ECHO, EchoRequest(text="ok"), service="echo")).text == "ok"
    roomy = TransportOptions(max_receive_message_length=8 * MiB)
    async with (
        serving(transport=wire, transport_options=roomy) as service,
        micro.Client(
            registry=service.registry, transport=wire, retries=0, transport_options=roomy
        ) as client,
    ):
        assert len((await client.unary(ECHO, big, service="echo")).text) == 5 * MiB


async def test_a_response_over_the_clients_limit_is_resource_exhausted(wire: Transport) -> None:
    roomy = TransportOptions(max_receive_message_length=8 * MiB)
    async with (
        serving(transport=wire, transport_options=roomy) as service,
        micro.Client(registry=service.registry, transport=wire, retries=0) as client,
    ):
        with pytest.raises(micro.Error) as info:
            await client.unary(ECHO, EchoRequest(text="y" * (5 * MiB)), service="echo")
        assert info.value.grpc_status is Status.RESOURCE_EXHAUSTED


async def test_a_64_mib_response_from_a_grpcio_server_is_resource_exhausted(
    wire: Transport,
) -> None:
    huge = EchoReply(text="r" * (64 * MiB))
    data = codec.encode(huge, EchoReply)

    async def answer(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return data

    server = grpc.aio.server(options=[("grpc.max_send_message_length", -1)])
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "test.v1.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(answer)}
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with micro.Client(transport=wire, retries=0) as client:
            with pytest.raises(micro.Error) as info:
                await client.unary(ECHO, EchoRequest(), address=f"127.0.0.1:{port}")
    finally:
        await server.stop(None)
    assert info.value.grpc_status is Status.RESOURCE_EXHAUSTED
    assert "larger than max" in info.value.detail.lower()


async def test_the_send_limit_holds_on_the_sending_side(wire: Transport) -> None:
    tight = TransportOptions(max_send_message_length=1024)
    async with (
        serving(transport=wire) as service,
        micro.Client(
            registry=service.registry, transport=wire, retries=0, transport_options=tight
        ) as client,
    ):
        with pytest.raises(micro.Error) as info:
            await client.unary(ECHO, EchoRequest(text="z" * 2048), service="echo")
        assert info.value.grpc_status is Status.RESOURCE_EXHAUSTED
        assert (await client.unary(ECHO, EchoRequest(text="ok"), service="echo")).text == "ok"


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def server_process(wire: Transport) -> Iterator[tuple[int, int]]:
    """A separate server process: (pid, port)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.conformance.echo_server", wire.name],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield proc.pid, port
    finally:
        proc.kill()
        proc.wait()


async def test_a_length_prefix_claiming_4_gib_is_refused_before_buffering(
    server_process: tuple[int, int],
) -> None:
    pid, port = server_process
    before = _rss_kib(pid)
    client = await RawClient.connect(port)
    try:
        sid = client.h2.get_next_available_stream_id()
        client.h2.send_headers(sid, grpc_headers("/test.v1.Echo/Echo"))
        prefix = b"\x00" + (0xFFFFFFFF).to_bytes(4, "big")
        chunk = b"\x00" * 16384
        client.h2.send_data(sid, prefix)
        await client.flush()
        sent = 0
        # stream as much as flow control lets through, up to 64 MiB
        while sent < 64 * MiB and client.h2.local_flow_control_window(sid) >= len(chunk):
            client.h2.send_data(sid, chunk)
            sent += len(chunk)
            await client.flush()
        await client.read_until(lambda _: bool(client.headers_of(sid).get("grpc-status")))
        assert client.headers_of(sid)["grpc-status"] == str(Status.RESOURCE_EXHAUSTED.value)
        assert sent <= 16 * MiB  # refused after the window, not after 4 GiB
    finally:
        await client.aclose()
    assert _rss_kib(pid) - before < 32 * 1024  # RSS flat: well under the 4 GiB claimed


# -- compression -----------------------------------------------------------------------


def _grpcio_echo(channel: grpc.aio.Channel) -> grpc.aio.UnaryUnaryMultiCallable:
    return channel.unary_unary(
        "/test.v1.Echo/Echo",
        request_serializer=lambda m: codec.encode(m, EchoRequest),
        response_deserializer=lambda b: codec.decode(b, EchoReply),
    )


async def test_gzip_requests_from_a_grpcio_client(wire: Transport) -> None:
    async with serving(transport=wire) as service:
        async with grpc.aio.insecure_channel(
            service.address, compression=grpc.Compression.Gzip
        ) as channel:
            reply = await _grpcio_echo(channel)(EchoRequest(text="squeeze" * 100))
    assert reply.text == "squeeze" * 100


async def test_gzip_replies_from_a_grpcio_server_reach_a_micro_client(wire: Transport) -> None:
    gzip = TransportOptions(compression="gzip")
    async with (
        serving(transport=GrpcioTransport(), transport_options=gzip) as service,
        micro.Client(registry=service.registry, transport=wire, retries=0) as client,
    ):
        assert (await client.unary(ECHO, EchoRequest(text="a" * 5000), service="echo")).text == (
            "a" * 5000
        )


async def test_a_gzip_client_compresses_on_the_wire_and_per_call_choice_holds(
    wire: Transport,
) -> None:
    """At a bare HTTP/2 server: the request headers and each message's compressed flag."""
    seen: list[tuple[dict[str, str], bytes]] = []

    headers: dict[int, dict[str, str]] = {}

    def on_event(conn: h2.connection.H2Connection, event: object) -> None:
        if isinstance(event, h2.events.RequestReceived):
            headers[event.stream_id] = {_text(k): _text(v) for k, v in event.headers}
        if isinstance(event, h2.events.DataReceived) and event.data:
            conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            seen.append((headers[event.stream_id], event.data))
            conn.send_headers(
                event.stream_id, [(":status", "200"), ("content-type", "application/grpc")]
            )
            conn.send_data(event.stream_id, b"\x00\x00\x00\x00\x00")  # an empty reply
            conn.send_headers(event.stream_id, [("grpc-status", "0")], end_stream=True)

    async def per_call(call: micro.ClientCall, next_: micro.ClientNext) -> object:
        if call.request.text == "plain":
            call.compression = "identity"
        return await next_(call)

    async with (
        bare_server(on_event) as address,
        micro.Client(
            transport=wire,
            retries=0,
            transport_options=TransportOptions(compression="gzip"),
            middleware=[per_call],
        ) as client,
    ):
        await client.unary(ECHO, EchoRequest(text="c" * 1000), address=address)
        await client.unary(ECHO, EchoRequest(text="plain"), address=address)
    (gzip_headers, gzip_data), (_, plain_data) = seen
    assert gzip_headers["grpc-encoding"] == "gzip"
    assert "gzip" in gzip_headers["grpc-accept-encoding"]
    assert gzip_data[0] == 1 and len(gzip_data) < 200  # compressed flag, 1000 bytes squeezed
    assert plain_data[0] == 0  # not compressed (grpcio still names the channel's encoding)


async def test_a_gzip_service_compresses_replies_for_clients_that_accept_it(
    wire: Transport,
) -> None:
    gzip = TransportOptions(compression="gzip")
    payload = codec.encode(EchoRequest(text="d" * 1000), EchoRequest)
    frame = b"\x00" + len(payload).to_bytes(4, "big") + payload
    async with serving(transport=wire, transport_options=gzip) as service:
        client = await RawClient.connect(_port(service))
        try:
            sid = client.h2.get_next_available_stream_id()
            headers = grpc_headers("/test.v1.Echo/Echo", ("grpc-accept-encoding", "gzip"))
            client.h2.send_headers(sid, headers)
            client.h2.send_data(sid, frame, end_stream=True)
            await client.flush()
            await client.read_until(lambda _: "grpc-status" in client.headers_of(sid))
        finally:
            await client.aclose()
    got = client.headers_of(sid)
    assert got["grpc-status"] == "0"
    assert got["grpc-encoding"] == "gzip"
    body = b"".join(e.data for e in client.of(h2.events.DataReceived) if e.stream_id == sid)
    assert body[0] == 1
    reply = codec.decode(gzip_module.decompress(body[5:]), EchoReply)
    assert reply.text == "d" * 1000


@pytest.mark.parametrize("default", ["identity", "gzip"])
async def test_a_handler_chooses_its_replys_compression(wire: Transport, default: str) -> None:
    choice = "gzip" if default == "identity" else "identity"  # the other one

    class Choosy(Echo):
        async def echo(self, request: EchoRequest, context: micro.Context) -> EchoReply:
            context.set_compression(choice)
            return EchoReply(text=request.text)

    payload = codec.encode(EchoRequest(text="e" * 1000), EchoRequest)
    async with serving(
        Choosy(), transport=wire, transport_options=TransportOptions(compression=default)
    ) as service:
        client = await RawClient.connect(_port(service))
        try:
            sid = client.h2.get_next_available_stream_id()
            headers = grpc_headers("/test.v1.Echo/Echo", ("grpc-accept-encoding", "gzip"))
            client.h2.send_headers(sid, headers)
            client.h2.send_data(
                sid, b"\x00" + len(payload).to_bytes(4, "big") + payload, end_stream=True
            )
            await client.flush()
            await client.read_until(lambda _: "grpc-status" in client.headers_of(sid))
        finally:
            await client.aclose()
    assert client.headers_of(sid)["grpc-status"] == "0"
    body = b"".join(e.data for e in client.of(h2.events.DataReceived) if e.stream_id == sid)
    assert body[0] == (1 if choice == "gzip" else 0)  # the handler's choice won


async def test_gzip_both_ways_between_micro_peers_and_per_call(wire: Transport) -> None:
    gzip = TransportOptions(compression="gzip")
    seen: list[str | None] = []

    async def spy(call: micro.ClientCall, next_: micro.ClientNext) -> object:
        call.compression = "identity" if call.request.text == "plain" else None
        seen.append(call.compression)
        return await next_(call)

    async with (
        serving(transport=wire, transport_options=gzip) as service,
        micro.Client(
            registry=service.registry,
            transport=wire,
            transport_options=gzip,
            middleware=[spy],
        ) as client,
    ):
        assert (await client.unary(ECHO, EchoRequest(text="b" * 5000), service="echo")).text
        assert (await client.unary(ECHO, EchoRequest(text="plain"), service="echo")).text
    assert seen == [None, "identity"]


async def test_an_unsupported_encoding_is_unimplemented_with_the_accepted_list(
    wire: Transport,
) -> None:
    async with serving(transport=wire) as service:
        client = await RawClient.connect(_port(service))
        try:
            sid = client.h2.get_next_available_stream_id()
            headers = grpc_headers("/test.v1.Echo/Echo", ("grpc-encoding", "br"))
            client.h2.send_headers(sid, headers)
            client.h2.send_data(sid, b"\x01\x00\x00\x00\x01\x00", end_stream=True)
            await client.flush()
            await client.read_until(lambda _: "grpc-status" in client.headers_of(sid))
            got = client.headers_of(sid)
        finally:
            await client.aclose()
    if wire.name == "grpcio":  # grpcio's C-core answers INTERNAL (a README transport note)
        assert got["grpc-status"] == str(Status.INTERNAL.value)
    else:
        assert got["grpc-status"] == str(Status.UNIMPLEMENTED.value)
        assert "gzip" in got["grpc-accept-encoding"]


async def test_a_compressed_message_without_an_encoding_is_internal(wire: Transport) -> None:
    """The compressed flag with no ``grpc-encoding`` is the peer's protocol error: INTERNAL,
    as the gRPC compression spec and grpc-go have it (not the client's bad argument)."""
    async with serving(transport=wire) as service:
        client = await RawClient.connect(_port(service))
        try:
            sid = client.h2.get_next_available_stream_id()
            client.h2.send_headers(sid, grpc_headers("/test.v1.Echo/Echo"))
            client.h2.send_data(sid, b"\x01\x00\x00\x00\x01\x00", end_stream=True)
            await client.flush()
            await client.read_until(lambda _: "grpc-status" in client.headers_of(sid))
            got = client.headers_of(sid)
        finally:
            await client.aclose()
    assert got["grpc-status"] == str(Status.INTERNAL.value)


async def test_a_gzip_bomb_is_refused_as_it_inflates(wire: Transport) -> None:
    bomb = gzip_module.compress(b"\x00" * (16 * MiB))  # 16 KiB on the wire
    async with serving(transport=wire) as service:
        client = await RawClient.connect(_port(service))
        try:
            sid = client.h2.get_next_available_stream_id()
            client.h2.send_headers(
                sid, grpc_headers("/test.v1.Echo/Echo", ("grpc-encoding", "gzip"))
            )
            client.h2.send_data(sid, b"\x01" + len(bomb).to_bytes(4, "big") + bomb, end_stream=True)
            await client.flush()
            await client.read_until(lambda _: "grpc-status" in client.headers_of(sid))
        finally:
            await client.aclose()
    assert client.headers_of(sid)["grpc-status"] == str(Status.RESOURCE_EXHAUSTED.value)


def test_options_are_checked_when_made() -> None:
    with pytest.raises(ValueError, match="compression must be one of gzip, identity"):
        TransportOptions(compression="br")
    with pytest.raises(ValueError, match="max_receive_message_length"):
        TransportOptions(max_receive_message_length=-1)
    with pytest.raises(ValueError, match="idle_timeout"):
        TransportOptions(idle_timeout=0)


# -- unknown methods -------------------------------------------------------------------


async def test_unknown_methods_and_services_are_unimplemented_with_a_content_type(
    wire: Transport,
) -> None:
    async with serving(transport=wire) as service:
        async with grpc.aio.insecure_channel(service.address) as channel:
            for path in ("/test.v1.Echo/Nope", "/no.such.Service/Echo"):
                call = channel.unary_unary(path)
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await call(b"")
                assert info.value.code() is grpc.StatusCode.UNIMPLEMENTED
        client = await RawClient.connect(_port(service))
        try:
            sid = client.h2.get_next_available_stream_id()
            client.h2.send_headers(sid, grpc_headers("/no.such.Service/Echo"), end_stream=True)
            await client.flush()
            await client.read_until(lambda _: "grpc-status" in client.headers_of(sid))
            got = client.headers_of(sid)
        finally:
            await client.aclose()
    assert got["grpc-status"] == str(Status.UNIMPLEMENTED.value)
    assert got["content-type"].startswith("application/grpc")


async def test_micro_clients_read_an_unknown_method_as_unimplemented(wire: Transport) -> None:
    nope = dataclasses.replace(ECHO, name="Echo.Nope", path="/test.v1.Echo/Nope")
    async with (
        serving(transport=wire) as service,
        micro.Client(registry=service.registry, transport=wire, retries=0) as client,
    ):
        with pytest.raises(micro.Error) as info:
            await client.unary(nope, EchoRequest(), service="echo")
    assert info.value.grpc_status is Status.UNIMPLEMENTED


# -- connection management -------------------------------------------------------------


async def test_an_unknown_frame_type_is_ignored(wire: Transport) -> None:
    async with serving(transport=wire) as service:
        client = await RawClient.connect(_port(service))
        try:
            # type 0xfa, no flags, stream 0, 4 bytes: RFC 9113 says ignore it
            await client.write_raw(b"\x00\x00\x04\xfa\x00\x00\x00\x00\x00abcd")
            sid = client.h2.get_next_available_stream_id()
            client.h2.send_headers(sid, grpc_headers("/test.v1.Echo/Echo"))
            payload = codec.encode(EchoRequest(text="still here"), EchoRequest)
            client.h2.send_data(
                sid, b"\x00" + len(payload).to_bytes(4, "big") + payload, end_stream=True
            )
            await client.flush()
            await client.read_until(lambda _: "grpc-status" in client.headers_of(sid))
            assert client.headers_of(sid)["grpc-status"] == "0"
            assert not client.of(h2.events.ConnectionTerminated)
        finally:
            await client.aclose()


async def test_idle_and_half_open_connections_are_closed(wire: Transport) -> None:
    quick = TransportOptions(idle_timeout=0.5, handshake_timeout=0.5)
    async with serving(transport=wire, transport_options=quick) as service:
        port = _port(service)
        idle = await RawClient.connect(port)  # a full HTTP/2 preface, then nothing
        half = await asyncio.open_connection("127.0.0.1", port)  # TCP only, no preface
        try:
            await idle.read_until(lambda _: False, timeout=30)
            assert idle.closed
            async with asyncio.timeout(30):  # read() returns at EOF: the server closed it
                await half[0].read()
        finally:
            await idle.aclose()
            half[1].close()


def _answer_every_request(conn: h2.connection.H2Connection, event: object) -> None:
    if isinstance(event, h2.events.StreamEnded):
        ok = [(":status", "200"), ("content-type", "application/grpc")]
        conn.send_headers(event.stream_id, ok)
        conn.send_data(event.stream_id, b"\x00\x00\x00\x00\x00")
        conn.send_headers(event.stream_id, [("grpc-status", "0")], end_stream=True)


async def test_a_client_closes_its_idle_connections(wire: Transport) -> None:
    hangups: list[float] = []
    quick = TransportOptions(idle_timeout=1.0)
    async with (
        bare_server(_answer_every_request, hangups) as idle,
        bare_server(_answer_every_request) as busy,
        micro.Client(transport=wire, retries=0, transport_options=quick) as client,
    ):
        await client.unary(ECHO, EchoRequest(), address=idle)

        async def closed() -> bool:
            await client.unary(ECHO, EchoRequest(), address=busy)  # keeps the client busy
            return bool(hangups)

        await eventually(closed, what="the idle connection closed by the client")


async def test_a_peer_that_stops_answering_keepalive_pings_is_closed(wire: Transport) -> None:
    pings = TransportOptions(keepalive_time=0.2, keepalive_timeout=0.5)
    async with serving(transport=wire, transport_options=pings) as service:
        client = await RawClient.connect(_port(service))
        try:
            await client.read_until(lambda events: bool(client.of(h2.events.RemoteSettingsChanged)))
            sid = client.h2.get_next_available_stream_id()
            client.h2.send_headers(sid, grpc_headers("/test.v1.Echo/Chat"))  # a call stays open
            await client.flush()
            # from here on the peer reads frames but never answers a PING (h2 queues the
            # ACKs; they are never sent): the server ends the connection (GOAWAY or EOF)
            async with asyncio.timeout(30):
                while data := await client.reader.read(65536):
                    try:
                        events = client.h2.receive_data(data)
                    except h2.exceptions.ProtocolError:  # frames after the server's GOAWAY
                        break
                    if any(isinstance(e, h2.events.ConnectionTerminated) for e in events):
                        break
        finally:
            await client.aclose()


async def test_max_concurrent_streams_is_advertised(wire: Transport) -> None:
    few = TransportOptions(max_concurrent_streams=7)
    async with serving(transport=wire, transport_options=few) as service:
        client = await RawClient.connect(_port(service))
        try:
            await client.read_until(
                lambda _: client.h2.remote_settings.max_concurrent_streams == 7, timeout=10
            )
        finally:
            await client.aclose()


async def test_a_flood_of_streams_reset_by_the_client_is_bounded_with_goaway(
    wire: Transport,
) -> None:
    async with serving(transport=wire) as service:
        client = await RawClient.connect(_port(service))
        try:
            for _ in range(10_000):
                if client.closed or client.of(h2.events.ConnectionTerminated):
                    break
                sid = client.h2.get_next_available_stream_id()
                client.h2.send_headers(sid, grpc_headers("/test.v1.Echo/Echo"))
                client.h2.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
                try:
                    await client.flush()
                except OSError:
                    break
            if wire.name == "grpclib":
                await client.read_until(
                    lambda events: any(
                        isinstance(e, h2.events.ConnectionTerminated) for e in events
                    ),
                    timeout=30,
                )
        finally:
            await client.aclose()
        if wire.name == "grpclib":  # GOAWAY ENHANCE_YOUR_CALM after the bound
            (goaway,) = client.of(h2.events.ConnectionTerminated)
            assert goaway.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
        # grpcio bounds the cost on its own, without GOAWAY; either way the server serves
        async with micro.Client(registry=service.registry, transport=wire) as caller:
            assert (await caller.unary(ECHO, EchoRequest(text="ok"), service="echo")).text == "ok"


# -- client cancel ---------------------------------------------------------------------


async def test_a_client_cancel_sends_rst_stream_cancel(wire: Transport) -> None:
    requests: list[int] = []
    resets: list[int] = []

    def on_event(conn: h2.connection.H2Connection, event: object) -> None:
        """Headers for each request, never a status; RST_STREAM codes recorded."""
        if isinstance(event, h2.events.RequestReceived):
            requests.append(event.stream_id)
            conn.send_headers(
                event.stream_id, [(":status", "200"), ("content-type", "application/grpc")]
            )
        if isinstance(event, h2.events.StreamReset):
            resets.append(int(event.error_code))

    async with bare_server(on_event) as address, micro.Client(transport=wire, retries=0) as client:
        task = asyncio.create_task(client.unary(ECHO, EchoRequest(text="x"), address=address))
        await eventually(lambda: requests, what="the request at the server")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await eventually(lambda: resets, what="a RST_STREAM")
    assert resets == [h2.errors.ErrorCodes.CANCEL]


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
