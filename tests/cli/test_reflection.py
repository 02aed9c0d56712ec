"""gRPC server reflection on every micro.Service, checked with standard clients: grpcio
(grpcio-reflection's ProtoReflectionDescriptorDatabase and raw v1 streams) and buf curl;
and `micro call` against a plain grpcio server that serves grpcio's own reflection."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor_pb2 import FileDescriptorProto
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha import reflection, reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

import micro
from golden.helloworld.v1.helloworld_micro import GREETER_SPEC
from golden.shop.orders.v1.orders_micro import (
    ORDER_SPEC,
    OrderHandler,
    register_order_handler,
)
from golden.shop.orders.v1.refunds_micro import (
    REFUNDS_SPEC,
    RefundsHandler,
    register_refunds_handler,
)
from tests.cli.helpers import ROOT
from tests.cli.helpers import micro as run_micro
from tests.cluster import Cluster
from tests.tooling.test_ci_configs import buf

BUILTIN = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
]
E2E = ["helloworld.v1.Greeter", "names.v1.Keywords", "streaming.v1.Streamer"]


def test_embedded_builtin_descriptors_are_current() -> None:
    """runtime/micro/_builtin/ (the built-in services' messages, specs and descriptors) is
    what the plugins generate for runtime/protos/ today."""
    result = subprocess.run(
        [sys.executable, "-m", "scripts.builtin_protos", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.fixture
def channel(cluster: Cluster) -> Iterator[grpc.Channel]:
    node = cluster.start("shop", "a")
    with grpc.insecure_channel(node.address) as ch:
        yield ch


def test_grpcio_descriptor_database_resolves_and_calls(channel: grpc.Channel) -> None:
    database = ProtoReflectionDescriptorDatabase(channel)
    assert sorted(database.get_services()) == sorted(BUILTIN + E2E)
    pool = DescriptorPool(database)
    method = pool.FindServiceByName("streaming.v1.Streamer").methods_by_name["Count"]
    request_class = message_factory.GetMessageClass(method.input_type)
    reply_class = message_factory.GetMessageClass(method.output_type)
    count = channel.unary_stream(
        "/streaming.v1.Streamer/Count",
        request_serializer=request_class.SerializeToString,
        response_deserializer=reply_class.FromString,
    )
    assert [r.n for r in count(request_class(to=3), timeout=10)] == [1, 2, 3]
    health = pool.FindMessageTypeByName("grpc.health.v1.HealthCheckResponse")
    assert [v.name for v in health.enum_types_by_name["ServingStatus"].values][:2] == [
        "UNKNOWN",
        "SERVING",
    ]
    with pytest.raises(KeyError):
        pool.FindMessageTypeByName("nope.v1.Nope")


def _ask(channel: grpc.Channel, version: str, requests: list[Any]) -> list[Any]:
    """One reflection stream on `version` (v1 or v1alpha: the same wire format)."""
    info = channel.stream_stream(
        f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    return list(info(iter(requests), timeout=10))


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_every_request_kind(channel: grpc.Channel, version: str) -> None:
    Request = reflection_pb2.ServerReflectionRequest
    answers = _ask(
        channel,
        version,
        [
            Request(host="h", list_services=""),
            Request(file_by_filename="helloworld/v1/helloworld.proto"),
            Request(file_containing_symbol="streaming.v1.Streamer.Echo"),
            Request(file_by_filename="nope.proto"),
            Request(file_containing_symbol="nope.Nope"),
            Request(
                file_containing_extension=reflection_pb2.ExtensionRequest(
                    containing_type="helloworld.v1.HelloRequest", extension_number=100
                )
            ),
            Request(all_extension_numbers_of_type="helloworld.v1.HelloRequest"),
            Request(all_extension_numbers_of_type="nope.Nope"),
            Request(),
            Request(list_services=""),  # the stream is still usable after errors
        ],
    )
    kinds = [a.WhichOneof("message_response") for a in answers]
    assert kinds == [
        "list_services_response",
        "file_descriptor_response",
        "file_descriptor_response",
        *["error_response"] * 3,
        "all_extension_numbers_response",
        *["error_response"] * 2,
        "list_services_response",
    ]
    assert answers[0].valid_host == "h"
    assert answers[0].original_request.HasField("list_services")
    names = sorted(s.name for s in answers[0].list_services_response.service)
    assert names == sorted(BUILTIN + E2E)
    hello = FileDescriptorProto.FromString(
        answers[1].file_descriptor_response.file_descriptor_proto[0]
    )
    assert hello.name == "helloworld/v1/helloworld.proto"
    assert [s.name for s in hello.service] == ["Greeter"]
    streaming = FileDescriptorProto.FromString(
        answers[2].file_descriptor_response.file_descriptor_proto[0]
    )
    assert streaming.package == "streaming.v1"
    codes = [a.error_response.error_code for a in answers if a.HasField("error_response")]
    assert codes == [
        grpc.StatusCode.NOT_FOUND.value[0],
        grpc.StatusCode.NOT_FOUND.value[0],
        grpc.StatusCode.NOT_FOUND.value[0],
        grpc.StatusCode.NOT_FOUND.value[0],
        grpc.StatusCode.INVALID_ARGUMENT.value[0],
    ]
    assert "nope.proto" in answers[3].error_response.error_message
    numbers = answers[6].all_extension_numbers_response
    assert (numbers.base_type_name, list(numbers.extension_number)) == (
        "helloworld.v1.HelloRequest",
        [],
    )


def test_a_file_comes_with_its_dependencies() -> None:
    """The files embedded for shop.orders.v1 (it imports shop/common/v1/money.proto)."""
    service = micro.Service("orders")
    register_order_handler(service, OrderHandler())
    files = service.reflection.files_for("shop/orders/v1/orders.proto")
    assert [f.name for f in files] == ["shop/orders/v1/orders.proto", "shop/common/v1/money.proto"]
    pool = DescriptorPool()
    for file in reversed(files):
        pool.Add(FileDescriptorProto.FromString(file.descriptor))
    assert pool.FindMessageTypeByName("shop.common.v1.Money.Range").full_name


def test_files_linked_from_another_generated_module() -> None:
    """refunds.proto imports orders.proto, which has its own micro module: refunds' module
    embeds only its own file and collects the rest from orders' module, each file once."""
    assert [f.name for f in REFUNDS_SPEC.files] == [
        "shop/orders/v1/refunds.proto",
        "shop/orders/v1/orders.proto",
        "shop/common/v1/money.proto",
    ]
    assert REFUNDS_SPEC.files[1] is ORDER_SPEC.files[0]
    service = micro.Service("refunds")
    register_refunds_handler(service, RefundsHandler())
    files = service.reflection.files_for("shop/orders/v1/refunds.proto")
    pool = DescriptorPool()
    for file in reversed(files):
        pool.Add(FileDescriptorProto.FromString(file.descriptor))
    method = pool.FindMethodByName("shop.orders.v1.Refunds.Refund")
    line = method.input_type.fields_by_name["lines"].message_type
    assert line is not None and line.full_name == "shop.orders.v1.Order.Line"


def test_reflection_streams_do_not_hold_up_a_graceful_stop(cluster: Cluster) -> None:
    node = cluster.start("shop", "a")
    with grpc.insecure_channel(node.address) as channel:
        info = channel.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        pending: list[Any] = [reflection_pb2.ServerReflectionRequest(list_services="")]

        def requests() -> Iterator[Any]:
            yield pending.pop()
            channel_blocked.result()  # keep the stream open until the node is gone
            return

        channel_blocked: futures.Future[None] = futures.Future()
        responses = info(requests(), timeout=60)
        assert next(responses).HasField("list_services_response")
        assert node.terminate() == 0
        channel_blocked.set_result(None)
    assert "still running after" not in node.log, node.log


# -- buf curl --------------------------------------------------------------------------


def _buf_curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [buf(), "curl", "--protocol", "grpc", "--http2-prior-knowledge", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_buf_curl_lists_and_calls_a_micro_service(cluster: Cluster) -> None:
    node = cluster.start("shop", "a")
    url = f"http://{node.address}"
    listed = _buf_curl("--list-methods", url)
    assert listed.returncode == 0, listed.stderr
    methods = listed.stdout.split()
    assert "helloworld.v1.Greeter/SayHello" in methods
    assert "streaming.v1.Streamer/Count" in methods
    assert "grpc.health.v1.Health/Check" in methods
    echo = _buf_curl("-d", '{"text": "hi"}', f"{url}/streaming.v1.Streamer/Echo")
    assert echo.returncode == 0, echo.stderr
    assert json.loads(echo.stdout)["text"] == "hi from a"
    count = _buf_curl("-d", '{"to": 2}', f"{url}/streaming.v1.Streamer/Count")
    assert count.returncode == 0, count.stderr
    assert count.stdout.split() == ["{", '"n":', "1", "}", "{", '"n":', "2", "}"]
    alpha = _buf_curl("--reflect-protocol", "grpc-v1alpha", "--list-services", url)
    assert alpha.returncode == 0, alpha.stderr
    assert sorted(alpha.stdout.split()) == sorted(BUILTIN + E2E)
    failed = _buf_curl(
        "-d", '{"text": "x", "fail": "not_found"}', f"{url}/streaming.v1.Streamer/Echo"
    )
    assert failed.returncode != 0
    assert "no such thing: x" in failed.stderr


# -- micro call against a plain grpcio server with grpcio's own reflection (v1alpha only) --


@pytest.fixture
def grpcio_server() -> Iterator[str]:
    """A non-micro gRPC server: helloworld by hand, grpcio-reflection from a pool built
    from the embedded descriptor."""
    pool = DescriptorPool()
    pool.Add(FileDescriptorProto.FromString(GREETER_SPEC.files[0].descriptor))
    method = pool.FindServiceByName("helloworld.v1.Greeter").methods_by_name["SayHello"]
    request_class = message_factory.GetMessageClass(method.input_type)
    reply_class = message_factory.GetMessageClass(method.output_type)

    def say_hello(request: Any, context: grpc.ServicerContext) -> Any:
        return reply_class(message=f"grpcio says hi to {request.name}")

    handler = grpc.method_handlers_generic_handler(
        "helloworld.v1.Greeter",
        {
            "SayHello": grpc.unary_unary_rpc_method_handler(
                say_hello,
                request_deserializer=request_class.FromString,
                response_serializer=reply_class.SerializeToString,
            )
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    reflection.enable_server_reflection(
        ["helloworld.v1.Greeter", reflection.SERVICE_NAME], server, pool=pool
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None)


def test_micro_call_any_grpc_server_with_reflection(cluster: Cluster, grpcio_server: str) -> None:
    result = run_micro(
        cluster,
        "call",
        "--address",
        grpcio_server,
        "greeter",
        "Greeter.SayHello",
        '{"name": "micro"}',
        "-o",
        "json",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"message": "grpcio says hi to micro"}
