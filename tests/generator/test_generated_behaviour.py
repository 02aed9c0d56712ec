"""What the generated modules do when imported and called (golden/ is the package under test)."""

from __future__ import annotations

import asyncio
import importlib
import warnings
from pathlib import Path

import pytest

import micro
from protoc_gen_micro.comments import clean_comment

ROOT = Path(__file__).resolve().parents[2]


def test_docstrings_survive_any_comment_text() -> None:
    from golden.docs.v1.docs_micro import ArchiveClient, ArchiveHandler, LibraryClient

    expected = (
        'Archive keeps "old" things.\n\n'
        'Comments may hold """triple quotes""", back\\slashes, \\n escapes, tabs\tand ünïcödé,\n'
        'and end with a quote: "'
    )

    def unindent(doc: str | None) -> str:  # like inspect.cleandoc, but keeps the tab
        return (doc or "").replace("\n    ", "\n").rstrip(" \n")

    assert unindent(ArchiveClient.__doc__) == expected
    assert unindent(ArchiveHandler.__doc__).startswith(expected)
    assert ArchiveClient.store.__doc__ == "Store saves a thing. It ends with a backslash \\"
    assert LibraryClient.return_.__doc__ == "Return gives a thing back (a trailing comment)."


def test_clean_comment_dedents_and_trims() -> None:
    assert clean_comment("\n  one\n    two\n\n") == "one\n  two"
    assert clean_comment("") == ""


async def test_deprecated_services_and_methods_warn_at_call_time() -> None:
    from golden.docs.v1 import Thing
    from golden.docs.v1.docs_micro import ArchiveClient, LibraryClient

    with pytest.warns(DeprecationWarning, match="service docs.v1.Archive is deprecated"):
        ArchiveClient(address="127.0.0.1:1")
    library = LibraryClient(address="127.0.0.1:1")
    with pytest.warns(DeprecationWarning, match="rpc docs.v1.Library.Lend is deprecated"):
        call = library.lend(Thing(name="x"))
    call.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        call = library.return_(Thing(name="x"))  # not deprecated: no warning
        call.close()
    await asyncio.sleep(0)


def test_endpoint_metadata() -> None:
    from golden.httpapi.v1 import Book, GetBookRequest
    from golden.httpapi.v1.httpapi_micro import BOOKS_GET_BOOK, BOOKS_SPEC, BOOKS_WATCH

    assert BOOKS_SPEC.name == "httpapi.v1.Books"
    assert [m.name for m in BOOKS_SPEC.methods][:2] == ["Books.GetBook", "Books.CreateBook"]
    assert BOOKS_GET_BOOK.path == "/httpapi.v1.Books/GetBook"
    assert BOOKS_GET_BOOK.kind is micro.Kind.UNARY
    assert BOOKS_GET_BOOK.request_type is GetBookRequest
    assert BOOKS_GET_BOOK.response_type is Book
    assert BOOKS_GET_BOOK.request_name == "httpapi.v1.GetBookRequest"
    assert BOOKS_GET_BOOK.http_rules == (
        micro.HttpRule("GET", "/v1/{name=shelves/*/books/*}"),
        micro.HttpRule("GET", "/v1/books/{name}"),
    )
    rules = {m.handler_attr: m.http_rules for m in BOOKS_SPEC.methods}
    assert rules["create_book"] == (micro.HttpRule("POST", "/v1/{parent=shelves/*}/books", "book"),)
    assert rules["update_book"] == (
        micro.HttpRule("PATCH", "/v1/{name=shelves/*/books/*}", "*", "title"),
    )
    assert rules["delete_book"][0].method == "DELETE"
    assert rules["put_book"][0].method == "PUT"
    assert rules["plain"] == ()
    assert BOOKS_WATCH.kind is micro.Kind.SERVER_STREAM
    assert BOOKS_WATCH.http_rules == (
        micro.HttpRule("HEAD", "/v1/{name=shelves/*/books/*}:watch", custom=True),
    )


def test_all_kinds_and_handler_attrs() -> None:
    from golden.streaming.v1.streaming_micro import STREAMER_SPEC

    assert [(m.handler_attr, m.kind) for m in STREAMER_SPEC.methods] == [
        ("echo", micro.Kind.UNARY),
        ("count", micro.Kind.SERVER_STREAM),
        ("sum", micro.Kind.CLIENT_STREAM),
        ("chat", micro.Kind.BIDI_STREAM),
        ("put", micro.Kind.UNARY),
    ]


def test_idempotency_level_reaches_the_spec() -> None:
    """`option idempotency_level` is carried into the Method; unset is UNKNOWN."""
    from golden.streaming.v1.streaming_micro import STREAMER_COUNT, STREAMER_ECHO, STREAMER_PUT
    from micro._builtin.grpc.health.v1.health_micro import HEALTH_CHECK

    assert STREAMER_PUT.idempotency is micro.Idempotency.IDEMPOTENT and STREAMER_PUT.idempotent
    assert STREAMER_COUNT.idempotency is micro.Idempotency.NO_SIDE_EFFECTS
    assert STREAMER_COUNT.idempotent
    assert STREAMER_ECHO.idempotency is micro.Idempotency.UNKNOWN
    assert not STREAMER_ECHO.idempotent
    assert HEALTH_CHECK.idempotency is micro.Idempotency.NO_SIDE_EFFECTS


def test_types_resolve_across_packages_files_and_nesting() -> None:
    from golden.shop.common.v1 import Money, MoneyRange
    from golden.shop.orders.v1 import Order, OrderLine, RefundReceipt
    from golden.shop.orders.v1.orders_micro import ORDER_PLACE, ORDER_QUOTE, OrderClient
    from golden.shop.orders.v1.refunds_micro import REFUNDS_REFUND

    assert (ORDER_QUOTE.request_type, ORDER_QUOTE.response_type) == (MoneyRange, OrderLine)
    assert (ORDER_PLACE.request_type, ORDER_PLACE.response_type) == (Order, Money)
    assert (REFUNDS_REFUND.request_type, REFUNDS_REFUND.response_type) == (Order, RefundReceipt)
    assert OrderClient.__name__ == "OrderClient"  # OrderService does not stutter


def test_well_known_types_and_no_package() -> None:
    from golden import Pong
    from golden.google.protobuf import Empty, Timestamp
    from golden.nopackage_micro import BARE_PING, OTHER_SPEC
    from golden.wkt.v1.wkt_micro import CLOCK_NOW

    assert (CLOCK_NOW.request_type, CLOCK_NOW.response_type) == (Empty, Timestamp)
    assert BARE_PING.path == "/Bare/Ping" and BARE_PING.request_type is Pong
    assert OTHER_SPEC.name == "Other"


def test_names_that_clash_with_python_or_runtime_names() -> None:
    names = importlib.import_module("golden.names.v1.names_micro")
    messages = importlib.import_module("golden.names.v1")
    keywords = names.KEYWORDS_SPEC
    assert [m.handler_attr for m in keywords.methods] == [
        "import_", "class_", "none", "match", "print", "type", "timeout", "metadata",
        "request", "self", "rpc_private", "rpc__init__",
    ]  # fmt: skip
    for method in keywords.methods:
        assert callable(getattr(names.KeywordsClient, method.handler_attr))
        assert callable(getattr(names.KeywordsHandler, method.handler_attr))
    # The message named GreeterClient is imported under another name, not shadowed.
    assert names.GREETER_SERVICE_HELLO.response_type is messages.GreeterClient
    assert names.GreeterClient is not messages.GreeterClient
    assert issubclass(names.GreeterClient, micro.Stub)
    assert issubclass(names.GreeterServiceClient, micro.Stub)
    # rpc names equal to names used in annotations keep clear of them.
    assert [m.handler_attr for m in names.SHADOWS_SPEC.methods] == ["float_", "context", "Error_"]


async def test_unimplemented_methods_raise_unimplemented() -> None:
    from golden.helloworld.v1 import HelloRequest
    from golden.helloworld.v1.helloworld_micro import GreeterHandler

    with pytest.raises(micro.errors.Error) as info:
        await GreeterHandler().say_hello(HelloRequest(), context=None)  # type: ignore[arg-type]
    assert info.value.grpc_status.name == "UNIMPLEMENTED"


def test_optional_fields_work() -> None:
    from golden.optional.v1 import Profile
    from golden.optional.v1.optional_micro import PROFILES_UPDATE

    assert PROFILES_UPDATE.request_type is Profile
    sent = Profile(nickname="", id="x")
    back = Profile.parse(bytes(sent))
    assert back.nickname == "" and back.age is None
