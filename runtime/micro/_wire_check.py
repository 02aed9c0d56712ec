"""A strict check of protobuf wire bytes against a betterproto2 message class.

betterproto2's own parser (the codec's fallback, without protobuf) is lenient: it reads
truncated bytes, a tag of field 0, groups and a known field sent with another wire type
(``text = 1``, an int, in a string field) into a half-filled or mistyped message. This
pass walks the bytes first and rejects, as upb does, what is not a valid encoding:

* a truncated tag, varint, fixed-size value or length-delimited payload, a varint longer
  than 10 bytes, a field number of 0 or above 2**29 - 1, wire types 6 and 7;
* groups (wire types 3 and 4): proto3 has none, and betterproto2 cannot hold them;
* a known field whose wire type is not its type's (a packed repeated scalar may also be
  length-delimited). upb keeps such a field as an unknown field instead; here it is an
  error, which is stricter, never looser.

Sub-messages and map entries are checked the same way, up to a depth of 100 (upb's).
Unknown fields are only walked, as any parser must to skip them. The plan per class (field
number -> allowed wire types, nested class) is built once.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["WireError", "check"]

_VARINT, _I64, _LEN, _SGROUP, _EGROUP, _I32 = 0, 1, 2, 3, 4, 5
#: the wire type of each betterproto2 proto_type that is not a varint
_WIRE = {
    "double": _I64,
    "fixed64": _I64,
    "sfixed64": _I64,
    "float": _I32,
    "fixed32": _I32,
    "sfixed32": _I32,
    "string": _LEN,
    "bytes": _LEN,
    "message": _LEN,
    "map": _LEN,
}
_MAX_DEPTH = 100
_MAX_FIELD = (1 << 29) - 1

#: per class: field number -> (allowed wire types, nested message class or None,
#: wire type of a packed element or None)
_Plan = dict[int, tuple[frozenset[int], Any, int | None]]
_plans: dict[type, _Plan] = {}
_lock = threading.Lock()


class WireError(ValueError):
    """The bytes are not a valid encoding of the message."""


def check(data: bytes, message_type: type) -> None:
    """Raise :class:`WireError` unless ``data`` is a valid encoding of ``message_type``."""
    _check(data, 0, len(data), message_type, 0)


def _plan(cls: type) -> _Plan:
    found = _plans.get(cls)
    if found is not None:
        return found
    meta = cls._betterproto  # type: ignore[attr-defined]
    plan: _Plan = {}
    for name, field in meta.meta_by_field_name.items():
        wire = _WIRE.get(field.proto_type, _VARINT)
        nested: Any = None
        if field.proto_type in ("message", "map"):
            nested = field.unwrap() if field.unwrap is not None else meta.cls_by_field[name]
            if not hasattr(nested, "_betterproto"):
                nested = None  # pragma: no cover - every message field names its class
        packed = wire if field.repeated and wire != _LEN else None
        allowed = frozenset({wire, _LEN}) if packed is not None else frozenset({wire})
        plan[field.number] = (allowed, nested, packed)
    with _lock:
        _plans[cls] = plan
    return plan


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise WireError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise WireError("varint longer than 10 bytes")


def _check(data: bytes, pos: int, end: int, cls: type, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise WireError(f"messages nested deeper than {_MAX_DEPTH}")
    plan = _plans.get(cls) or _plan(cls)
    while pos < end:
        tag, pos = _varint(data, pos, end)
        number, wire = tag >> 3, tag & 7
        if number == 0 or number > _MAX_FIELD:
            raise WireError(f"invalid field number {number}")
        start = pos
        if wire == _VARINT:
            _, pos = _varint(data, pos, end)
        elif wire == _LEN:
            length, start = _varint(data, pos, end)
            pos = start + length
        elif wire == _I64:
            pos += 8
        elif wire == _I32:
            pos += 4
        elif wire in (_SGROUP, _EGROUP):
            raise WireError(f"field {number}: groups are not supported")
        else:
            raise WireError(f"field {number}: invalid wire type {wire}")
        if pos > end:
            raise WireError(f"field {number}: truncated")
        known = plan.get(number)
        if known is None:
            continue
        allowed, nested, packed = known
        if wire not in allowed:
            raise WireError(f"field {number}: wire type {wire} does not fit its type")
        if wire == _LEN:
            if nested is not None:
                _check(data, start, pos, nested, depth + 1)
            elif packed is not None:
                _packed(data, start, pos, packed, number)


def _packed(data: bytes, pos: int, end: int, wire: int, number: int) -> None:
    if wire == _VARINT:
        while pos < end:
            _, pos = _varint(data, pos, end)
    elif (end - pos) % (8 if wire == _I64 else 4):
        raise WireError(f"field {number}: packed values cut short")
