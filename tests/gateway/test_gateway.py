"""`micro api` in its own process, in front of a micro service (`library`) and a plain grpcio
server (`statuses`) in theirs, called with httpx over 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import micro
from micro.cli import exits
from micro.registry.local import LocalRegistry
from tests.cli.helpers import one_line_error
from tests.gateway.app import SLEEPING
from tests.gateway.procs import Gateway, Procs
from tests.tooling.helpers import BIN, ROOT, env
from tests.waiting import eventually_sync

MAX_BODY = 2048


@pytest.fixture(scope="module")
def procs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Procs]:
    started = Procs(tmp_path_factory.mktemp("gateway") / "registry.db")
    started.service("library", "a")
    started.service("statuses", "g", app="tests.gateway.grpc_server")
    yield started
    started.stop_all()


@pytest.fixture(scope="module")
def gateway(procs: Procs) -> Iterator[Gateway]:
    started = procs.gateway(
        "--header",
        "x-extra",
        "--max-body",
        str(MAX_BODY),
        "--cors-origin",
        "http://ok.test",
        "--default-routes-for",  # the library's rpcs without a rule; not the statuses'
        "library",
    )
    yield started
    # every bad request above was answered, none crashed the gateway or logged a traceback
    assert started.proc.terminate() == 0
    assert "Traceback" not in started.proc.log, started.proc.log


@pytest.fixture
def http(gateway: Gateway) -> Iterator[httpx.Client]:
    with gateway.client() as client:
        yield client


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def error(response: httpx.Response, code: int) -> dict[str, Any]:
    assert response.status_code == code, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert set(body) >= {"id", "code", "detail", "status"}
    return body


# -- the route table -------------------------------------------------------------------


def test_micro_api_routes_prints_the_table(procs: Procs) -> None:
    result = subprocess.run(
        [str(BIN / "micro"), "api", "routes", "--default-routes"],
        env={**procs.env, "PATH": env()["PATH"]},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines()]
    assert lines[0] == ["METHOD", "PATH", "SERVICE", "ENDPOINT", "RULE"]
    rows = {tuple(line[:4]): " ".join(line[4:]) for line in lines[1:]}
    assert rows[("GET", "/v1/{name=shelves/*/books/*}", "library", "Library.GetBook")] == (
        "google.api.http"
    )
    assert rows[("GET", "/v1/archive/{name=**}", "library", "Library.GetBook")] == (
        "additional_bindings[0]"
    )
    assert rows[("POST", "/v1/{parent=shelves/*}/books", "library", "Library.CreateBook")] == (
        "google.api.http body=book"
    )
    assert rows[("ARCHIVE", "/v1/{name=shelves/*/books/*}", "library", "Library.ArchiveBook")] == (
        "google.api.http custom ARCHIVE"
    )
    assert rows[("GET", "/v1/{name=shelves/*/books/*}/title", "library", "Library.GetTitle")] == (
        "google.api.http response_body=title"
    )
    assert rows[("POST", "/library/Library/Echo", "library", "Library.Echo")] == "default body=*"
    assert rows[("POST", "/v1/statuses:raise", "statuses", "Statuses.Raise")] == (
        "google.api.http body=*"
    )
    assert rows[("POST", "/v1/books:shelve", "library", "Library.Shelve")] == (
        "google.api.http body=*"
    )
    assert len(rows) == 17

    data = json.loads(
        subprocess.run(
            [str(BIN / "micro"), "api", "routes", "-o", "json"],
            env=procs.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    )
    assert [r for r in data if r["rule"] == "default"] == []  # opt-in: --default-routes
    watch = next(r for r in data if r["endpoint"] == "Library.WatchShelf")
    assert watch == {
        "method": "GET",
        "path": "/v1/{parent=shelves/*}:watch",
        "service": "library",
        "endpoint": "Library.WatchShelf",
        "grpc_path": "/gateway.v1.Library/WatchShelf",
        "kind": "server_stream",
        "body": "",
        "response_body": "",
        "rule": "google.api.http",
    }


def test_unknown_path_is_404_naming_the_closest_routes(http: httpx.Client) -> None:
    body = error(http.get("/v1/shelves/1/book"), 404)
    assert body["id"] == "micro.api"
    assert body["detail"].startswith("no route for GET /v1/shelves/1/book; closest: ")
    assert "GET /v1/{name=shelves/*/books/*} -> library Library.GetBook" in body["routes"]
    assert len(body["routes"]) == 3


def test_known_path_with_another_method_is_405(http: httpx.Client) -> None:
    response = http.post("/v1/shelves/1/books/2", json={})
    body = error(response, 405)
    assert response.headers["allow"] == "ARCHIVE, DELETE, GET, PATCH, PUT"
    assert "allowed: ARCHIVE, DELETE, GET, PATCH, PUT" in body["detail"]


# -- every rule kind -------------------------------------------------------------------


def test_get_binds_a_wildcard_template(http: httpx.Client) -> None:
    book = ok(http.get("/v1/shelves/1/books/a%20b"))
    assert book["name"] == "shelves/1/books/a b"
    assert book["title"] == "shelves/1/books/a b (node a)"


def test_additional_binding_with_a_deep_wildcard(http: httpx.Client) -> None:
    assert ok(http.get("/v1/archive/x/y/z"))["name"] == "x/y/z"


def test_get_maps_query_parameters_to_fields(http: httpx.Client) -> None:
    reply = ok(
        http.get(
            "/v1/shelves/7/books",
            params=[
                ("page_size", "5"),
                ("tags", "a"),
                ("tags", "b"),
                ("filter.genre", "GENRE_HISTORY"),
                ("filter.titlePrefix", "The"),  # JSON names work too
                ("include_drafts", "true"),
                ("published_after", "2020-01-01T00:00:00Z"),
                ("min_pages", "9007199254740993"),
            ],
        )
    )
    assert reply["request"] == {
        "parent": "shelves/7",
        "pageSize": 5,
        "tags": ["a", "b"],
        "filter": {"genre": "GENRE_HISTORY", "titlePrefix": "The"},
        "includeDrafts": True,
        "publishedAfter": "2020-01-01T00:00:00Z",
        "minPages": "9007199254740993",
    }


def test_post_with_a_body_field_and_query(http: httpx.Client) -> None:
    book = ok(
        http.post(
            "/v1/shelves/7/books", params={"request_id": "r1"}, json={"title": "T", "pageCount": 12}
        )
    )
    assert book == {
        "name": "shelves/7/books/r1",
        "title": "T",
        "pageCount": "12",
        "genre": "GENRE_UNSPECIFIED",
        "tags": [],
    }


def test_patch_binds_a_nested_field_path(http: httpx.Client) -> None:
    book = ok(
        http.patch(
            "/v1/shelves/1/books/2",
            params={"update_mask": "title,pageCount"},
            json={"title": "New", "name": "the path wins"},
        )
    )
    assert book["name"] == "shelves/1/books/2"
    assert book["title"] == "New (mask: title,page_count)"


def test_put_with_the_whole_body(http: httpx.Client) -> None:
    book = ok(http.put("/v1/shelves/1/books/2", json={"title": "Put", "tags": ["x"]}))
    assert (book["name"], book["title"], book["tags"]) == ("shelves/1/books/2", "Put", ["x"])


def test_delete(http: httpx.Client) -> None:
    assert ok(http.delete("/v1/shelves/1/books/2", params={"force": "true"})) == {
        "deleted": "shelves/1/books/2 (forced)"
    }


def test_response_body_selects_a_field(http: httpx.Client) -> None:
    assert ok(http.get("/v1/shelves/1/books/2/title")) == "Title of shelves/1/books/2"
    assert ok(http.get("/v1/shelves/1/books/2/author")) == {
        "displayName": "Ada Lovelace",
        "born": "1815-12-10T00:00:00Z",
    }


def test_custom_method(http: httpx.Client) -> None:
    assert ok(http.request("ARCHIVE", "/v1/shelves/1/books/2"))["tags"] == ["archived"]


def test_template_verb(http: httpx.Client) -> None:
    book = ok(http.post("/v1/shelves/1/books/2:borrow", json={"reader": "bo", "period": "3.5s"}))
    assert book["title"] == "borrowed by bo for 3.5s"


def test_default_route_and_the_proto3_json_mapping(http: httpx.Client) -> None:
    sent = {
        "big": "-9007199254740993",
        "unsignedBig": "18446744073709551615",
        "small": 3,
        "ratio": 0.5,
        "flag": True,
        "blob": "aGk=",
        "genre": "GENRE_HISTORY",
        "numbers": ["1", 2],
        "counts": {"a": "5"},
        "when": "2024-02-29T12:00:00.500Z",
        "howLong": "1.500s",
        "maybe": "7",
        "maybeFlag": False,
        "author": {"displayName": "A"},
        "snake_case_name": "proto names are accepted",
    }
    expected = {k: v for k, v in sent.items() if k != "snake_case_name"}
    expected |= {"numbers": ["1", "2"], "snakeCaseName": "proto names are accepted"}
    assert ok(http.post("/library/Library/Echo", json=sent)) == expected
    assert ok(http.post("/library/Library/Echo"))["big"] == "0"  # empty body: empty message


# -- errors ----------------------------------------------------------------------------


def test_micro_error_keeps_its_code(http: httpx.Client) -> None:
    assert error(http.get("/v1/shelves/1/books/missing"), 404) == {
        "id": "library",
        "code": 404,
        "detail": "no book shelves/1/books/missing",
        "status": "Not Found",
    }
    teapot = http.post("/v1/inspect", json={"errorCode": 418, "errorDetail": "short and stout"})
    assert error(teapot, 418) == {
        "id": "library",
        "code": 418,
        "detail": "short and stout",
        "status": "I'm a Teapot",
    }


@pytest.mark.parametrize(
    ("grpc_code", "http_code"),
    [
        (1, 499),  # CANCELLED
        (2, 500),  # UNKNOWN
        (3, 400),  # INVALID_ARGUMENT
        (4, 504),  # DEADLINE_EXCEEDED
        (5, 404),  # NOT_FOUND
        (6, 409),  # ALREADY_EXISTS
        (7, 403),  # PERMISSION_DENIED
        (8, 429),  # RESOURCE_EXHAUSTED
        (9, 400),  # FAILED_PRECONDITION
        (10, 409),  # ABORTED
        (11, 400),  # OUT_OF_RANGE
        (12, 501),  # UNIMPLEMENTED
        (13, 500),  # INTERNAL
        (14, 503),  # UNAVAILABLE
        (15, 500),  # DATA_LOSS
        (16, 401),  # UNAUTHENTICATED
    ],
)
def test_grpc_status_maps_to_http(http: httpx.Client, grpc_code: int, http_code: int) -> None:
    response = http.post("/v1/statuses:raise", json={"code": grpc_code, "message": "why"})
    body = error(response, http_code)
    assert body["detail"] == "why"


def test_the_plain_grpc_server_answers_ok_too(http: httpx.Client) -> None:
    assert ok(http.post("/v1/statuses:raise", json={})) == {}


# -- bad input: 400 / 413, never 500 ---------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "content", "detail"),
    [
        ("POST", "/v1/inspect", b"{bad", "malformed JSON body: Expecting property name"),
        ("POST", "/v1/inspect", b"[1]", "must be a JSON object for gateway.v1.InspectRequest"),
        ("POST", "/v1/inspect", b'"x"', "must be a JSON object"),
        ("POST", "/v1/inspect", b'{"sleepMs": "x"}', "Failed to parse sleepMs field"),
        ("POST", "/v1/inspect", b'{"sleepMs": 1.5}', "Failed to parse sleepMs field"),
        ("POST", "/v1/inspect", b'{"bogus": 1}', 'has no field named "bogus"'),
        ("POST", "/v1/inspect", b'{"errorDetail": "\xff"}', "the body is not UTF-8"),
        ("POST", "/v1/inspect", b"[" * 2000, "malformed JSON body: nested too deeply"),
        ("POST", "/v1/inspect?x=1", b"{}", "query parameters (x) are not allowed"),
        ("POST", "/v1/shelves/1/books", b'{"pageCount": "many"}', "Failed to parse pageCount"),
        ("GET", "/v1/shelves/1/books?page_size=abc", b"", "Failed to parse pageSize field"),
        ("GET", "/v1/shelves/1/books?nope=1", b"", "ListBooksRequest has no field 'nope'"),
        ("GET", "/v1/shelves/1/books?include_drafts=maybe", b"", "is not a boolean"),
        ("GET", "/v1/shelves/1/books?filter=x", b"", "filter is a message"),
        ("GET", "/v1/shelves/1/books?page_size=1&page_size=2", b"", "given twice"),
        ("GET", "/v1/shelves/1/books?filter.genre=NOVEL", b"", "Invalid enum value NOVEL"),
    ],
)
def test_bad_input_is_400(
    http: httpx.Client, method: str, url: str, content: bytes, detail: str
) -> None:
    body = error(http.request(method, url, content=content), 400)
    assert body["id"] == "micro.api"
    assert detail in body["detail"]


def test_bad_timeout_header_is_400(http: httpx.Client) -> None:
    for value in ("abc", "-1", "0", "nan"):
        body = error(http.post("/v1/inspect", json={}, headers={"Micro-Timeout": value}), 400)
        assert "micro-timeout must be a positive number of seconds" in body["detail"]


def test_oversized_body_is_413(http: httpx.Client) -> None:
    big = json.dumps({"errorDetail": "x" * MAX_BODY}).encode()
    body = error(http.post("/v1/inspect", content=big), 413)
    assert body["detail"] == f"the body is {len(big)} bytes; the limit is {MAX_BODY}"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"errorDetail": "'
        for _ in range(10):
            yield b"x" * 512
        yield b'"}'

    body = error(http.post("/v1/inspect", content=chunks()), 413)
    assert body["detail"] == f"the body exceeds the limit of {MAX_BODY} bytes"


# -- headers, timeout, CORS ------------------------------------------------------------


def test_allowed_and_prefixed_headers_become_metadata(http: httpx.Client) -> None:
    reply = ok(
        http.post(
            "/v1/inspect",
            json={},
            headers={
                "Authorization": "Bearer t",
                "X-Request-Id": "r-1",
                "X-Extra": "allowlisted by --header",
                "Micro-Meta-Tenant": "acme",
                "Cookie": "secret=1",
                "X-Other": "dropped",
            },
        )
    )
    metadata = reply["metadata"]
    assert metadata["authorization"] == "Bearer t"
    assert metadata["x-request-id"] == "r-1"
    assert metadata["x-extra"] == "allowlisted by --header"
    assert metadata["tenant"] == "acme"
    assert not {"cookie", "x-other", "host", "micro-meta-tenant"} & set(metadata)


def test_a_prefixed_header_cannot_forge_authorization_or_an_allowlisted_name(
    http: httpx.Client,
) -> None:
    """`Micro-Meta-Authorization` used to arrive as `authorization`, ahead of the real header."""
    for forged, key in (
        ("Micro-Meta-Authorization", "authorization"),
        ("micro-meta-AUTHORIZATION", "authorization"),
        ("Micro-Meta-X-Request-Id", "x-request-id"),
        ("Micro-Meta-X-Extra", "x-extra"),
        ("Micro-Meta-Micro-Error", "micro-error"),
    ):
        body = error(
            http.post(
                "/v1/inspect",
                json={},
                headers={forged: "Bearer forged", "Authorization": "Bearer real"},
            ),
            400,
        )
        assert body["detail"].startswith(f"header {forged.lower()!r} may not set {key!r}")
        assert "forged" not in body["detail"] and "real" not in body["detail"]
    metadata = ok(http.post("/v1/inspect", json={}, headers={"Authorization": "Bearer real"}))[
        "metadata"
    ]
    assert metadata["authorization"] == "Bearer real"


def test_response_metadata_becomes_headers(http: httpx.Client) -> None:
    got = http.get("/v1/shelves/1/books/2")
    assert got.status_code == 200
    assert got.headers["micro-meta-book-source"] == "node a"
    assert got.headers.get_list("micro-trailer-book-checksum") == ["c0ffee", "again"]
    assert got.headers["micro-trailer-book-raw-bin"] == "AP8="  # base64, as on the gRPC wire
    uploaded = http.post("/library/Library/Upload", content=ndjson({"title": "a"}))
    assert uploaded.headers["micro-trailer-upload-count"] == "1"
    streamed = http.get("/v1/shelves/1:watch", params={"count": 1})
    assert streamed.headers["micro-meta-shelf-size"] == "1"
    assert "micro-trailer-shelf-end" not in streamed.headers  # the body had begun
    shelved = http.post("/v1/books:shelve", content=ndjson({"title": "a"}))
    assert shelved.headers["micro-meta-shelve-mode"] == "duplex"
    failed = http.get("/v1/shelves/1/books/missing")
    assert failed.status_code == 404
    assert not [h for h in failed.headers if h.startswith("micro-")]


def test_timeout_header_becomes_the_deadline(http: httpx.Client) -> None:
    reply = ok(http.post("/v1/inspect", json={}, headers={"Micro-Timeout": "2.5"}))
    assert 0 < reply["timeRemaining"] <= 2.5 * 1.02  # grpc-timeout may round up on the wire
    default = ok(http.post("/v1/inspect", json={}))["timeRemaining"]
    assert 2.5 < default <= 30 * 1.02  # the gateway's --timeout default (may round up)
    slow = http.post("/v1/inspect", json={"sleepMs": 3000}, headers={"Micro-Timeout": "0.3"})
    body = error(slow, 504)
    assert "deadline exceeded" in body["detail"]


def test_cors_when_enabled(gateway: Gateway, procs: Procs) -> None:
    with gateway.client() as client:
        preflight = client.options(
            "/v1/inspect",
            headers={
                "Origin": "http://ok.test",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type, micro-timeout",
            },
        )
        assert preflight.status_code == 200, preflight.text
        assert preflight.headers["access-control-allow-origin"] == "http://ok.test"
        simple = client.get("/v1/shelves/1/books/2", headers={"Origin": "http://ok.test"})
        assert simple.headers["access-control-allow-origin"] == "http://ok.test"
        other = client.get("/v1/shelves/1/books/2", headers={"Origin": "http://evil.test"})
        assert "access-control-allow-origin" not in other.headers
    plain = procs.gateway()
    with plain.client() as client:
        response = client.get("/v1/shelves/1/books/2", headers={"Origin": "http://ok.test"})
        assert response.status_code == 200
        assert "access-control-allow-origin" not in response.headers
    assert plain.proc.terminate() == 0


# -- server streaming ------------------------------------------------------------------


def test_server_stream_as_ndjson(http: httpx.Client) -> None:
    response = http.get("/v1/shelves/1:watch", params={"count": 3})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    names = [json.loads(line)["name"] for line in response.text.splitlines()]
    assert names == ["shelves/1/books/0", "shelves/1/books/1", "shelves/1/books/2"]


def test_server_stream_as_sse(http: httpx.Client) -> None:
    response = http.get(
        "/v1/shelves/1:watch", params={"count": 2}, headers={"Accept": "text/event-stream"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [e for e in response.text.split("\n\n") if e]
    assert [json.loads(e.removeprefix("data: "))["name"] for e in events] == [
        "shelves/1/books/0",
        "shelves/1/books/1",
    ]


def test_error_mid_stream_ends_the_stream_with_an_error(http: httpx.Client) -> None:
    ndjson = http.get("/v1/shelves/1:watch", params={"count": 5, "fail_after": 2})
    lines = [json.loads(line) for line in ndjson.text.splitlines()]
    assert len(lines) == 3 and "name" in lines[1]
    assert lines[2] == {
        "error": {
            "id": "library",
            "code": 409,
            "detail": "the shelf changed after 2 books",
            "status": "Conflict",
        }
    }
    sse = http.get(
        "/v1/shelves/1:watch",
        params={"count": 5, "fail_after": 1},
        headers={"Accept": "text/event-stream"},
    )
    events = [e for e in sse.text.split("\n\n") if e]
    assert events[0].startswith("data: ")
    assert events[1].startswith("event: error\ndata: ")
    assert json.loads(events[1].split("data: ", 1)[1])["code"] == 409


def test_error_before_the_first_message_is_a_status(http: httpx.Client) -> None:
    for accept in ("application/x-ndjson", "text/event-stream"):
        response = http.get(
            "/v1/shelves/1:watch", params={"fail_after": -1}, headers={"Accept": accept}
        )
        assert error(response, 409)["detail"] == "the shelf is locked"


# -- client and bidi streaming: NDJSON request bodies ---------------------------------


def ndjson(*items: object) -> bytes:
    return b"".join(json.dumps(item).encode() + b"\n" for item in items)


def test_client_stream_takes_one_request_per_line(http: httpx.Client) -> None:
    body = b'{"title": "a"}\n\n  \r\n{"title": "b"}'  # blank lines skipped; no last newline
    reply = ok(http.post("/library/Library/Upload", content=body))
    assert (reply["name"], reply["title"]) == ("uploads/2", "a, b")
    assert ok(http.post("/library/Library/Upload", content=b""))["name"] == "uploads/0"


def test_client_stream_errors(http: httpx.Client) -> None:
    bad = error(http.post("/library/Library/Upload", content=b'{"title": "a"}\n{"title": \n'), 400)
    assert bad["detail"].startswith("line 2 of the body: malformed JSON body: ")
    unknown = error(http.post("/library/Library/Upload", content=ndjson({"pages": 1})), 400)
    assert unknown["detail"].startswith("line 1 of the body: ")
    assert "pages" in unknown["detail"]
    long_line = ndjson({"title": "a"}, {"title": "x" * MAX_BODY})
    too_long = error(http.post("/library/Library/Upload", content=long_line), 413)
    assert too_long["detail"] == f"line 2 of the body exceeds the limit of {MAX_BODY} bytes"
    locked = error(http.post("/library/Library/Upload", content=ndjson({"title": "locked"})), 409)
    assert locked["detail"] == "the shelf is locked"


def test_bidi_stream_as_ndjson_and_sse(http: httpx.Client) -> None:
    body = ndjson({"title": "a", "tags": ["x"]}, {"title": "b"})
    response = http.post("/v1/books:shelve", content=body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    answers = [json.loads(line) for line in response.text.splitlines()]
    assert [(a["name"], a["title"], a["tags"]) for a in answers] == [
        ("shelved/a", "a", ["x"]),
        ("shelved/b", "b", []),
    ]
    sse = http.post("/v1/books:shelve", content=body, headers={"Accept": "text/event-stream"})
    events = [e for e in sse.text.split("\n\n") if e]
    assert [json.loads(e.removeprefix("data: "))["name"] for e in events] == [
        "shelved/a",
        "shelved/b",
    ]
    assert http.post("/v1/books:shelve", content=b"").text == ""  # no requests, no answers


def test_bidi_stream_errors(http: httpx.Client) -> None:
    # before the first answer: an HTTP status; after it: a last error line
    assert error(http.post("/v1/books:shelve", content=ndjson({"title": "locked"})), 423) == {
        "id": "library",
        "code": 423,
        "detail": "the shelf is locked",
        "status": "Locked",
    }
    midway = http.post("/v1/books:shelve", content=ndjson({"title": "a"}, {"title": "boom"}))
    assert midway.status_code == 200
    first, last = [json.loads(line) for line in midway.text.splitlines()]
    assert first["name"] == "shelved/a"
    assert last == {
        "error": {
            "id": "library",
            "code": 409,
            "detail": "the shelf fell over",
            "status": "Conflict",
        }
    }
    bad_first = error(http.post("/v1/books:shelve", content=b"[1]\n"), 400)
    assert bad_first["detail"].startswith("line 1 of the body: ")


class Chunked:
    """A raw HTTP/1.1 request with a chunked body, sent a piece at a time while the
    response is read: what httpx (which sends the whole body first) cannot do."""

    def __init__(self, url: str, path: str) -> None:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n"
            "Content-Type: application/x-ndjson\r\n\r\n".encode()
        )
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def end(self) -> None:
        self.sock.sendall(b"0\r\n\r\n")

    def read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise AssertionError(f"connection closed; got {self.buffer!r}")
            self.buffer += data
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    def read_line(self) -> Any:
        """The next NDJSON line of the (chunked) response body."""
        self.read_until(b"\r\n")  # the chunk size
        line = self.read_until(b"\n")
        self.read_until(b"\r\n")  # the chunk's end
        return json.loads(line)


def test_bidi_stream_answers_each_line_before_the_body_ends(gateway: Gateway) -> None:
    call = Chunked(gateway.url, "/v1/books:shelve")
    try:
        call.send(ndjson({"title": "one"}))
        head = call.read_until(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ")
        assert call.read_line()["name"] == "shelved/one"
        call.send(ndjson({"title": "two"}))
        assert call.read_line()["name"] == "shelved/two"
        call.send(b"not json\n")  # a bad line mid-conversation ends it with an error line
        error_line = call.read_line()
        assert error_line["error"]["code"] == 400
        assert error_line["error"]["detail"].startswith("line 3 of the body: malformed JSON")
        assert call.read_until(b"0\r\n\r\n") == b""  # and the response ends
    finally:
        call.sock.close()


def test_a_client_leaving_mid_conversation_ends_the_call(
    gateway: Gateway, http: httpx.Client
) -> None:
    for _ in range(3):  # each abandoned call is cleaned up; the gateway keeps serving
        call = Chunked(gateway.url, "/v1/books:shelve")
        call.send(ndjson({"title": "one"}))
        call.read_until(b"\r\n\r\n")
        assert call.read_line()["name"] == "shelved/one"
        call.sock.close()  # gone mid-body, the call still open
    response = http.post("/v1/books:shelve", content=ndjson({"title": "after"}))
    assert json.loads(response.text)["name"] == "shelved/after"


# -- the registry: services come and go; shutdown ------------------------------------


def test_routes_follow_services_as_they_come_and_go(tmp_path: Path) -> None:
    procs = Procs(tmp_path / "registry.db")
    try:
        gateway = procs.gateway()
        with gateway.client() as http:
            body = error(http.get("/v1/shelves/1/books/2"), 404)
            assert body["detail"].endswith("; no routes are registered")
            node = procs.service("library", "late")
            eventually_sync(
                lambda: http.get("/v1/shelves/1/books/2").status_code == 200,
                timeout=20,
                interval=0.1,
                what="the route appears",
            )
            assert ok(http.get("/v1/shelves/1/books/2"))["title"].endswith("(node late)")
            assert node.terminate() == 0
            eventually_sync(
                lambda: http.get("/v1/shelves/1/books/2").status_code == 404,
                timeout=20,
                interval=0.1,
                what="the route disappears",
            )
        assert gateway.proc.terminate() == 0
    finally:
        procs.stop_all()


def test_sigterm_lets_requests_in_flight_finish(procs: Procs) -> None:
    gateway = procs.gateway()
    results = _sigterm_during_a_slow_call(procs, gateway)
    assert len(results) == 1
    assert isinstance(results[0], httpx.Response), results
    assert results[0].status_code == 200, results[0].text
    with pytest.raises(httpx.ConnectError), gateway.client() as client:
        client.get("/v1/shelves/1/books/2")


def test_sigterm_with_no_grace_cuts_requests_in_flight(procs: Procs) -> None:
    """The counterpart of the test above: without the grace period the call is cut."""
    results = _sigterm_during_a_slow_call(procs, procs.gateway("--grace", "0"))
    assert len(results) == 1
    (result,) = results
    assert isinstance(result, httpx.HTTPError) or result.status_code != 200, result


def _sigterm_during_a_slow_call(
    procs: Procs, gateway: Gateway
) -> list[httpx.Response | httpx.HTTPError]:
    results: list[httpx.Response | httpx.HTTPError] = []

    def slow_call() -> None:
        with gateway.client() as client:
            try:
                results.append(client.post("/v1/inspect", json={"sleepMs": 1500}))
            except httpx.HTTPError as exc:
                results.append(exc)

    def sleeping() -> int:
        return sum(proc.log.count(SLEEPING) for proc in procs.started)

    before = sleeping()
    caller = threading.Thread(target=slow_call)
    caller.start()
    # the service prints a line as the call starts its 1.5 s sleep: the call is in flight
    eventually_sync(
        lambda: sleeping() > before, timeout=20, interval=0.1, what="the call reached the service"
    )
    gateway.proc.process.send_signal(signal.SIGTERM)
    caller.join(timeout=30)
    assert gateway.proc.process.wait(timeout=30) == 0, gateway.proc.log
    return results


def test_bad_address_is_a_one_line_error(procs: Procs) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    busy = f"127.0.0.1:{taken.getsockname()[1]}"
    for address, code in (("nonsense", exits.EXIT_USAGE), (busy, 1)):
        result = subprocess.run(
            [str(BIN / "micro"), "api", "--address", address],
            env=procs.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == code, result.stderr
        assert one_line_error(result)
    taken.close()


# -- hardening: opt-in default routes, JSON bodies only, one framing, no addresses ------


def raw_request(gateway: Gateway, request: bytes) -> bytes:
    """Send ``request`` as it is over a new connection; the whole answer (it closes)."""
    host, port = gateway.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
            if b"\r\n\r\n" in answer and b"Connection: close" not in request:
                head, _, body = answer.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    None,
                )
                if length is not None and len(body) >= length:
                    break
    return answer


def test_default_routes_are_off_unless_asked_for(procs: Procs, http: httpx.Client) -> None:
    """They would expose every internal method; the module's gateway asked for the
    library's only (--default-routes-for library)."""
    plain = procs.gateway()
    try:
        with plain.client() as client:
            assert error(client.post("/library/Library/Echo", json={}), 404)["routes"]
            assert client.get("/v1/shelves/1/books/2").status_code == 200  # rules still served
    finally:
        assert plain.proc.terminate() == 0
    assert http.post("/library/Library/Echo", json={}).status_code == 200


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
def test_a_body_that_is_not_json_typed_runs_no_method(
    gateway: Gateway, procs: Procs, http: httpx.Client, content_type: str | None
) -> None:
    """A browser sends these cross-site without a preflight (a form, or fetch with a
    text/plain or untyped body): 415, and the service never sees the call."""

    def sleeping() -> int:  # the service prints a line per call with a sleep
        return sum(proc.log.count(SLEEPING) for proc in procs.started)

    before = sleeping()
    body = b'{"sleepMs": 1}'
    typed = f"Content-Type: {content_type}\r\n".encode() if content_type else b""
    answer = raw_request(
        gateway,
        b"POST /v1/inspect HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        + typed
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body,
    )
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 415 "), answer
    assert json.loads(payload)["detail"].startswith("the body needs Content-Type: application/json")
    # the same call typed as JSON runs: its line is the only one since (output is ordered)
    assert http.post("/v1/inspect", content=body).status_code == 200
    eventually_sync(lambda: sleeping() > before, timeout=20, interval=0.05, what="its line")
    assert sleeping() == before + 1


def test_json_media_types_are_accepted(http: httpx.Client) -> None:
    for media in ("application/json; charset=utf-8", "application/merge-patch+json"):
        response = http.post("/v1/inspect", content=b"{}", headers={"content-type": media})
        assert response.status_code == 200, response.text
    assert http.get("/v1/shelves/1/books/2").status_code == 200  # no body: no type needed


def test_content_length_with_transfer_encoding_is_refused(gateway: Gateway) -> None:
    """Two framings of one body (request smuggling); uvicorn's h11 alone would take the
    chunked one and run the call."""
    answer = raw_request(
        gateway,
        b"POST /v1/inspect HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    )
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), answer
    assert b"connection: close" in head.lower()
    assert "both Content-Length and Transfer-Encoding" in json.loads(payload)["detail"]


async def test_a_503_names_no_internal_address(tmp_path: Path) -> None:
    """The gateway's own client reaches no node: the body says what failed, not where."""
    procs = Procs(tmp_path / "registry.db")
    try:
        gateway = procs.gateway()
        registry = LocalRegistry(procs.registry_path)
        rule = json.dumps([{"method": "GET", "path": "/v1/ghost"}])
        await registry.register(
            micro.ServiceRecord(
                name="ghost",
                nodes=(micro.Node(id="ghost-1", address="127.0.0.1:1"),),
                endpoints=(
                    micro.Endpoint(
                        name="Ghost.Get", path="/ghost.v1.Ghost/Get", metadata={"http": rule}
                    ),
                ),
            )
        )
        await registry.close()
        with gateway.client() as client:
            await asyncio.to_thread(
                eventually_sync,
                lambda: client.get("/v1/ghost").status_code != 404,
                timeout=20,
                interval=0.1,
                what="the route appears",
            )
            response = client.get("/v1/ghost")
        body = error(response, 503)
        assert "127.0.0.1" not in response.text and ":1" not in body["detail"], body
        assert body["detail"] == "ServerReflection.ServerReflectionInfo: service unavailable"
        assert gateway.proc.terminate() == 0
        assert "127.0.0.1:1" in gateway.proc.log  # the gateway's log keeps the detail
    finally:
        procs.stop_all()
