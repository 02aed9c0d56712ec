"""`micro token SUBJECT`: sign a JWT with the deployment's HS256 secret or a private key,
for development, tests and scripts (production tokens come from an identity provider)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from micro.cli.exits import UsageFailure

__all__ = ["token"]


def _read(path: str, what: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise UsageFailure(f"cannot read the {what} {path}: {exc.strerror}") from None
    if not text:
        raise UsageFailure(f"the {what} {path} is empty")
    return text


@click.command("token")
@click.argument("subject")
@click.option("--scope", "-s", "scopes", multiple=True, help="A scope to grant (repeatable).")
@click.option("--type", "kind", default="user", show_default=True, help="The account type.")
@click.option(
    "--ttl",
    type=click.FloatRange(min=1),
    default=3600.0,
    show_default=True,
    help="Seconds the token is valid.",
)
@click.option("--issuer", envvar="MICRO_AUTH_ISSUER", help="iss. Env: MICRO_AUTH_ISSUER.")
@click.option("--audience", envvar="MICRO_AUTH_AUDIENCE", help="aud. Env: MICRO_AUTH_AUDIENCE.")
@click.option(
    "--secret-file",
    envvar="MICRO_AUTH_SECRET_FILE",
    help="File holding the HS256 secret. Env: MICRO_AUTH_SECRET_FILE.",
)
@click.option("--key-file", help="PEM private key (RSA, EC, Ed25519) instead of a secret.")
@click.option("--kid", help="Key id for the header, for verifiers with a JWKS.")
def token(subject: str, **kwargs: Any) -> None:
    """Print a signed JWT for SUBJECT (the services' MICRO_AUTH_* verify it).

    \b
    micro token ada --scope admin --secret-file secret
    """
    try:
        from micro.auth.jwt import Generator
    except ImportError:
        raise UsageFailure(
            "micro token needs the 'auth' extra (pip install 'micro-runtime[auth]')"
        ) from None
    secret_file, key_file = kwargs["secret_file"], kwargs["key_file"]
    if bool(secret_file) == bool(key_file):
        raise UsageFailure("give one of --secret-file (or MICRO_AUTH_SECRET_FILE) and --key-file")
    try:
        generator = Generator(
            secret=_read(secret_file, "secret file") if secret_file else None,
            key=_read(key_file, "key file") if key_file else None,
            issuer=kwargs["issuer"] or None,
            audience=kwargs["audience"] or None,
            kid=kwargs["kid"],
        )
    except (ValueError, TypeError) as exc:  # not a PEM private key, unsupported type
        used = key_file or secret_file
        raise UsageFailure(f"cannot sign with {used}: {' '.join(str(exc).split())}") from None
    click.echo(
        generator.token(subject, scopes=kwargs["scopes"], type=kwargs["kind"], ttl=kwargs["ttl"])
    )
