"""A plain grpcio server (not micro) serving `gateway.v1.Statuses`, registered by hand in the
local registry, so the gateway meets bare gRPC statuses: `python -m tests.gateway.grpc_server
NAME NODE`. Prints `READY <address>`; SIGTERM deregisters and stops it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "golden-pb2"))

import grpc
from gateway.v1 import gateway_pb2
from gateway.v1.gateway_micro import STATUSES_RAISE
from grpc_reflection.v1alpha import reflection

import micro
from micro import registry as registry_mod

CODES = {code.value[0]: code for code in grpc.StatusCode}


async def raise_status(
    request: gateway_pb2.RaiseRequest, context: grpc.aio.ServicerContext
) -> gateway_pb2.RaiseReply:
    if request.code:
        await context.abort(CODES[request.code], request.message)
    return gateway_pb2.RaiseReply()


def endpoint() -> micro.registry.Endpoint:
    rules = [
        {
            "method": r.method,
            "path": r.path,
            "body": r.body,
            "response_body": r.response_body,
            "custom": r.custom,
        }
        for r in STATUSES_RAISE.http_rules
    ]
    return micro.registry.Endpoint(
        name=STATUSES_RAISE.name,
        path=STATUSES_RAISE.path,
        kind=STATUSES_RAISE.kind.value,
        request=STATUSES_RAISE.request_name,
        response=STATUSES_RAISE.response_name,
        metadata={"http": json.dumps(rules)},
    )


async def main(name: str, node: str) -> None:
    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler(
        "gateway.v1.Statuses",
        {
            "Raise": grpc.unary_unary_rpc_method_handler(
                raise_status,
                request_deserializer=gateway_pb2.RaiseRequest.FromString,
                response_serializer=gateway_pb2.RaiseReply.SerializeToString,
            )
        },
    )
    server.add_generic_rpc_handlers((handler,))
    reflection.enable_server_reflection(("gateway.v1.Statuses", reflection.SERVICE_NAME), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    address = f"127.0.0.1:{port}"
    registry = registry_mod.from_env(os.environ)
    record = micro.ServiceRecord(
        name=name,
        nodes=(micro.registry.Node(id=f"{name}-{node}", address=address),),
        endpoints=(endpoint(),),
    )
    await registry.register(record, ttl=120)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print(f"READY {address}", flush=True)
    await stop.wait()
    await registry.deregister(record)
    await registry.close()
    await server.stop(1)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
