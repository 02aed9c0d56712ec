"""`micro api`: serve the HTTP/JSON gateway; `micro api routes`: print its route table."""

from __future__ import annotations

from typing import Any

import click

from micro import tls as tls_mod
from micro._config import ConfigError
from micro.address import parse_address
from micro.auth import from_env as auth_from_env
from micro.cli.exits import CliError, UsageFailure
from micro.cli.ops import emit, options_from, registry_options, run, table
from micro.gateway.headers import DEFAULT_ALLOW, DEFAULT_PREFIX, HeaderPolicy
from micro.gateway.routes import DefaultRoutes, RouteTable

__all__ = ["api"]

DEFAULT_ADDRESS = "127.0.0.1:8080"
DEFAULT_MAX_BODY = 4 * 1024 * 1024
#: the HTTPS listener's own settings (the calls to services take MICRO_TLS_*)
HTTPS_ENV = {"cert": "MICRO_API_TLS_CERT", "key": "MICRO_API_TLS_KEY", "ca": "MICRO_API_TLS_CA"}
_HTTPS_NAMES = {
    **tls_mod.ENV,
    "cert": "--https-cert",
    "key": "--https-key",
    "ca": "--https-client-ca",
    "client_auth": "--https-client-ca",
}


def default_route_options(command: Any) -> Any:
    """``--default-routes`` / ``--default-routes-for NAME``: the default routes are opt-in."""
    command = click.option(
        "--default-routes-for",
        "default_routes_for",
        multiple=True,
        metavar="SERVICE",
        help="Serve POST /{service}/{Service}/{Method} for this service's rpcs that have no "
        "google.api.http rule (repeatable).",
    )(command)
    return click.option(
        "--default-routes",
        is_flag=True,
        help="Serve POST /{service}/{Service}/{Method} for every rpc without a "
        "google.api.http rule, of every service. Default: off (it exposes internal methods).",
    )(command)


def _default_routes(kwargs: dict[str, Any]) -> DefaultRoutes:
    return DefaultRoutes(
        every=kwargs.pop("default_routes"), services=frozenset(kwargs.pop("default_routes_for"))
    )


@click.group("api", invoke_without_command=True)
@click.option(
    "--address", default=DEFAULT_ADDRESS, show_default=True, help="HOST:PORT to listen on."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Deadline of a call in seconds when the request has no Micro-Timeout header.",
)
@click.option(
    "--max-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=300.0,
    show_default=True,
    help="Upper bound for a Micro-Timeout header, in seconds.",
)
@click.option(
    "--max-body",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_BODY,
    show_default=True,
    help="Largest request body in bytes; a larger one gets 413.",
)
@click.option(
    "--header",
    "headers",
    multiple=True,
    help="Also pass this request header to the service as metadata (repeatable). "
    f"Always passed: {', '.join(DEFAULT_ALLOW)}.",
)
@click.option(
    "--header-prefix",
    default=DEFAULT_PREFIX,
    show_default=True,
    help="Headers with this prefix pass as metadata, the prefix removed; response metadata "
    "comes back under it ('' turns both off).",
)
@click.option(
    "--cors-origin",
    "cors_origins",
    multiple=True,
    help="Allow cross-origin requests from this origin ('*' for any; repeatable). "
    "Default: CORS off.",
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="On SIGTERM/SIGINT, seconds the requests in flight get to finish.",
)
@click.option("--access-log", is_flag=True, help="Log every request.")
@click.option(
    "--https-cert",
    envvar=HTTPS_ENV["cert"],
    help=f"Serve HTTPS with this certificate chain (PEM). Env: {HTTPS_ENV['cert']}.",
)
@click.option(
    "--https-key", envvar=HTTPS_ENV["key"], help=f"Key of --https-cert. Env: {HTTPS_ENV['key']}."
)
@click.option(
    "--https-client-ca",
    envvar=HTTPS_ENV["ca"],
    help="Require HTTPS clients to present a certificate signed by this CA (PEM). "
    f"Env: {HTTPS_ENV['ca']}.",
)
@default_route_options
@registry_options
@click.pass_context
def api(ctx: click.Context, /, **kwargs: Any) -> None:
    """Serve every registered service over HTTP/JSON, routed by google.api.http rules.

    \b
    micro api --address 127.0.0.1:8080
    micro api --default-routes   # also POST /{service}/{Service}/{Method} for the rest
    micro api routes      # the route table
    """
    if ctx.invoked_subcommand is not None:
        return
    default_routes = _default_routes(kwargs)
    options = options_from(kwargs)
    try:
        from micro.gateway.app import GatewayConfig
        from micro.gateway.serve import bind, serve
    except ImportError as exc:
        raise UsageFailure(
            f"micro api needs the 'api' extra (pip install 'micro-runtime[api]'): {exc}"
        ) from None
    try:
        host, port = parse_address(kwargs["address"])
    except ValueError as exc:
        raise UsageFailure(str(exc)) from None
    policy = HeaderPolicy(
        allow=frozenset(DEFAULT_ALLOW) | {h.lower() for h in kwargs["headers"]},
        prefix=kwargs["header_prefix"].lower(),
        default_timeout=kwargs["timeout"],
        max_timeout=kwargs["max_timeout"],
    )
    https = _https(kwargs)
    try:
        auth = auth_from_env()  # MICRO_AUTH_*: the gateway checks before it calls
    except ConfigError as exc:
        raise UsageFailure(str(exc)) from None
    config = GatewayConfig(
        headers=policy,
        max_body=kwargs["max_body"],
        cors_origins=tuple(kwargs["cors_origins"]),
        tls=options.tls(),
        auth=auth,
        default_routes=default_routes,
    )
    registry = options.open_registry()
    try:
        sock = bind(host, port)
    except OSError as exc:
        raise CliError(f"cannot listen on {kwargs['address']}: {exc.strerror or exc}") from None
    serve(
        registry,
        config,
        sock,
        grace=kwargs["grace"],
        log_level="info" if kwargs["access_log"] else "warning",
        access_log=kwargs["access_log"],
        https=https,
    )


def _https(kwargs: dict[str, Any]) -> tls_mod.TLS | None:
    """The listener's TLS from --https-* (checked now: a bad file is one usage line)."""
    cert, key, ca = kwargs["https_cert"], kwargs["https_key"], kwargs["https_client_ca"]
    if not (cert or key or ca):
        return None
    try:
        https = tls_mod.TLS(
            cert=cert,
            key=key,
            ca=ca,
            client_auth="require" if ca else "none",
            names=_HTTPS_NAMES,
        )
        https.server_files()
    except ConfigError as exc:
        raise UsageFailure(str(exc)) from None
    return https


@api.command("routes")
@default_route_options
@registry_options
def routes(**kwargs: Any) -> None:
    """Print the route table: method, path, service, endpoint and the rule it came from."""
    default_routes = _default_routes(kwargs)
    options = options_from(kwargs)

    async def main() -> RouteTable:
        registry = options.open_registry()
        try:
            return RouteTable.from_records(await registry.list_services(), default_routes)
        finally:
            await registry.close()

    found = run(main())
    rows = [(r.method, r.path, r.service, r.endpoint, r.describe_rule()) for r in found.routes]
    text = table(("METHOD", "PATH", "SERVICE", "ENDPOINT", "RULE"), rows) if rows else "no routes"
    emit(options, text, [r.to_dict() for r in found.routes])
