"""HTTP request -> request message, response message -> JSON (the proto3 JSON mapping).

The request message is filled from, in order (later wins):

1. the body, per the rule's `body`: `*` is the whole request message, `field` that field
   (a GET/DELETE rule without `body` ignores any body);
2. the query parameters: `?page_size=10&filter.genre=GENRE_FICTION&tags=a&tags=b` set the
   (nested) fields they name, by proto or JSON name; a repeated field takes the parameter
   repeatedly. Only scalar, enum and string-shaped well-known-type fields (Timestamp,
   Duration, FieldMask, wrappers) can be set this way. With `body: "*"` there is nothing
   left for them to set, so any query parameter is an error;
3. the path variables (`{book.name=shelves/*/books/*}`).

Anything that does not fit (malformed JSON, an unknown field, a wrong type or value) is a
400 with the parser's message.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from micro.dynamic import DynamicMethod, InvalidMessage
from micro.gateway.errors import HttpError, from_dynamic

__all__ = ["build_request", "parse_body", "reply_json"]

#: message types whose proto3 JSON form is a string or number, so a query value fits
_SCALAR_WKT = frozenset(
    f"google.protobuf.{name}"
    for name in (
        "Timestamp",
        "Duration",
        "FieldMask",
        "DoubleValue",
        "FloatValue",
        "Int64Value",
        "UInt64Value",
        "Int32Value",
        "UInt32Value",
        "BoolValue",
        "StringValue",
        "BytesValue",
    )
)
_TRUE, _FALSE = frozenset({"true", "1"}), frozenset({"false", "0"})


def parse_body(raw: bytes) -> Any:
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except UnicodeDecodeError as exc:
        raise HttpError(400, f"the body is not UTF-8: {exc}") from None
    except json.JSONDecodeError as exc:
        raise HttpError(400, f"malformed JSON body: {exc}") from None
    except RecursionError:
        raise HttpError(400, "malformed JSON body: nested too deeply") from None


def _field(message: Descriptor, name: str) -> FieldDescriptor | None:
    found: FieldDescriptor | None = message.fields_by_name.get(name)
    if found is None:
        found = message.fields_by_camelcase_name.get(name)
    return found


def _is_bool(field: FieldDescriptor) -> bool:
    if field.type == FieldDescriptor.TYPE_BOOL:
        return True
    return (
        field.message_type is not None
        and field.message_type.full_name == "google.protobuf.BoolValue"
    )


def _scalar(field: FieldDescriptor, value: str, where: str) -> Any:
    if not _is_bool(field):
        return value
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise HttpError(400, f"{where}: {value!r} is not a boolean (true or false)")


def _set(
    tree: dict[str, Any], message: Descriptor, path: str, values: Sequence[str], where: str
) -> None:
    """Set the field at dotted `path` in the JSON `tree` for `message`."""
    names = path.split(".")
    node, descriptor = tree, message
    for depth, name in enumerate(names):
        field = _field(descriptor, name)
        if field is None:
            raise HttpError(400, f"{where}: {descriptor.full_name} has no field {name!r}")
        leaf = depth == len(names) - 1
        is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
        repeated = bool(field.is_repeated)
        if not leaf:
            if field.message_type is None or repeated:
                raise HttpError(400, f"{where}: {field.full_name} is not a message field")
            child = node.setdefault(field.json_name, {})
            if not isinstance(child, dict):
                raise HttpError(400, f"{where}: {field.full_name} is set twice")
            node, descriptor = child, field.message_type
            continue
        if is_map or (
            field.message_type is not None and field.message_type.full_name not in _SCALAR_WKT
        ):
            raise HttpError(
                400,
                f"{where}: {field.full_name} is a message: set its fields "
                f"({path}.FIELD=...) or send it in a JSON body",
            )
        converted = [_scalar(field, v, where) for v in values]
        if repeated:
            node[field.json_name] = converted
        elif len(converted) > 1:
            raise HttpError(400, f"{where}: {field.full_name} is not repeated but given twice")
        else:
            node[field.json_name] = converted[0]


def _parse(method: DynamicMethod, data: Any, where: str) -> Message:
    try:
        return method.request(data)
    except InvalidMessage as exc:
        raise from_dynamic(exc, where) from None
    except RecursionError:
        raise HttpError(400, f"{where}: nested too deeply") from None


def build_request(
    method: DynamicMethod,
    *,
    body_rule: str,
    body: Any,
    variables: dict[str, str],
    query: Sequence[tuple[str, str]],
) -> Message:
    descriptor: Descriptor = method.descriptor.input_type
    if body_rule == "*":
        message = _parse(method, body, "body")
    elif body_rule:
        field = _field(descriptor, body_rule)
        if field is None:
            raise HttpError(
                500, f"the rule's body {body_rule!r} is not a field of {descriptor.full_name}"
            )
        message = _parse(method, {field.json_name: body}, "body")
    else:
        message = method.method.request_type()
    if query:
        if body_rule == "*":
            names = ", ".join(sorted({k for k, _ in query}))
            raise HttpError(
                400,
                f"query parameters ({names}) are not allowed: this route's body is the "
                "whole request",
            )
        grouped: dict[str, list[str]] = {}
        for key, value in query:
            grouped.setdefault(key, []).append(value)
        tree: dict[str, Any] = {}
        for key, values in grouped.items():
            _set(tree, descriptor, key, values, f"query parameter {key!r}")
        message.MergeFrom(_parse(method, tree, "query parameters"))
    if variables:
        tree = {}
        for key, value in variables.items():
            _set(tree, descriptor, key, [value], f"path variable {key!r}")
        message.MergeFrom(_parse(method, tree, "path"))
    return message


def reply_json(method: DynamicMethod, message: Message, response_body: str) -> Any:
    data = method.to_json(message)
    if not response_body:
        return data
    field = _field(method.descriptor.output_type, response_body)
    if field is None:
        raise HttpError(
            500,
            f"the rule's response_body {response_body!r} is not a field of "
            f"{method.descriptor.output_type.full_name}",
        )
    return data.get(field.json_name)
