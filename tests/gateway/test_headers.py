"""Response metadata as HTTP headers, by the header policy alone (no processes)."""

from __future__ import annotations

from micro.gateway.headers import HeaderPolicy
from micro.metadata import MetadataView


def test_headers_and_trailers_get_their_prefixes_and_binary_values_base64() -> None:
    headers = MetadataView([("tenant", "acme"), ("tenant", "beta"), ("blob-bin", b"\x00\xff")])
    trailers = MetadataView([("elapsed", "3")])
    assert HeaderPolicy().response(headers, trailers) == [
        ("micro-meta-tenant", "acme"),
        ("micro-meta-tenant", "beta"),
        ("micro-meta-blob-bin", "AP8="),
        ("micro-trailer-elapsed", "3"),
    ]
    assert HeaderPolicy(prefix="x-up-").response(headers)[0] == ("x-up-tenant", "acme")
    assert HeaderPolicy().response(None, None) == []


def test_without_a_prefix_nothing_is_copied() -> None:
    """Else a service could set Set-Cookie or Content-Type on the gateway's answers."""
    view = MetadataView([("set-cookie", "session=1")])
    assert HeaderPolicy(prefix="").response(view, view) == []
