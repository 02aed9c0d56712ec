"""TLS and mTLS settings, one type for every part that speaks gRPC.

:class:`TLS` holds file names (PEM): this process's own certificate and key (its server
identity, and its client identity for mTLS), the CA bundle peers are verified against
(``None``: the system's trust store), whether a server asks for client certificates, a
server-name override, and the loudly named opt-out ``insecure_skip_verify``.

``Service``, ``Client``, the embedded broker, the CLI and ``micro api`` take ``tls=``:
``None`` (the default) reads the environment (:meth:`TLS.from_env`), ``False`` is
plaintext whatever the environment says. With no ``MICRO_TLS_*`` variable set the
environment means plaintext, so the same code runs plaintext on a laptop and mTLS in
production::

    MICRO_TLS_CERT=node.pem MICRO_TLS_KEY=node-key.pem MICRO_TLS_CA=ca.pem
    MICRO_TLS_CLIENT_AUTH=require

Certificates are verified by default, hostname included. A bad setting (a missing file,
a key that is not the certificate's) is one :class:`~micro._config.ConfigError` line
naming the variable; no error or log line ever holds a key's contents.

Files are read when a server starts or a client opens a connection; servers look at the
files again (at most once a second, on new connections) and use new ones without a
restart, keeping the old ones while the new ones do not load.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, TypeAlias

from micro._config import ConfigError

__all__ = [
    "ENV",
    "NODE_METADATA_KEY",
    "TLS",
    "ClientAuth",
    "Files",
    "TLSSetting",
    "resolve",
    "speaks_tls",
]

log = logging.getLogger(__name__)

ClientAuth: TypeAlias = Literal["none", "request", "require"]
_CLIENT_AUTH: tuple[ClientAuth, ...] = ("none", "request", "require")

#: ``tls=`` of Service, Client, ...: settings, ``None`` (from the environment) or ``False``
TLSSetting: TypeAlias = "TLS | Literal[False] | None"

#: the environment variable of each setting, the same for every process
ENV: Mapping[str, str] = MappingProxyType(
    {
        "cert": "MICRO_TLS_CERT",
        "key": "MICRO_TLS_KEY",
        "ca": "MICRO_TLS_CA",
        "client_auth": "MICRO_TLS_CLIENT_AUTH",
        "server_name": "MICRO_TLS_SERVER_NAME",
        "insecure_skip_verify": "MICRO_TLS_INSECURE_SKIP_VERIFY",
    }
)
_IN_CODE: Mapping[str, str] = MappingProxyType({name: f"TLS.{name}" for name in ENV})

#: the node metadata a TLS server registers: ``"tls": "true"``
NODE_METADATA_KEY = "tls"

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")
#: how often a server looks at its certificate files for a change, in seconds
CHECK_INTERVAL = 1.0


@dataclass(frozen=True)
class TLS:
    """TLS settings (PEM file names). See the module docs.

    * ``cert`` / ``key``: this process's certificate chain and private key; a server
      needs them, a client presents them when it has them (mTLS);
    * ``ca``: the CA bundle peers are verified against; ``None``: the system's;
    * ``client_auth``: whether a server asks for client certificates: ``"none"``,
      ``"request"`` (verified when sent; grpclib only) or ``"require"`` (mTLS);
    * ``server_name``: the name a client expects in the server's certificate, instead
      of the host of the address it dials;
    * ``insecure_skip_verify``: a client accepts any server certificate. For tests
      only; logs a warning every time it is used; grpclib only.
    """

    cert: str | None = None
    key: str | None = None
    ca: str | None = None
    client_auth: ClientAuth = "none"
    server_name: str | None = None
    insecure_skip_verify: bool = False
    #: what each setting is called in messages (the variable when it came from there)
    names: Mapping[str, str] = field(default_factory=lambda: _IN_CODE, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("cert", "key", "ca"):
            value = getattr(self, name)
            if value is not None:
                value = os.fspath(value)
                if not value:
                    raise ConfigError(f"{self.names[name]} is empty")
                object.__setattr__(self, name, value)
        if self.client_auth not in _CLIENT_AUTH:
            raise ConfigError(
                f"{self.names['client_auth']} must be one of {', '.join(_CLIENT_AUTH)}, "
                f"got {self.client_auth!r}"
            )
        if (self.cert is None) != (self.key is None):
            given, missing = ("cert", "key") if self.key is None else ("key", "cert")
            raise ConfigError(
                f"{self.names[given]} is set but {self.names[missing]} is not: "
                "a certificate needs its key"
            )
        if self.client_auth != "none" and self.ca is None:
            raise ConfigError(
                f"{self.names['client_auth']}={self.client_auth} needs {self.names['ca']}: "
                "the CA that signs the client certificates"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> TLS | None:
        """The settings the ``MICRO_TLS_*`` variables give; ``None`` (plaintext) when none
        is set, or only to its off value (``CLIENT_AUTH=none``, ``INSECURE_SKIP_VERIFY=false``)."""
        values = {name: environ.get(var, "").strip() for name, var in ENV.items()}
        skip = values["insecure_skip_verify"].lower()
        if skip not in _TRUE + _FALSE:
            raise ConfigError(f"{ENV['insecure_skip_verify']} must be true or false, got {skip!r}")
        client_auth = values["client_auth"].lower() or "none"
        files = (values["cert"], values["key"], values["ca"], values["server_name"])
        if not any(files) and client_auth == "none" and skip not in _TRUE:
            return None
        return cls(
            cert=values["cert"] or None,
            key=values["key"] or None,
            ca=values["ca"] or None,
            client_auth=client_auth,  # type: ignore[arg-type]  # checked in __post_init__
            server_name=values["server_name"] or None,
            insecure_skip_verify=skip in _TRUE,
            names=ENV,
        )

    # -- what the transports build from -------------------------------------------------

    def server_files(self) -> Files:
        """The loaded files a server serves with; :class:`ConfigError` if it cannot."""
        if self.cert is None or self.key is None:
            raise ConfigError(
                f"serving TLS needs {self.names['cert']} and {self.names['key']} "
                "(the server's certificate and key)"
            )
        return Files(self)

    def client_files(self) -> Files:
        """The loaded files a client connects with; warns if verification is off."""
        if self.insecure_skip_verify:
            log.warning(
                "%s is on: server certificates are NOT verified; anyone on the network "
                "can read and change these calls",
                self.names["insecure_skip_verify"],
            )
        return Files(self)

    def server_context(self, files: Files, alpn: Sequence[str] = ("h2",)) -> ssl.SSLContext:
        """A stdlib server context (ALPN ``h2`` by default) from ``files``."""
        assert files.cert_path is not None and files.key_path is not None  # server_files
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        _load_chain(context, self, files.cert_path, files.key_path)
        if self.client_auth != "none" and files.ca_path is not None:
            context.verify_mode = (
                ssl.CERT_REQUIRED if self.client_auth == "require" else ssl.CERT_OPTIONAL
            )
            _load_ca(context, self, files.ca_path)
        context.set_alpn_protocols(list(alpn))
        return context

    def rotating_server_context(self, alpn: Sequence[str] = ("h2",)) -> ssl.SSLContext:
        """A stdlib server context that looks at the certificate files again on new
        connections (once a second at most, from the SNI callback, which runs for every
        client hello) and hands the handshake a context built from new files."""
        files = self.server_files()
        current = [self.server_context(files, alpn)]

        def on_hello(sock: ssl.SSLObject, name: str | None, context: ssl.SSLContext) -> None:
            if files.reload():
                try:
                    current[0] = self.server_context(files, alpn)
                except ConfigError as exc:  # changed again between the check and the load
                    log.warning("TLS files changed but do not load, keeping the old: %s", exc)
            if sock.context is not current[0]:
                sock.context = current[0]

        first = current[0]
        first.sni_callback = on_hello
        return first

    def client_context(self) -> ssl.SSLContext:
        """A stdlib client context (ALPN ``h2``), verifying unless told not to."""
        if self.ca is None:
            context = ssl.create_default_context()  # the system's trust store
        else:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, hostname included
            _load_ca(context, self, self.ca)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.cert is not None and self.key is not None:
            _load_chain(context, self, self.cert, self.key)
        if self.insecure_skip_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        context.set_alpn_protocols(["h2"])
        return context


def resolve(tls: TLSSetting, environ: Mapping[str, str] = os.environ) -> TLS | None:
    """``tls=`` as given to Service, Client, ...: ``None`` reads the environment,
    ``False`` is plaintext."""
    if tls is False:
        return None
    if tls is None:
        return TLS.from_env(environ)
    if not isinstance(tls, TLS):
        raise TypeError(f"tls must be a micro.tls.TLS, None or False, got {tls!r}")
    return tls


def speaks_tls(metadata: Mapping[str, str]) -> bool:
    """Whether a node's registry metadata says it serves TLS."""
    return metadata.get(NODE_METADATA_KEY) == "true"


def _read(path: str, name: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read {path}: {exc.strerror or exc}") from None


def _reason(exc: ssl.SSLError) -> str:
    return str(exc.reason or exc.strerror or exc).lower().replace("_", " ")


def _load_chain(context: ssl.SSLContext, tls: TLS, cert: str, key: str) -> None:
    names = tls.names
    for path, name in ((cert, names["cert"]), (key, names["key"])):
        if not os.access(path, os.R_OK):
            _read(path, name)  # the OS's reason, as one line
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        reason = _reason(exc)
        if "mismatch" in reason:
            raise ConfigError(
                f"{names['key']} ({key}) is not the key of the certificate in "
                f"{names['cert']} ({cert})"
            ) from None
        raise ConfigError(
            f"{names['cert']} / {names['key']}: cannot load {cert} with {key}: {reason} "
            "(PEM certificate chain and unencrypted PEM private key expected)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{names['cert']}: cannot load {cert}: {exc.strerror or exc}") from None


def _load_ca(context: ssl.SSLContext, tls: TLS, ca: str) -> None:
    _read(ca, tls.names["ca"])
    try:
        context.load_verify_locations(cafile=ca)
    except ssl.SSLError as exc:
        raise ConfigError(
            f"{tls.names['ca']}: no PEM certificate in {ca}: {_reason(exc)}"
        ) from None


class Files:
    """The certificate files of one :class:`TLS`, loaded and checked, and re-read when
    they change (:meth:`reload`). Thread-safe: grpcio asks from its own threads."""

    def __init__(self, tls: TLS) -> None:
        self.tls = tls
        self.cert_path = tls.cert
        self.key_path = tls.key
        self.ca_path = tls.ca
        self._lock = threading.Lock()
        self._checked = 0.0
        self._stamp = self._stamps()
        self.cert, self.key, self.ca = self._load()

    def _stamps(self) -> tuple[tuple[int, int] | None, ...]:
        stamps: list[tuple[int, int] | None] = []
        for path in (self.cert_path, self.key_path, self.ca_path):
            try:
                st = os.stat(path) if path is not None else None
            except OSError:
                st = None
            stamps.append(None if st is None else (st.st_mtime_ns, st.st_size))
        return tuple(stamps)

    def _load(self) -> tuple[bytes | None, bytes | None, bytes | None]:
        """Read and check every file: :class:`ConfigError` naming the bad one."""
        tls = self.tls
        check = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert = key = ca = None
        if self.cert_path is not None and self.key_path is not None:
            _load_chain(check, tls, self.cert_path, self.key_path)
            cert = _read(self.cert_path, tls.names["cert"])
            key = _read(self.key_path, tls.names["key"])
        if self.ca_path is not None:
            _load_ca(check, tls, self.ca_path)
            ca = _read(self.ca_path, tls.names["ca"])
        return cert, key, ca

    def reload(self) -> bool:
        """Re-read the files if they changed (looked at once a second at most); whether
        new ones were loaded. New files that do not load are logged and skipped."""
        now = time.monotonic()
        with self._lock:
            if now - self._checked < CHECK_INTERVAL:
                return False
            self._checked = now
            stamp = self._stamps()
            if stamp == self._stamp:
                return False
            try:
                loaded = self._load()
            except ConfigError as exc:
                log.warning("TLS files changed but do not load, keeping the old ones: %s", exc)
                return False  # retried at the next check, the stamp stays old
            self._stamp = stamp
            self.cert, self.key, self.ca = loaded
            log.info("TLS certificate files changed: loaded the new ones")
            return True
