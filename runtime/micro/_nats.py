"""One NATS connection per event loop, shared helper for the NATS registry and broker.

``nats-py`` is optional (``pip install 'micro-runtime[nats]'``); it is imported only
when a NATS backend is used, and a missing install is a one-line error.

Connection security (:class:`NatsOptions`, in code or from ``MICRO_NATS_*``): TLS with a
CA bundle and an optional client certificate (verified by default, hostname included),
a credentials file (``.creds``: JWT + nkey seed), an nkey seed file, a token (or token
file), or a user and password. Secrets never appear in messages: every URL shown goes
through :func:`redact_url`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient

__all__ = [
    "DEFAULT_URL",
    "LoopConnection",
    "NatsAuthError",
    "NatsOptions",
    "NatsPermissionDenied",
    "NatsUnavailable",
    "permission_denied",
    "redact_url",
]

log = logging.getLogger("micro.nats")

_T = TypeVar("_T")

DEFAULT_URL = "nats://127.0.0.1:4222"


class NatsUnavailable(Exception):
    """nats-py is missing or the server cannot be reached."""


class NatsAuthError(NatsUnavailable):
    """The server was reached but refused the credentials (or the TLS handshake)."""


class NatsPermissionDenied(Exception):
    """The server refused a publish or subscribe for this user's permissions."""


def redact_url(url: str) -> str:
    """``url`` (one URL or a comma-separated list) with any password or token replaced by
    ``***``: ``nats://user:secret@host`` -> ``nats://user:***@host``,
    ``nats://token@host`` -> ``nats://***@host``. Use it wherever a URL is shown."""
    return ",".join(_redact_one(part) for part in url.split(","))


def _redact_one(url: str) -> str:
    if "@" not in url:
        return url
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    userinfo, _, host = rest.rpartition("@")  # the last '@': passwords may contain '@'
    user, colon, _secret = userinfo.partition(":")
    shown = f"{urllib.parse.unquote(user)}:***" if colon else "***"
    return f"{scheme}{sep}{shown}@{host}"


def permission_denied(exc: BaseException | str) -> bool:
    """Whether ``exc`` is the server's "Permissions Violation" for this client."""
    return "permissions violation" in str(exc).lower()


def _auth_failure(exc: BaseException | str) -> bool:
    text = str(exc).lower()
    return (
        "authorization violation" in text
        or "authentication" in text
        or type(exc).__name__ == "AuthorizationError"
    )


def _read_secret(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError as exc:
        raise NatsUnavailable(
            f"cannot read the NATS {what} file {path!r}: {exc.strerror}"
        ) from None


@dataclass(frozen=True)
class NatsOptions:
    """How to authenticate to NATS and whether to use TLS, for the registry and broker.

    ``tls_ca``: CA bundle that verifies the server (default: the system's); ``tls_cert``
    and ``tls_key``: a client certificate (servers with ``verify: true``); TLS is used
    when any ``tls_*`` is set, when the URL is ``tls://``, or when the server requires it.
    ``tls_server_name``: the name to verify instead of the URL's host. ``creds``: a
    ``.creds`` file (decentralized JWT auth); ``nkey``: an nkey seed file; ``token`` /
    ``token_file``; ``user`` / ``password`` (also possible in the URL). Secrets are kept
    out of ``repr``. :meth:`from_env` reads the ``MICRO_NATS_*`` variables."""

    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_server_name: str | None = None
    creds: str | None = None
    nkey: str | None = None
    token: str | None = field(default=None, repr=False)
    token_file: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> NatsOptions:
        """``MICRO_NATS_TLS_CA``, ``MICRO_NATS_TLS_CERT``, ``MICRO_NATS_TLS_KEY``,
        ``MICRO_NATS_TLS_SERVER_NAME``, ``MICRO_NATS_CREDS``, ``MICRO_NATS_NKEY``,
        ``MICRO_NATS_TOKEN``, ``MICRO_NATS_TOKEN_FILE``, ``MICRO_NATS_USER``,
        ``MICRO_NATS_PASSWORD`` (empty means unset)."""

        def get(name: str) -> str | None:
            return environ.get(f"MICRO_NATS_{name}") or None

        return cls(
            tls_ca=get("TLS_CA"),
            tls_cert=get("TLS_CERT"),
            tls_key=get("TLS_KEY"),
            tls_server_name=get("TLS_SERVER_NAME"),
            creds=get("CREDS"),
            nkey=get("NKEY"),
            token=get("TOKEN"),
            token_file=get("TOKEN_FILE"),
            user=get("USER"),
            password=get("PASSWORD"),
        )

    @property
    def uses_tls(self) -> bool:
        return bool(self.tls_ca or self.tls_cert or self.tls_key or self.tls_server_name)

    def ssl_context(self) -> ssl.SSLContext:
        """A client context: the server's certificate and name are verified."""
        if bool(self.tls_cert) != bool(self.tls_key):
            raise NatsUnavailable(
                "NATS TLS: set both a client certificate and its key "
                "(MICRO_NATS_TLS_CERT and MICRO_NATS_TLS_KEY), or neither"
            )
        try:
            context = ssl.create_default_context(cafile=self.tls_ca)
            if self.tls_cert and self.tls_key:
                context.load_cert_chain(self.tls_cert, self.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise NatsUnavailable(f"NATS TLS: cannot load the certificates: {exc}") from None
        return context

    def connect_kwargs(self, url: str) -> dict[str, Any]:
        """Keyword arguments for nats-py's ``connect`` (files are read here)."""
        kwargs: dict[str, Any] = {}
        if self.uses_tls or "tls://" in url:
            kwargs["tls"] = self.ssl_context()
            if self.tls_server_name:
                kwargs["tls_hostname"] = self.tls_server_name
        chosen = [n for n in ("creds", "nkey", "token", "token_file") if getattr(self, n)]
        if len(chosen) > 1:
            raise NatsUnavailable(
                f"NATS: choose one way to authenticate, got {' and '.join(chosen)}"
            )
        if self.creds:
            if not os.path.isfile(self.creds):
                raise NatsUnavailable(f"NATS credentials file {self.creds!r} does not exist")
            kwargs["user_credentials"] = self.creds
        if self.nkey:
            if not os.path.isfile(self.nkey):
                raise NatsUnavailable(f"NATS nkey seed file {self.nkey!r} does not exist")
            kwargs["nkeys_seed"] = self.nkey
        if self.token_file:
            kwargs["token"] = _read_secret(self.token_file, "token")
        elif self.token:
            kwargs["token"] = self.token
        if self.user:
            kwargs["user"] = self.user
        if self.password:
            kwargs["password"] = self.password
        if "user_credentials" in kwargs or "nkeys_seed" in kwargs:
            try:
                import nkeys  # type: ignore[import-untyped]  # noqa: F401
            except ImportError:
                raise NatsUnavailable(
                    "NATS credentials and nkeys need the nkeys package: "
                    "pip install 'micro-runtime[nats]'"
                ) from None
        return kwargs


class LoopConnection:
    """Connects lazily, reconnects forever once connected, and starts over when used
    from a different event loop (e.g. after another ``asyncio.run``)."""

    def __init__(
        self,
        url: str | None,
        *,
        name: str,
        connect_timeout: float = 3.0,
        options: NatsOptions | None = None,
    ) -> None:
        self.url = url or DEFAULT_URL
        #: the URL as it may be shown (no password or token)
        self.shown = redact_url(self.url)
        self.options = NatsOptions.from_env() if options is None else options
        #: the server's last "Permissions Violation" for this connection (it arrives
        #: asynchronously: a refused publish itself only times out)
        self.last_permission_error = ""
        self._denied_waiters: list[tuple[str, asyncio.Future[str]]] = []
        self.name = name
        self.connect_timeout = connect_timeout
        self._nc: NatsClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        self.on_reconnect: list[Callable[[], Awaitable[None]]] = []

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected and self._fresh()

    def _fresh(self) -> bool:
        try:
            return self._loop is asyncio.get_running_loop()
        except RuntimeError:
            return False

    async def get(self) -> NatsClient:
        if self._nc is not None and self._fresh():
            return self._nc
        if not self._fresh():
            self._nc, self._lock = None, None
            self._loop = asyncio.get_running_loop()
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._nc is None:
                self._nc = await self._connect()
        return self._nc

    async def _connect(self) -> NatsClient:
        try:
            from nats.aio.client import Client
        except ImportError:
            raise NatsUnavailable(
                "the NATS backends need nats-py: pip install 'micro-runtime[nats]'"
            ) from None

        errors: list[Exception] = []
        # A refused credential or a failed TLS handshake will not heal by retrying:
        # the first connect gives up on it at once instead of at connect_timeout.
        fatal: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def on_error(exc: Exception) -> None:
            if permission_denied(exc):
                self.last_permission_error = text = str(exc).strip().strip("'")
                for subject, waiter in self._denied_waiters:
                    # nats-py lower-cases the server's message, subject included
                    if subject.lower() in text.lower() and not waiter.done():
                        waiter.set_result(text)
            errors.append(exc)
            del errors[:-5]
            if not fatal.done() and (_auth_failure(exc) or isinstance(exc, ssl.SSLError)):
                fatal.set_result(None)
            log.debug("%s: nats: %s", self.name, exc)

        async def on_disconnect() -> None:
            log.info("%s: disconnected from NATS at %s", self.name, self.shown)

        async def on_reconnect() -> None:
            log.info("%s: reconnected to NATS at %s", self.name, self.shown)
            for callback in list(self.on_reconnect):
                try:
                    await callback()
                except Exception as exc:  # e.g. re-registering: retried, so one line
                    log.warning(
                        "%s: after reconnecting: %s", self.name, str(exc) or type(exc).__name__
                    )

        extra = self.options.connect_kwargs(self.url)
        nc = Client()
        connecting = asyncio.ensure_future(
            asyncio.wait_for(
                nc.connect(
                    servers=[u.strip() for u in self.url.split(",")],
                    name=self.name,
                    error_cb=on_error,
                    disconnected_cb=on_disconnect,
                    reconnected_cb=on_reconnect,
                    connect_timeout=1,
                    reconnect_time_wait=0.25,  # type: ignore[arg-type]
                    max_reconnect_attempts=-1,
                    ping_interval=5,
                    **extra,
                ),
                timeout=self.connect_timeout,
            )
        )
        try:
            pending: list[asyncio.Future[Any]] = [connecting, fatal]
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if not connecting.done():
                connecting.cancel()
                with contextlib.suppress(BaseException):
                    await connecting
                raise errors[-1]
            connecting.result()
        except Exception as exc:
            try:
                await nc.close()
            except Exception:
                pass
            raise self._connect_error(exc, errors) from None
        return nc

    def _connect_error(self, exc: Exception, errors: list[Exception]) -> NatsUnavailable:
        seen = [exc, *errors]
        for error in seen:
            if _auth_failure(error):
                return NatsAuthError(
                    f"NATS at {self.shown} refused the credentials (authorization failed): "
                    "check the user and password, token, nkey or .creds file"
                )
        for error in seen:
            if isinstance(error, ssl.SSLError) or "certificate" in str(error).lower():
                detail = getattr(error, "verify_message", "") or str(error)
                if "alert" in detail.lower() and not self.options.tls_cert:
                    hint = "; the server may require a client certificate: MICRO_NATS_TLS_CERT/KEY"
                elif "issuer" in detail.lower() or "self-signed" in detail.lower():
                    hint = "; set MICRO_NATS_TLS_CA to the CA that signed the server's certificate"
                else:
                    hint = ""
                return NatsAuthError(f"NATS at {self.shown}: TLS handshake failed: {detail}{hint}")
        for error in seen:
            if "tls" in str(error).lower() and "required" in str(error).lower():
                return NatsAuthError(
                    f"NATS at {self.shown} requires TLS: set MICRO_NATS_TLS_CA "
                    "(and a client certificate if it asks for one)"
                )
        detail = next((str(e) for e in seen if str(e)), "")
        return NatsUnavailable(
            f"cannot reach NATS at {self.shown} within {self.connect_timeout:g}s"
            + (f": {redact_url(detail)}" if detail else "")
        )

    async def unless_denied(self, call: Awaitable[_T], subject: str) -> _T:
        """Await ``call``, or raise :class:`NatsPermissionDenied` as soon as the server
        reports a permissions violation naming ``subject`` (a refused publish gets no
        reply, so without this it would only time out)."""
        waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        entry = (subject, waiter)
        self._denied_waiters.append(entry)
        task = asyncio.ensure_future(call)
        try:
            pending: list[asyncio.Future[Any]] = [task, waiter]
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                return task.result()
            task.cancel()
            raise NatsPermissionDenied(waiter.result())
        finally:
            self._denied_waiters.remove(entry)
            if not task.done():
                task.cancel()

    async def close(self) -> None:
        nc, self._nc = self._nc, None
        if nc is not None and self._fresh() and not nc.is_closed:
            try:
                await nc.close()
            except Exception:
                log.debug("%s: closing the NATS connection failed", self.name, exc_info=True)
