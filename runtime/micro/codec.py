"""Message codecs: protobuf bytes and proto3 JSON, for both message backends.

RPC (through a transport's adapter) and events use the same functions. A message class
is one of:

* a betterproto2 message (``bytes(msg)`` / ``Cls.parse(data)``, ``to_json`` /
  ``from_json``), the default backend;
* a protobuf message from a ``_pb2`` module (``SerializeToString`` / ``FromString``;
  JSON through ``google.protobuf.json_format``, imported only for such messages).

Decoding never lets an arbitrary exception escape: any failure becomes
:class:`DecodeError`, which a server answers with ``INVALID_ARGUMENT`` and a client
raises as an :class:`micro.errors.Error` (500, ``INTERNAL``).
"""

from __future__ import annotations

from typing import Any, TypeVar

__all__ = ["DecodeError", "EncodeError", "decode", "decode_json", "encode", "encode_json"]

M = TypeVar("M")


class DecodeError(Exception):
    """Bytes (or JSON) received could not be decoded as the expected message."""

    def __init__(self, message_type: type, cause: BaseException) -> None:
        name = getattr(message_type, "__qualname__", repr(message_type))
        super().__init__(f"cannot decode {name}: {type(cause).__name__}: {cause}")
        self.message_type = message_type


class EncodeError(TypeError):
    """A value could not be encoded as the expected message type."""


def _check(message: Any, message_type: type) -> None:
    if not isinstance(message, message_type):
        raise EncodeError(
            f"expected {getattr(message_type, '__qualname__', message_type)}, "
            f"got {type(message).__qualname__}"
        )


def _is_protobuf(message_type: type) -> bool:
    """A protobuf (``_pb2``) message class, as opposed to a betterproto2 dataclass."""
    return hasattr(message_type, "DESCRIPTOR") and hasattr(message_type, "FromString")


def encode(message: Any, message_type: type) -> bytes:
    """``message`` (an instance of ``message_type``) as protobuf bytes."""
    _check(message, message_type)
    serialize = getattr(message, "SerializeToString", None)
    data = serialize() if serialize is not None else bytes(message)
    if not isinstance(data, bytes):
        raise EncodeError(f"{type(message).__qualname__} serialized to {type(data)}")
    return data


def decode(data: bytes, message_type: type[M]) -> M:
    """Protobuf bytes as a ``message_type``; raises :class:`DecodeError`."""
    try:
        parse = getattr(message_type, "FromString", None) or message_type.parse  # type: ignore[attr-defined]
        message: M = parse(data)
    except Exception as exc:
        raise DecodeError(message_type, exc) from exc
    return message


def encode_json(message: Any, message_type: type) -> str:
    """``message`` in the proto3 JSON mapping (camelCase names)."""
    _check(message, message_type)
    if _is_protobuf(message_type):
        from google.protobuf import json_format

        return json_format.MessageToJson(message, indent=None)
    text: str = message.to_json()
    return text


def decode_json(text: str | bytes, message_type: type[M]) -> M:
    """Proto3 JSON (camelCase or proto field names) as a ``message_type``; raises
    :class:`DecodeError`, also for unknown fields."""
    try:
        if _is_protobuf(message_type):
            from google.protobuf import json_format

            parsed: M = json_format.Parse(text, message_type())  # type: ignore[type-var]
        else:
            parsed = message_type.from_json(text)  # type: ignore[attr-defined]
    except Exception as exc:
        raise DecodeError(message_type, exc) from exc
    return parsed
