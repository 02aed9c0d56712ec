"""Hypothesis strategies for any betterproto2 message class, read from its field metadata
(and, for closed enums, from its descriptor)."""

from __future__ import annotations

import datetime
from typing import Any

import betterproto2
from hypothesis import strategies as st

_INT_RANGES = {
    betterproto2.TYPE_INT32: (-(2**31), 2**31 - 1),
    betterproto2.TYPE_SINT32: (-(2**31), 2**31 - 1),
    betterproto2.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    betterproto2.TYPE_UINT32: (0, 2**32 - 1),
    betterproto2.TYPE_FIXED32: (0, 2**32 - 1),
    betterproto2.TYPE_INT64: (-(2**63), 2**63 - 1),
    betterproto2.TYPE_SINT64: (-(2**63), 2**63 - 1),
    betterproto2.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    betterproto2.TYPE_UINT64: (0, 2**64 - 1),
    betterproto2.TYPE_FIXED64: (0, 2**64 - 1),
}
_UTC = datetime.UTC
_SMALL = 3  # items at most in a list or map


def _ints(low: int, high: int) -> st.SearchStrategy[int]:
    # the edges and small values turn up more often than uniform draws would give them
    return st.one_of(
        st.sampled_from([low, high, 0, 1, -1 if low < 0 else 2]), st.integers(low, high)
    )


def scalar(proto_type: str) -> st.SearchStrategy[Any]:
    if proto_type in _INT_RANGES:
        return _ints(*_INT_RANGES[proto_type])
    if proto_type == betterproto2.TYPE_BOOL:
        return st.booleans()
    if proto_type == betterproto2.TYPE_STRING:
        return st.text(max_size=12)
    if proto_type == betterproto2.TYPE_BYTES:
        return st.binary(max_size=12)
    if proto_type == betterproto2.TYPE_FLOAT:
        # NaN is never equal to itself inside lists and maps; tests/codec checks it alone
        return st.floats(width=32, allow_nan=False)
    if proto_type == betterproto2.TYPE_DOUBLE:
        return st.floats(allow_nan=False)
    raise AssertionError(proto_type)


def enum(cls: Any, closed: bool) -> st.SearchStrategy[Any]:
    known = st.sampled_from(list(cls))
    if closed:  # proto2: upb keeps unknown values of a closed enum as unknown fields
        return known
    return st.one_of(known, _ints(-(2**31), 2**31 - 1).map(cls))


def unwrapped(wkt: type[Any]) -> st.SearchStrategy[Any]:
    """The Python values betterproto2 maps a well-known type to."""
    name = wkt.__name__
    if name == "Timestamp":
        return st.datetimes(
            min_value=datetime.datetime(1, 1, 2),
            max_value=datetime.datetime(9999, 12, 30),
            timezones=st.just(_UTC),
        )
    if name == "Duration":
        # betterproto2 converts through floats: keep to what it carries exactly
        return st.timedeltas(
            min_value=datetime.timedelta(days=-10_000), max_value=datetime.timedelta(days=10_000)
        )
    wrapped = {
        "DoubleValue": betterproto2.TYPE_DOUBLE,
        "FloatValue": betterproto2.TYPE_FLOAT,
        "Int64Value": betterproto2.TYPE_INT64,
        "UInt64Value": betterproto2.TYPE_UINT64,
        "Int32Value": betterproto2.TYPE_INT32,
        "UInt32Value": betterproto2.TYPE_UINT32,
        "BoolValue": betterproto2.TYPE_BOOL,
        "StringValue": betterproto2.TYPE_STRING,
        "BytesValue": betterproto2.TYPE_BYTES,
    }
    return scalar(wrapped[name])


def messages(cls: type[Any], descriptor: Any, depth: int = 2) -> st.SearchStrategy[Any]:
    """Instances of betterproto2 class ``cls`` (of type ``descriptor``): every field drawn,
    at most one member per oneof, nested messages down to ``depth``."""
    meta: Any = getattr(cls, "_betterproto")  # noqa: B009 (a class property)
    fields: dict[str, st.SearchStrategy[Any]] = {}
    groups: dict[str, list[tuple[str, st.SearchStrategy[Any]]]] = {}
    for name, m in meta.meta_by_field_name.items():
        fd = descriptor.fields_by_number[m.number]
        strategy = _field(cls, name, m, fd, depth)
        if strategy is None:
            continue
        if m.group and not (m.optional and len(meta.oneof_field_by_group[m.group]) == 1):
            groups.setdefault(m.group, []).append((name, strategy))
        else:
            fields[name] = strategy

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        kwargs = {name: draw(strategy) for name, strategy in fields.items()}
        for members in groups.values():
            index = draw(st.integers(-1, len(members) - 1))
            if index >= 0:
                name, strategy = members[index]
                kwargs[name] = draw(strategy)
        return cls(**kwargs)

    return build()


def _field(cls: type[Any], name: str, m: Any, fd: Any, depth: int) -> st.SearchStrategy[Any] | None:
    meta: Any = getattr(cls, "_betterproto")  # noqa: B009 (a class property)
    if m.proto_type == betterproto2.TYPE_MAP:
        key_meta, value_meta = m.map_meta
        vfd = fd.message_type.fields_by_name["value"]
        value = _single(meta.cls_by_field[f"{name}.value"], value_meta, vfd, depth)
        if value is None:
            return None
        return st.dictionaries(scalar(key_meta.proto_type), value, max_size=_SMALL)
    single = _single(meta.cls_by_field[name], m, fd, depth)
    if m.repeated:
        return st.just([]) if single is None else st.lists(single, max_size=_SMALL)
    if single is None:
        return st.none()
    if m.optional or m.group:
        return st.one_of(st.none(), single)
    return single


def _single(element: Any, m: Any, fd: Any, depth: int) -> st.SearchStrategy[Any] | None:
    if m.proto_type == betterproto2.TYPE_ENUM:
        closed = bool(getattr(fd.enum_type, "is_closed", False))
        return enum(element, closed)
    if m.proto_type != betterproto2.TYPE_MESSAGE:
        return scalar(m.proto_type)
    if m.unwrap is not None:
        return unwrapped(m.unwrap())
    if depth <= 0:
        return None
    return st.deferred(lambda: messages(element, fd.message_type, depth - 1))
