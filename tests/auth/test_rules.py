"""Rules on their own: which rule decides, grant and revoke, the errors they raise."""

from __future__ import annotations

import pytest

import micro
from micro.auth import HEALTH_PUBLIC, Account, Rule, Rules
from micro.health import HEALTH_CHECK
from micro.status import Status
from tests.runtime.echo_kit import COLLECT, COUNT, ECHO


def test_the_most_specific_rule_decides_and_the_last_granted_wins_a_tie() -> None:
    rules = Rules()
    rules.grant("*", scopes=["base"])
    rules.grant("Echo.*", scopes=["echo"])
    exact = rules.grant("Echo.Echo", public=True)
    assert rules.find("echo", ECHO) is exact
    assert rules.find("echo", COUNT).scopes == ("echo",)
    assert rules.find("echo", HEALTH_CHECK) == HEALTH_PUBLIC
    later = rules.grant("Echo.*", scopes=["later"])
    assert rules.find("echo", COUNT) is later
    by_path = rules.grant("/test.v1.Echo/Collect", scopes=["path"])
    assert rules.find("echo", COLLECT) is by_path
    only_billing = rules.grant("Echo.Count", scopes=["billing"], service="billing")
    assert rules.find("billing", COUNT) is only_billing
    assert rules.find("echo", COUNT) is later
    rules.revoke(later)
    assert rules.find("echo", COUNT).scopes == ("echo",)
    with pytest.raises(ValueError, match="no such rule"):
        rules.revoke(later)
    assert Rules(health_public=False).find("echo", HEALTH_CHECK) == Rule()


def test_verify_raises_401_and_403_with_a_reason() -> None:
    rules = Rules([Rule("Echo.Collect", scopes=("a", "b"))])
    with pytest.raises(micro.Error) as info:
        rules.verify(None, "echo", ECHO, reason="token expired")
    assert (info.value.grpc_status, info.value.detail) == (
        Status.UNAUTHENTICATED,
        "Echo.Echo: token expired",
    )
    with pytest.raises(micro.Error) as info:
        rules.verify(Account("ada", scopes=("a",)), "echo", COLLECT)
    assert info.value.grpc_status is Status.PERMISSION_DENIED
    assert info.value.detail == "Echo.Collect needs scopes 'a', 'b'; account 'ada' lacks 'b'"
    assert rules.verify(Account("ada", scopes=("b", "a")), "echo", COLLECT).scopes == ("a", "b")
    with pytest.raises(ValueError, match="needs no scopes"):
        Rule("x", scopes=("a",), public=True)


def test_reprs_of_metadata_contexts_and_calls_hide_credentials() -> None:
    from micro.client import ClientCall
    from micro.metadata import MetadataView
    from tests.runtime.echo_kit import EchoRequest

    pairs = [("authorization", "Bearer tok-123"), ("cookie", "s=tok-456"), ("tenant", "acme")]
    view = MetadataView(pairs)
    context = micro.Context(ECHO, metadata=view)
    call = ClientCall(ECHO, "echo", None, EchoRequest(), list(pairs))
    for text in (repr(view), repr(context), repr(call)):
        assert "tok-" not in text and "<redacted>" in text and "acme" in text, text
    assert view["authorization"] == "Bearer tok-123"  # only the repr hides it
