"""What of an HTTP request reaches the service: headers as metadata, and the deadline.

* Headers named in the allowlist (default :data:`DEFAULT_ALLOW`) pass as metadata under
  their own (lower-case) name.
* Headers starting with the prefix (default `Micro-Meta-`) pass with the prefix removed:
  `Micro-Meta-Tenant: acme` arrives as metadata `tenant: acme`. A prefixed header may
  not name what only its own header sets (`authorization`, the allowlisted names,
  `micro-*`): `Micro-Meta-Authorization` is a 400, so no client forges an identity or
  a request id past the real header.
* Nothing else does (no Host, Cookie, Content-Length, ...).
* `Micro-Timeout: SECONDS` (a positive decimal) sets the call's deadline; without it the
  gateway's default timeout applies. It is capped by the gateway's maximum.

And back: the response metadata of a successful call becomes HTTP headers, headers under
the prefix (`tenant: acme` -> `Micro-Meta-Tenant: acme`) and trailers under
`Micro-Trailer-`; binary (`-bin`) values are base64, as on the gRPC wire. A streaming
answer carries the headers only (its trailers come after the body has started). With
no prefix configured nothing is copied, so a service can never set `Set-Cookie` or
`Content-Type` on the gateway's answers.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from micro.gateway.errors import HttpError
from micro.metadata import MetadataView, is_valid

__all__ = ["DEFAULT_ALLOW", "DEFAULT_PREFIX", "TIMEOUT_HEADER", "TRAILER_PREFIX", "HeaderPolicy"]

DEFAULT_ALLOW = ("authorization", "x-request-id", "traceparent", "tracestate")
#: metadata names a prefixed header never sets (besides the allowlist): credentials, ours
RESERVED = frozenset({"authorization", "cookie", "proxy-authorization"})
RESERVED_PREFIX = "micro-"
DEFAULT_PREFIX = "micro-meta-"
TIMEOUT_HEADER = "micro-timeout"
TRAILER_PREFIX = "micro-trailer-"


@dataclass(frozen=True)
class HeaderPolicy:
    allow: frozenset[str] = field(default_factory=lambda: frozenset(DEFAULT_ALLOW))
    prefix: str = DEFAULT_PREFIX
    default_timeout: float = 30.0
    max_timeout: float = 300.0

    def metadata(self, headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for name, value in headers:
            key = name.lower()
            if self.prefix and key.startswith(self.prefix):
                key = key[len(self.prefix) :]
                if key in self.allow or key in RESERVED or key.startswith(RESERVED_PREFIX):
                    raise HttpError(
                        400,
                        f"header {name!r} may not set {key!r} metadata: the name is "
                        "reserved (authorization and allowlisted headers pass only as "
                        "themselves)",
                    )
            elif key not in self.allow:
                continue
            if not is_valid(key, value):
                raise HttpError(
                    400,
                    f"header {name!r} cannot be passed as metadata (key {key!r}, value "
                    "must be printable ASCII; keys [0-9a-z_.-], not grpc-* nor -bin)",
                )
            out.append((key, value))
        return out

    def response(
        self, headers: MetadataView | None, trailers: MetadataView | None = None
    ) -> list[tuple[str, str]]:
        """HTTP headers for a call's response metadata (see the module docs)."""
        if not self.prefix:
            return []
        out: list[tuple[str, str]] = []
        for prefix, view in ((self.prefix, headers), (TRAILER_PREFIX, trailers)):
            for key, value in view.pairs() if view is not None else ():
                if isinstance(value, bytes):
                    value = base64.b64encode(value).decode("ascii")
                out.append((prefix + key, value))
        return out

    def timeout(self, value: str | None) -> float:
        if value is None:
            return self.default_timeout
        try:
            seconds = float(value)
        except ValueError:
            seconds = math.nan
        if not math.isfinite(seconds) or seconds <= 0:
            raise HttpError(
                400, f"{TIMEOUT_HEADER} must be a positive number of seconds, got {value!r}"
            )
        return min(seconds, self.max_timeout)
