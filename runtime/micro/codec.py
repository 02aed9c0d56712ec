"""The wire codec: protobuf bytes via the message's own methods (betterproto2).

Any class with ``SerializeToString()`` / ``FromString(data)`` (or ``bytes(msg)`` /
``Cls.parse(data)``) works. Decoding never lets an arbitrary exception escape: any
failure becomes :class:`DecodeError`, which the server answers with
``INVALID_ARGUMENT`` and the client raises as an :class:`micro.errors.Error` (500,
``INTERNAL``).
"""

from __future__ import annotations

from typing import Any

from grpclib.encoding.base import CodecBase

__all__ = ["DecodeError", "EncodeError", "MessageCodec"]


class DecodeError(Exception):
    """Bytes received on the wire could not be decoded as the expected message."""

    def __init__(self, message_type: type, cause: BaseException) -> None:
        name = getattr(message_type, "__qualname__", repr(message_type))
        super().__init__(f"cannot decode {name}: {type(cause).__name__}: {cause}")
        self.message_type = message_type


class EncodeError(TypeError):
    """A value could not be encoded as the expected message type."""


class MessageCodec(CodecBase):
    """grpclib codec (content subtype ``proto``) for betterproto2-style messages."""

    __content_subtype__ = "proto"

    def encode(self, message: Any, message_type: Any) -> bytes:
        if not isinstance(message, message_type):
            raise EncodeError(
                f"expected {getattr(message_type, '__qualname__', message_type)}, "
                f"got {type(message).__qualname__}"
            )
        serialize = getattr(message, "SerializeToString", None)
        data = serialize() if serialize is not None else bytes(message)
        if not isinstance(data, bytes):
            raise EncodeError(f"{type(message).__qualname__} serialized to {type(data)}")
        return data

    def decode(self, data: bytes, message_type: Any) -> Any:
        try:
            parse = getattr(message_type, "FromString", None) or message_type.parse
            return parse(data)
        except Exception as exc:
            raise DecodeError(message_type, exc) from exc
