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


def test_a_prefixed_header_never_sets_a_reserved_or_allowlisted_name() -> None:
    import pytest

    from micro.gateway.errors import HttpError

    policy = HeaderPolicy(allow=frozenset({"authorization", "x-extra"}))
    assert policy.metadata([("Micro-Meta-Tenant", "acme"), ("Authorization", "Bearer a")]) == [
        ("tenant", "acme"),
        ("authorization", "Bearer a"),
    ]
    for name in ("Micro-Meta-Authorization", "Micro-Meta-X-Extra", "Micro-Meta-Cookie"):
        with pytest.raises(HttpError) as info:
            policy.metadata([(name, "Bearer forged")])
        assert info.value.code == 400 and "forged" not in info.value.detail
