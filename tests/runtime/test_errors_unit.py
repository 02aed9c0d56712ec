"""micro.errors: the code <-> gRPC status mapping and the JSON form."""

from __future__ import annotations

import pickle

import pytest

import micro
from micro import errors
from micro.errors import Error, Status


@pytest.mark.parametrize(
    ("helper", "code", "status", "grpc"),
    [
        (errors.bad_request, 400, "Bad Request", Status.INVALID_ARGUMENT),
        (errors.unauthorized, 401, "Unauthorized", Status.UNAUTHENTICATED),
        (errors.forbidden, 403, "Forbidden", Status.PERMISSION_DENIED),
        (errors.not_found, 404, "Not Found", Status.NOT_FOUND),
        (errors.method_not_allowed, 405, "Method Not Allowed", Status.UNIMPLEMENTED),
        (errors.timeout, 408, "Request Timeout", Status.DEADLINE_EXCEEDED),
        (errors.conflict, 409, "Conflict", Status.ALREADY_EXISTS),
        (errors.internal_server_error, 500, "Internal Server Error", Status.INTERNAL),
        (errors.unavailable, 503, "Service Unavailable", Status.UNAVAILABLE),
    ],
)
def test_helpers(helper: object, code: int, status: str, grpc: Status) -> None:
    err = helper("svc", "what happened")  # type: ignore[operator]
    assert (err.id, err.code, err.detail, err.status) == ("svc", code, "what happened", status)
    assert err.grpc_status is grpc


def test_unimplemented_names_the_method() -> None:
    method = micro.Method(
        "Greeter.SayHello", "/hello.v1.Greeter/SayHello", micro.Kind.UNARY, object, object, "x"
    )
    err = errors.unimplemented(method)
    assert err.code == 501 and err.grpc_status is Status.UNIMPLEMENTED
    assert err.id == "hello.v1.Greeter"
    assert "Greeter.SayHello" in err.detail


def test_grpc_status_to_code_and_back() -> None:
    for status in Status:
        code = errors.code_for(status)
        assert 200 <= code < 600
    # one table (micro.status), Google's mapping: a bare DEADLINE_EXCEEDED is 504, while
    # an HTTP-only code such as 408 (errors.timeout) still travels as DEADLINE_EXCEEDED
    assert errors.code_for(Status.DEADLINE_EXCEEDED) == 504
    assert errors.code_for(Status.FAILED_PRECONDITION) == 400
    assert errors.code_for(Status.UNAVAILABLE) == 503
    assert errors.code_for(Status.UNKNOWN) == 500
    assert errors.grpc_status_for(418) is Status.UNKNOWN
    for code, status in (
        (405, Status.UNIMPLEMENTED),
        (408, Status.DEADLINE_EXCEEDED),
        (412, Status.FAILED_PRECONDITION),
        (416, Status.OUT_OF_RANGE),
    ):
        assert errors.grpc_status_for(code) is status
    for code in (400, 401, 403, 404, 409, 429, 499, 500, 501, 503, 504):
        assert errors.code_for(errors.grpc_status_for(code)) == code


def test_status_is_micros_own_enum_with_the_grpc_values() -> None:
    import micro.status

    assert Status is micro.status.Status
    assert [(s.name, s.value) for s in Status][:5] == [
        ("OK", 0),
        ("CANCELLED", 1),
        ("UNKNOWN", 2),
        ("INVALID_ARGUMENT", 3),
        ("DEADLINE_EXCEEDED", 4),
    ]
    assert Status.UNAUTHENTICATED.value == 16 and len(Status) == 17


def test_origin_says_where_an_error_came_from() -> None:
    assert errors.not_found("svc", "x").origin is errors.Origin.LOCAL
    remote = errors.from_grpc(
        Status.NOT_FOUND, "gone", {"micro-error": Error("svc", 404, "gone").to_json()}
    )
    assert remote.origin is errors.Origin.REMOTE
    bare = errors.from_grpc(Status.NOT_FOUND, "gone", {})
    assert bare.origin is errors.Origin.STATUS
    assert pickle.loads(pickle.dumps(bare)).origin is errors.Origin.STATUS


def test_json_round_trip_and_equality() -> None:
    err = Error("a.b", 418, "short and stout, ünïcode", "Teapot")
    text = err.to_json()
    assert text.isascii()
    back = Error.parse(text)
    assert back == err and hash(back) == hash(err)
    assert (back.id, back.code, back.detail, back.status) == ("a.b", 418, err.detail, "Teapot")
    assert pickle.loads(pickle.dumps(err)) == err
    with pytest.raises(ValueError):
        Error.parse('{"code": "nope"}')


def test_from_grpc_plain_status_keeps_the_status() -> None:
    err = errors.from_grpc(Status.RESOURCE_EXHAUSTED, "slow down", {})
    assert err.grpc_status is Status.RESOURCE_EXHAUSTED
    assert (err.code, err.detail, err.status) == (429, "slow down", "Too Many Requests")
    # ABORTED shares 409 with ALREADY_EXISTS but the original status is preserved
    assert errors.from_grpc(Status.ABORTED, "x").grpc_status is Status.ABORTED


def test_from_grpc_prefers_the_micro_error_trailer() -> None:
    original = Error("svc", 404, "gone", "Not Found")
    err = errors.from_grpc(Status.NOT_FOUND, "gone", {"micro-error": original.to_json()})
    assert err == original and err.grpc_status is Status.NOT_FOUND
    # a malformed trailer falls back to the status
    bad = errors.from_grpc(Status.NOT_FOUND, "gone", {"micro-error": "{not json"})
    assert (bad.code, bad.detail) == (404, "gone")
