"""`micro call SERVICE ENDPOINT '{json}'` and `micro stream ...`: call any endpoint of a
running service with JSON in and out, the message types fetched by gRPC reflection
(`protoc_gen_micro.dynamic`)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import click

import micro
from micro import registry as registry_mod
from micro.cli.exits import (
    RemoteError,
    TimedOut,
    UnknownEndpoint,
    UnknownService,
    UsageFailure,
)
from micro.cli.ops import (
    SETUP_SLACK,
    Options,
    emit,
    options_from,
    parse_json,
    parse_metadata,
    registry_options,
    run,
    token_option,
)
from micro.dynamic import Descriptors, DynamicMethod, NotFound, Reflection, Target

__all__ = ["call", "stream"]


def _endpoint_path(records: list[micro.ServiceRecord], service: str, endpoint: str) -> str:
    """The gRPC path of `endpoint` ("Greeter.SayHello", "pkg.Greeter.SayHello" or the path)."""
    wanted = endpoint.strip()
    known: list[str] = []
    for record in records:
        for item in record.endpoints:
            known.append(item.name)
            dotted = item.path.lstrip("/").replace("/", ".")
            if wanted in (item.name, item.path, dotted):
                return item.path
    listing = ", ".join(sorted(set(known))) or "none"
    raise UnknownEndpoint(f"service {service!r} has no endpoint {wanted!r} (endpoints: {listing})")


async def _path_by_reflection(reflection: Reflection, label: str, endpoint: str) -> str:
    """With --address: find "Service.Method" / "pkg.Service.Method" among listed services."""
    service_part, _, method = endpoint.strip().lstrip("/").replace("/", ".").rpartition(".")
    services = await reflection.list_services()
    matches = [s for s in services if service_part in (s, s.rpartition(".")[2])]
    if not service_part or not method or not matches:
        listing = ", ".join(services) or "none"
        raise UnknownEndpoint(f"{label} has no endpoint {endpoint!r} (services: {listing})")
    return f"/{matches[0]}/{method}"


@dataclass(frozen=True)
class CallArgs:
    service: str
    endpoint: str
    data: Any
    address: str | None
    timeout: float
    metadata: list[tuple[str, str]]
    token: str | None = None


@asynccontextmanager
async def _resolved(
    options: Options, args: CallArgs
) -> AsyncIterator[tuple[micro.Client, DynamicMethod, Target]]:
    """A client, the endpoint's DynamicMethod and where to call it."""
    target = Target(service=None if args.address else args.service, address=args.address)
    registry = None if args.address else options.open_registry()
    client = micro.Client(registry=registry, retries=2, tls=options.tls(), token=args.token)
    try:
        async with asyncio.timeout(args.timeout + SETUP_SLACK):
            async with Reflection(client, target, timeout=args.timeout) as reflection:
                if args.address:
                    path = await _path_by_reflection(reflection, args.address, args.endpoint)
                else:
                    assert registry is not None
                    try:
                        records = await registry.get_service(args.service)
                    except registry_mod.NotFound:
                        raise UnknownService(
                            f"service {args.service!r} not found in the registry"
                        ) from None
                    path = _endpoint_path(records, args.service, args.endpoint)
                descriptors = Descriptors(reflection)
                service_name = path.lstrip("/").partition("/")[0]
                try:
                    await descriptors.load_symbol(service_name)
                    method = descriptors.method(path)
                except NotFound as exc:  # run() reports it as an unknown endpoint
                    raise NotFound(f"{target.label}: {exc}") from None
        yield client, method, target
    except TimeoutError:
        raise TimedOut(f"timed out after {args.timeout + SETUP_SLACK:g}s") from None
    finally:
        await client.close()
        if registry is not None:
            await registry.close()


def call_options(func: Callable[..., None]) -> Callable[..., None]:
    decorators: list[Callable[[Callable[..., None]], Callable[..., None]]] = [
        click.argument("words", nargs=-1, metavar="SERVICE ENDPOINT [REQUEST]"),
        click.option(
            "--address",
            help="Call HOST:PORT directly (any gRPC server with reflection): then SERVICE is "
            "left out (or only a label) and ENDPOINT is Service.Method or "
            "package.Service.Method.",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0, min_open=True),
            default=10.0,
            show_default=True,
            help="Deadline of the call in seconds.",
        ),
        click.option(
            "--metadata", "-m", multiple=True, help="KEY=VALUE request metadata (repeatable)."
        ),
        token_option,
        registry_options,
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def _split_words(words: tuple[str, ...], address: str | None) -> tuple[str, str, str]:
    """SERVICE ENDPOINT [REQUEST]; with --address also ENDPOINT [REQUEST] (SERVICE, which
    is then only a label, may be left out: a second word that is JSON is the request)."""
    if address is not None:
        if len(words) == 1 or (len(words) == 2 and words[1].lstrip().startswith(("{", "["))):
            words = (address, *words)
    if len(words) == 2:
        words = (*words, "{}")
    if len(words) != 3:
        usage = "[SERVICE] ENDPOINT [REQUEST] with --address" if address else "SERVICE ENDPOINT"
        raise UsageFailure(f"expected {usage} [REQUEST], got {len(words)} argument(s)")
    service, endpoint, request = words
    return service, endpoint, request


def _call_args(words: tuple[str, ...], kwargs: dict[str, Any]) -> tuple[Options, CallArgs]:
    options = options_from(kwargs)
    service, endpoint, request = _split_words(words, kwargs["address"])
    args = CallArgs(
        service=service,
        endpoint=endpoint,
        data=parse_json(request),
        address=kwargs["address"],
        timeout=kwargs["timeout"],
        metadata=parse_metadata(kwargs["metadata"]),
        token=kwargs["token"] or None,
    )
    return options, args


def _kind_check(method: DynamicMethod, wanted: micro.Kind) -> None:
    kind = method.method.kind
    if kind is wanted:
        return
    hint = {
        micro.Kind.UNARY: "use micro call",
        micro.Kind.SERVER_STREAM: "use micro stream",
    }.get(kind, "client and bidi streaming are not supported by the CLI")
    raise UsageFailure(f"{method.method.name} is a {kind.value} endpoint: {hint}")


@click.command("call")
@call_options
def call(words: tuple[str, ...], **kwargs: Any) -> None:
    """Call ENDPOINT of SERVICE with a JSON REQUEST (default {}); print the JSON reply.

    \b
    micro call helloworld Greeter.SayHello '{"name": "Ada"}'
    micro call --address 127.0.0.1:50051 helloworld.v1.Greeter.SayHello '{"name": "Ada"}'
    """
    options, args = _call_args(words, kwargs)

    async def main() -> dict[str, Any]:
        async with _resolved(options, args) as (client, method, target):
            _kind_check(method, micro.Kind.UNARY)
            message = method.request(args.data)
            reply = await client.unary(
                method.method,
                message,
                service=target.service,
                address=target.address,
                timeout=args.timeout,
                metadata=args.metadata,
            )
            result: dict[str, Any] = method.to_json(reply)
            return result

    with _remote_errors_as_json(options):
        reply = run(main())
    emit(options, json.dumps(reply, indent=2), reply)


@click.command("stream")
@call_options
def stream(words: tuple[str, ...], **kwargs: Any) -> None:
    """Call server-streaming ENDPOINT of SERVICE; print one JSON message per line.

    \b
    micro stream streaming Streamer.Count '{"to": 3}'
    """
    options, args = _call_args(words, kwargs)

    async def main() -> None:
        async with _resolved(options, args) as (client, method, target):
            _kind_check(method, micro.Kind.SERVER_STREAM)
            message = method.request(args.data)
            async with client.server_stream(
                method.method,
                message,
                service=target.service,
                address=target.address,
                timeout=args.timeout,
                metadata=args.metadata,
            ) as replies:
                async for reply in replies:
                    click.echo(json.dumps(method.to_json(reply), separators=(",", ":")))
                    sys.stdout.flush()

    with _remote_errors_as_json(options):
        run(main())


@contextmanager
def _remote_errors_as_json(options: Options) -> Iterator[None]:
    """With --output json, a remote error is also printed on stdout as {"error": {...}}."""
    try:
        yield
    except RemoteError as exc:
        cause = exc.__context__
        if options.json and isinstance(cause, micro.Error):
            click.echo(json.dumps({"error": cause.to_dict()}, separators=(",", ":")))
        raise
