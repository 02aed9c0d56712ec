"""``host:port`` addresses: parsing, formatting, and the host a wildcard bind advertises."""

from __future__ import annotations

import socket

from micro._config import ConfigError

__all__ = ["advertised_host", "format_address", "parse_address"]


def parse_address(address: str) -> tuple[str, int]:
    """``"host:port"`` / ``"[v6]:port"`` -> (host, port); :class:`ConfigError` (a
    ``ValueError``) if malformed."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"address must be 'host:port', got {address!r}")
    if int(port) > 65535:
        raise ConfigError(f"port must be 0-65535, got {address!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def advertised_host(host: str) -> str:
    """A reachable host for a bind host: wildcard binds advertise an outbound interface."""
    if host not in ("0.0.0.0", "::", ""):
        return host
    family = socket.AF_INET6 if host == "::" else socket.AF_INET
    probe = ("2001:db8::1", 80) if family == socket.AF_INET6 else ("192.0.2.1", 80)
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect(probe)  # no packet is sent for UDP connect
            return str(s.getsockname()[0])
    except OSError:
        return "::1" if family == socket.AF_INET6 else "127.0.0.1"
