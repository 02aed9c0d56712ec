"""`google.api.http` rules read from method options."""

from __future__ import annotations

from dataclasses import dataclass

from google.api import annotations_pb2, http_pb2
from google.protobuf.descriptor_pb2 import MethodOptions


@dataclass(frozen=True)
class HttpRuleModel:
    method: str
    path: str
    body: str
    response_body: str
    custom: bool


def http_rules(options: MethodOptions) -> tuple[HttpRuleModel, ...]:
    if not options.HasExtension(annotations_pb2.http):
        return ()
    rule: http_pb2.HttpRule = options.Extensions[annotations_pb2.http]
    rules = [_one(rule)]
    rules.extend(_one(extra) for extra in rule.additional_bindings)
    return tuple(r for r in rules if r is not None)


def _one(rule: http_pb2.HttpRule) -> HttpRuleModel | None:
    kind = rule.WhichOneof("pattern")
    if kind is None:
        return None
    if kind == "custom":
        method, path, custom = rule.custom.kind, rule.custom.path, True
    else:
        method, path, custom = kind.upper(), str(getattr(rule, kind)), False
    return HttpRuleModel(
        method=method,
        path=path,
        body=rule.body,
        response_body=rule.response_body,
        custom=custom,
    )
