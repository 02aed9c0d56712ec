"""`micro services`, `micro describe SERVICE`, `micro health SERVICE`: what the registry
knows, and whether each node answers grpc.health.v1."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import click

import micro
from micro.cli.exits import EXIT_FAILURE
from micro.cli.ops import (
    emit,
    get_records,
    options_from,
    registry_options,
    run,
    table,
)
from micro.errors import Status
from micro.health import HEALTH_SPEC, HealthCheckRequest, ServingStatus

__all__ = ["describe", "health", "services"]

# -- services / describe ---------------------------------------------------------------


@click.command("services")
@registry_options
def services(**kwargs: Any) -> None:
    """List the services in the registry."""
    options = options_from(kwargs)

    async def main() -> list[micro.ServiceRecord]:
        registry = options.open_registry()
        try:
            return await registry.list_services()
        finally:
            await registry.close()

    records = run(main())
    rows = [(r.name, r.version, str(len(r.nodes)), str(len(r.endpoints))) for r in records]
    text = table(("NAME", "VERSION", "NODES", "ENDPOINTS"), rows) if rows else "no services"
    data = [
        {
            "name": r.name,
            "version": r.version,
            "nodes": len(r.nodes),
            "endpoints": [e.name for e in r.endpoints],
        }
        for r in records
    ]
    emit(options, text, data)


def _pairs(metadata: Mapping[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in metadata.items())


def _describe_text(record: micro.ServiceRecord) -> Iterator[str]:
    yield f"service {record.name} (version {record.version})"
    if record.metadata:
        yield f"  metadata: {_pairs(record.metadata)}"
    yield "  nodes:"
    for node in record.nodes:
        shown = {k: v for k, v in node.metadata.items() if k != "metrics"}
        yield f"    {node.id}  {node.address}  {_pairs(shown)}".rstrip()
        # what micro.telemetry advertises: where the node serves /metrics, if it does
        yield f"      metrics: {node.metadata.get('metrics') or 'not exported'}"
    yield "  endpoints:"
    for endpoint in record.endpoints:
        yield (
            f"    {endpoint.name}  {endpoint.kind}  {endpoint.request} -> {endpoint.response}"
            f"  {endpoint.path}"
        )
        for key, value in endpoint.metadata.items():
            yield f"      {key}: {value}"


@click.command("describe")
@click.argument("service")
@registry_options
def describe(service: str, **kwargs: Any) -> None:
    """Show SERVICE's nodes, endpoints and metadata."""
    options = options_from(kwargs)
    records = run(get_records(options, service))
    text = "\n".join(line for record in records for line in _describe_text(record))
    emit(options, text, [record.to_dict() for record in records])


# -- health ----------------------------------------------------------------------------

HEALTH_CHECK = HEALTH_SPEC.methods[0]


@dataclass(frozen=True)
class NodeHealth:
    service: str
    version: str
    node: str
    address: str
    status: str
    detail: str = ""

    @property
    def serving(self) -> bool:
        return self.status == ServingStatus.SERVING.name


async def _check_node(
    client: micro.Client, record: micro.ServiceRecord, node: micro.Node, timeout: float
) -> NodeHealth:
    def result(status: str, detail: str = "") -> NodeHealth:
        return NodeHealth(record.name, record.version, node.id, node.address, status, detail)

    try:
        reply = await client.unary(
            HEALTH_CHECK, HealthCheckRequest(service=""), address=node.address, timeout=timeout
        )
    except micro.Error as exc:
        if exc.grpc_status is Status.DEADLINE_EXCEEDED:
            return result("TIMEOUT", exc.detail)
        if exc.grpc_status is Status.UNAVAILABLE:
            return result("UNREACHABLE", exc.detail)
        return result("ERROR", f"{exc.code} {exc.status}: {exc.detail}")
    return result(ServingStatus(reply.status).name)


@click.command("health")
@click.argument("service")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=5.0,
    show_default=True,
    help="Seconds to wait for each node.",
)
@registry_options
def health(service: str, timeout: float, **kwargs: Any) -> None:
    """Check every node of SERVICE with grpc.health.v1.Health/Check.

    Exits 0 when every node is SERVING, 1 when any is not."""
    options = options_from(kwargs)

    async def main() -> list[NodeHealth]:
        records = await get_records(options, service)
        client = micro.Client(registry=micro.MemoryRegistry(), retries=0, tls=options.tls())
        try:
            return list(
                await asyncio.gather(
                    *(
                        _check_node(client, record, node, timeout)
                        for record in records
                        for node in record.nodes
                    )
                )
            )
        finally:
            await client.close()

    results = run(main())
    rows = [(r.node, r.address, r.status, r.detail) for r in results]
    emit(
        options,
        table(("NODE", "ADDRESS", "STATUS", "DETAIL"), rows),
        [r.__dict__ for r in results],
    )
    if not all(r.serving for r in results):
        sys.exit(EXIT_FAILURE)
