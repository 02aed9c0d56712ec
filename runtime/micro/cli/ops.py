"""Shared by the runtime commands (`cli_ops`, `cli_call`, `cli_publish`): registry and
output flags, running a coroutine with errors mapped to exit codes, and text tables.

The registry (and broker) come from the same environment variables as the runtime
(`MICRO_REGISTRY`, `MICRO_REGISTRY_PATH`, `MICRO_REGISTRY_ADDRESS`, `MICRO_BROKER`,
`MICRO_BROKER_ADDRESS`), and TLS from the `MICRO_TLS_*` variables (`micro.tls`), each
overridable by a flag. Output is for people by default and
JSON with `--output json`. Failures are one `Error: ...` line and an exit code from
`micro.cli.exits`; :func:`run` maps the library's exceptions to them, in one place.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import click

import micro
from micro import dynamic
from micro import registry as registry_mod
from micro import tls as tls_mod
from micro._config import ConfigError
from micro.cli.exits import (
    CliError,
    InvalidField,
    InvalidJson,
    PermissionDenied,
    RemoteError,
    TimedOut,
    Unauthenticated,
    UnknownEndpoint,
    UnknownService,
    Unreachable,
    UsageFailure,
)
from micro.errors import Origin
from micro.status import Status

T = TypeVar("T")

#: slack on top of --timeout for discovery and reflection before the whole command gives up
SETUP_SLACK = 5.0


@dataclass(frozen=True)
class Options:
    registry: str | None
    registry_path: str | None
    registry_address: str | None
    output: str
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    insecure_skip_verify: bool = False

    @property
    def json(self) -> bool:
        return self.output == "json"

    def environ(self) -> dict[str, str]:
        env = dict(os.environ)
        for key, value in (
            ("MICRO_REGISTRY", self.registry),
            ("MICRO_REGISTRY_PATH", self.registry_path),
            ("MICRO_REGISTRY_ADDRESS", self.registry_address),
            (tls_mod.ENV["ca"], self.tls_ca),
            (tls_mod.ENV["cert"], self.tls_cert),
            (tls_mod.ENV["key"], self.tls_key),
            (tls_mod.ENV["insecure_skip_verify"], "true" if self.insecure_skip_verify else None),
        ):
            if value is not None:
                env[key] = value
        return env

    def tls(self) -> tls_mod.TLS | Literal[False]:
        """The TLS settings of the command's calls (``False``: plaintext)."""
        try:
            return tls_mod.TLS.from_env(self.environ()) or False
        except ConfigError as exc:
            raise UsageFailure(str(exc)) from None

    def open_registry(self) -> micro.Registry:
        try:
            return registry_mod.from_env(self.environ())
        except ValueError as exc:
            raise UsageFailure(str(exc)) from None
        except ImportError as exc:  # an optional backend's extra is not installed
            raise UsageFailure(f"registry backend unavailable: {exc}") from None


def registry_options(func: Callable[..., None]) -> Callable[..., None]:
    """The registry selection and output flags every command here takes."""
    decorators = [
        click.option(
            "--registry",
            envvar="MICRO_REGISTRY",
            help="Registry backend (local, memory, nats). Env: MICRO_REGISTRY; default local.",
        ),
        click.option(
            "--registry-path",
            envvar="MICRO_REGISTRY_PATH",
            help="SQLite file of the local registry. Env: MICRO_REGISTRY_PATH.",
        ),
        click.option(
            "--registry-address",
            envvar="MICRO_REGISTRY_ADDRESS",
            help="URL of a networked registry (nats). Env: MICRO_REGISTRY_ADDRESS.",
        ),
        click.option(
            "--tls-ca",
            envvar=tls_mod.ENV["ca"],
            help="Verify services against this CA bundle (PEM) and call them over TLS. "
            f"Env: {tls_mod.ENV['ca']}.",
        ),
        click.option(
            "--tls-cert",
            envvar=tls_mod.ENV["cert"],
            help=f"Client certificate (PEM) for mTLS. Env: {tls_mod.ENV['cert']}.",
        ),
        click.option(
            "--tls-key",
            envvar=tls_mod.ENV["key"],
            help=f"Key of --tls-cert (PEM). Env: {tls_mod.ENV['key']}.",
        ),
        click.option(
            "--insecure-skip-verify",
            is_flag=True,
            help="Call over TLS WITHOUT verifying the service's certificate (tests only; "
            "grpclib transport only).",
        ),
        click.option(
            "--output",
            "-o",
            type=click.Choice(["text", "json"]),
            default="text",
            show_default=True,
            help="Human-readable text, or JSON for scripts.",
        ),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def options_from(kwargs: dict[str, Any]) -> Options:
    return Options(
        registry=kwargs.pop("registry"),
        registry_path=kwargs.pop("registry_path"),
        registry_address=kwargs.pop("registry_address"),
        output=kwargs.pop("output"),
        tls_ca=kwargs.pop("tls_ca"),
        tls_cert=kwargs.pop("tls_cert"),
        tls_key=kwargs.pop("tls_key"),
        insecure_skip_verify=kwargs.pop("insecure_skip_verify"),
    )


def _quiet_logs() -> None:
    """The runtime's warnings (registry fallbacks, retries) would break the one-line errors."""
    for name in ("micro", "grpclib", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def run(coro: Awaitable[T]) -> T:
    _quiet_logs()

    async def main() -> T:
        return await coro

    try:
        return asyncio.run(main())
    except micro.Error as exc:
        raise classify(exc) from None
    except ConfigError as exc:  # MICRO_SELECTOR=bogus, a malformed address
        raise UsageFailure(str(exc)) from None
    except registry_mod.RegistryError as exc:
        raise Unreachable(f"registry unavailable: {exc}") from None
    except dynamic.InvalidMessage as exc:
        raise InvalidField(str(exc)) from None
    except dynamic.NotFound as exc:
        raise UnknownEndpoint(str(exc)) from None
    except dynamic.Unreachable as exc:
        raise Unreachable(str(exc)) from None
    except OSError as exc:
        raise Unreachable(str(exc)) from None


def classify(exc: micro.Error) -> CliError:
    """A remote error, or a timeout or unreachable node (the client's own, or a bare
    status from a plain gRPC server)."""
    if exc.origin is not Origin.REMOTE:
        if exc.grpc_status is Status.DEADLINE_EXCEEDED:
            return TimedOut(f"timed out: {exc.detail}")
        if exc.grpc_status is Status.UNAVAILABLE:
            return Unreachable(exc.detail or "service unavailable")
    described = (
        f"id={exc.id} code={exc.code} status={json.dumps(exc.status)} "
        f"detail={json.dumps(exc.detail)}"
    )
    if exc.grpc_status is Status.UNAUTHENTICATED:
        return Unauthenticated(
            f"unauthenticated (401; pass --token or set MICRO_TOKEN / MICRO_TOKEN_FILE): "
            f"{described}"
        )
    if exc.grpc_status is Status.PERMISSION_DENIED:
        return PermissionDenied(f"permission denied (403; the token lacks a scope): {described}")
    return RemoteError(f"remote error: {described}")


def emit(options: Options, text: str, data: object) -> None:
    if options.json:
        click.echo(json.dumps(data, separators=(",", ":")))
    else:
        click.echo(text)


def table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )


async def get_records(options: Options, service: str) -> list[micro.ServiceRecord]:
    registry = options.open_registry()
    try:
        return await registry.get_service(service)
    except registry_mod.NotFound:
        raise UnknownService(f"service {service!r} not found in the registry") from None
    finally:
        await registry.close()


def parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidJson(f"invalid JSON: {exc}") from None


def token_option(func: Callable[..., None]) -> Callable[..., None]:
    """``--token`` (env ``MICRO_TOKEN``; ``MICRO_TOKEN_FILE`` names a file holding it)."""
    return click.option(
        "--token",
        envvar="MICRO_TOKEN",
        help="Bearer token sent as 'authorization'. Env: MICRO_TOKEN (or a file named by "
        "MICRO_TOKEN_FILE, which keeps it out of the process list).",
    )(func)


def parse_metadata(pairs: tuple[str, ...]) -> list[tuple[str, str]]:
    out = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageFailure(f"metadata must be KEY=VALUE, got {pair!r}")
        out.append((key.strip().lower(), value))
    return out
