"""Context propagation rules (unit level) and MetadataView."""

from __future__ import annotations

import time

import pytest

from micro.context import Context, current, outgoing_deadline, outgoing_metadata, use
from micro.metadata import MetadataView, to_pairs
from tests.runtime.echo_kit import ECHO


def test_outgoing_without_a_current_context() -> None:
    assert current() is None
    assert outgoing_metadata({"X-A": "1"}) == [("x-a", "1")]
    assert outgoing_deadline(None) is None
    before = time.monotonic()
    deadline = outgoing_deadline(2.0)
    after = time.monotonic()
    assert deadline is not None and before + 2.0 <= deadline <= after + 2.0


def test_outgoing_inherits_metadata_minus_transport_headers_and_min_deadline() -> None:
    ctx = Context(
        ECHO,
        metadata=[
            (":authority", "h:1"),
            ("grpc-timeout", "1S"),
            ("grpc-accept-encoding", "gzip"),
            ("te", "trailers"),
            ("content-type", "application/grpc"),
            ("user-agent", "x"),
            ("x-user", "ada"),
            ("x-trace", "t1"),
            ("x-trace", "t2"),
        ],
        deadline=time.monotonic() + 1.0,
        peer="127.0.0.1:1",
    )
    with use(ctx):
        assert current() is ctx
        md = outgoing_metadata({"x-user": "bob", "x-new": "n"})
        assert md == [("x-trace", "t1"), ("x-trace", "t2"), ("x-user", "bob"), ("x-new", "n")]
        short = outgoing_deadline(0.1)
        assert short is not None and short - time.monotonic() <= 0.1
        assert outgoing_deadline(10.0) == ctx.deadline
        assert outgoing_deadline(None) == ctx.deadline
    assert current() is None
    remaining = ctx.time_remaining()
    assert remaining is not None and 0 < remaining <= 1.0


def test_metadata_view_and_validation() -> None:
    view = MetadataView([("A", "1"), ("a", "2"), ("b-bin", b"\x00")])
    assert list(view) == ["a", "b-bin"] and len(view) == 2
    assert view["a"] == "1" and view.get_all("A") == ["1", "2"] and view.get_all("z") == []
    assert "A" in view and view.pairs()[1] == ("a", "2")
    with pytest.raises(TypeError):
        to_pairs({"k": 1})  # type: ignore[dict-item]


def test_context_response_metadata_rules() -> None:
    ctx = Context(ECHO)
    assert ctx.time_remaining() is None and ctx.deadline is None
    ctx.set_header("x-h", "1")
    assert not ctx.response.headers_sent
    assert ctx.response.send_headers() == [("x-h", "1")]
    assert ctx.response.headers_sent
    with pytest.raises(RuntimeError):
        ctx.set_header("x-late", "1")
    with pytest.raises(RuntimeError):
        ctx.response.add_header("x-late", "1")
    ctx.set_trailer("x-t", "2")
    ctx.response.add_trailer("x-t-bin", b"\x00")
    assert ctx.response.trailers == [("x-t", "2"), ("x-t-bin", b"\x00")]


@pytest.mark.parametrize(
    ("metadata", "exc"),
    [
        ({"bad key": "v"}, ValueError),
        ({"grpc-status": "0"}, ValueError),
        ({"te": "trailers"}, ValueError),
        ({"x": "naïve"}, ValueError),
        ({"x-bin": "text"}, TypeError),
    ],
)
def test_invalid_outgoing_metadata_is_rejected_early(
    metadata: dict[str, str], exc: type[Exception]
) -> None:
    with pytest.raises(exc):
        to_pairs(metadata)
