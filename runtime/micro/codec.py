"""Message codecs: protobuf bytes and proto3 JSON, for both message backends.

RPC (through a transport's adapter) and events use the same functions. A message class
is one of:

* a betterproto2 message, the default backend. With protobuf installed
  (``micro-runtime[fast]``) its bytes go through upb (:mod:`micro._upb_codec`): a
  conversion plan per type, built once from the compiled files that the generated micro
  modules embed, strict like upb. Without protobuf, or for a type no plan fits (no
  generated micro module imported that embeds its file, and none given to
  :func:`register_files`), betterproto2's own codec (``bytes(msg)`` / ``Cls.parse``),
  its input checked first by :mod:`micro._wire_check` so that it is as strict as upb
  (stricter on one point: a known field with another wire type is an error, not an
  unknown field). ``MICRO_CODEC=betterproto2`` forces that fallback. JSON takes the same
  road: through upb (protobuf's ``json_format``, the proto3 JSON mapping exactly) where
  the bytes do, else betterproto2's ``to_json`` / ``from_json``;
* a protobuf message from a ``_pb2`` module (``SerializeToString`` / ``FromString``;
  JSON through ``google.protobuf.json_format``, imported only for such messages).

Decoding never lets an arbitrary exception escape: any failure becomes
:class:`DecodeError`, which a server answers with ``INVALID_ARGUMENT`` and a client
raises as an :class:`micro.errors.Error` (500, ``INTERNAL``). Encoding a value that is not
the message type, or (through upb) has a field of the wrong type or out of range, raises
:class:`EncodeError`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from micro.spec import ProtoFile

__all__ = [
    "DecodeError",
    "EncodeError",
    "backend",
    "decode",
    "decode_json",
    "encode",
    "encode_json",
    "register_files",
]

M = TypeVar("M")


class DecodeError(Exception):
    """Bytes (or JSON) received could not be decoded as the expected message."""

    def __init__(self, message_type: type, cause: BaseException) -> None:
        name = getattr(message_type, "__qualname__", repr(message_type))
        detail = " ".join(str(cause).split())  # one line: json_format's run over several
        super().__init__(f"cannot decode {name}: {type(cause).__name__}: {detail}")
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


#: per message class: how to encode and decode it (filled on first use)
_encoders: dict[type, Callable[[Any], bytes]] = {}
_decoders: dict[type, Callable[[bytes], Any]] = {}
#: per betterproto2 message class whose bytes go through upb: its plan's JSON functions
_json: dict[type, tuple[Callable[[Any], str], Callable[[str | bytes], Any]]] = {}
_lock = threading.Lock()


def _fast() -> Any:
    """:mod:`micro._upb_codec`, or None without protobuf (or with ``MICRO_CODEC=betterproto2``)."""
    if os.environ.get("MICRO_CODEC", "").strip().lower() == "betterproto2":
        return None
    try:
        from micro import _upb_codec
    except ImportError:
        return None
    return _upb_codec


def _resolve(message_type: type) -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    """The encode and decode functions of ``message_type``, remembered per class."""
    with _lock:
        found = _encoders.get(message_type), _decoders.get(message_type)
        if found[0] is not None and found[1] is not None:
            return found[0], found[1]
        enc: Callable[[Any], bytes]
        dec: Callable[[bytes], Any]
        if _is_protobuf(message_type):
            enc = message_type.SerializeToString  # type: ignore[attr-defined]
            dec = message_type.FromString  # type: ignore[attr-defined]
        else:
            fast = _fast()
            plan = None
            if fast is not None:
                try:
                    plan = fast.plan_for(message_type)
                except fast.NoPlan:
                    plan = None
            if plan is not None:
                enc, dec = plan.encode, plan.decode
                _json[message_type] = plan.encode_json, plan.decode_json
            else:
                enc = bytes
                dec = _strict_parse(message_type)
        _encoders[message_type] = enc
        _decoders[message_type] = dec
        return enc, dec


def _strict_parse(message_type: type) -> Callable[[bytes], Any]:
    """betterproto2's parser behind the strict wire check (:mod:`micro._wire_check`)."""
    from micro._wire_check import check

    parse = message_type.parse  # type: ignore[attr-defined]

    def decode(data: bytes) -> Any:
        check(data, message_type)
        return parse(data)

    return decode


def backend(message_type: type) -> str:
    """Which codec ``message_type``'s bytes go through: ``"upb"`` (betterproto2 messages
    through the fast codec), ``"betterproto2"`` (its own codec) or ``"protobuf"`` (``_pb2``)."""
    if _is_protobuf(message_type):
        return "protobuf"
    enc, _ = _resolve(message_type)
    return "betterproto2" if enc is bytes else "upb"


def register_files(files: Iterable[ProtoFile]) -> None:
    """Give the fast codec compiled .proto files (``micro.ProtoFile``) for message types
    whose generated micro module is not imported; no-op without protobuf. Types already
    encoded or decoded keep the codec they got."""
    fast = _fast()
    if fast is not None:
        fast.register_files(files)


def reset() -> None:
    """Forget which codec each type uses (tests switching ``MICRO_CODEC``)."""
    with _lock:
        _encoders.clear()
        _decoders.clear()
        _json.clear()


def encode(message: Any, message_type: type) -> bytes:
    """``message`` (an instance of ``message_type``) as protobuf bytes; raises
    :class:`EncodeError`."""
    _check(message, message_type)
    enc = _encoders.get(message_type) or _resolve(message_type)[0]
    try:
        data = enc(message)
    except EncodeError:
        raise
    except (TypeError, ValueError, OverflowError, AttributeError) as exc:
        raise EncodeError(f"cannot encode {type(message).__qualname__}: {exc}") from exc
    if not isinstance(data, bytes):
        raise EncodeError(f"{type(message).__qualname__} serialized to {type(data)}")
    return data


def decode(data: bytes, message_type: type[M]) -> M:
    """Protobuf bytes as a ``message_type``; raises :class:`DecodeError`."""
    try:
        dec = _decoders.get(message_type) or _resolve(message_type)[1]
        message: M = dec(data)
    except Exception as exc:
        raise DecodeError(message_type, exc) from exc
    return message


def _json_codec(
    message_type: type,
) -> tuple[Callable[[Any], str], Callable[[str | bytes], Any]] | None:
    """The fast codec's JSON functions for a betterproto2 type, if its bytes use it."""
    found = _json.get(message_type)
    if found is None and message_type not in _encoders:
        _resolve(message_type)
        found = _json.get(message_type)
    return found


def encode_json(message: Any, message_type: type) -> str:
    """``message`` in the proto3 JSON mapping (camelCase names); raises
    :class:`EncodeError`."""
    _check(message, message_type)
    if _is_protobuf(message_type):
        from google.protobuf import json_format

        return json_format.MessageToJson(message, indent=None)
    fast = _json_codec(message_type)
    try:
        text: str = message.to_json() if fast is None else fast[0](message)
    except (TypeError, ValueError, OverflowError, AttributeError) as exc:
        # through upb also: a Timestamp or Duration out of the JSON mapping's range, a
        # FieldMask path it cannot write
        raise EncodeError(f"cannot encode {type(message).__qualname__} as JSON: {exc}") from exc
    return text


def decode_json(text: str | bytes, message_type: type[M]) -> M:
    """Proto3 JSON (camelCase or proto field names) as a ``message_type``; raises
    :class:`DecodeError`, also for unknown fields."""
    try:
        if _is_protobuf(message_type):
            from google.protobuf import json_format

            parsed: M = json_format.Parse(text, message_type())  # type: ignore[type-var]
        else:
            fast = _json_codec(message_type)
            if fast is None:
                parsed = message_type.from_json(text)  # type: ignore[attr-defined]
            else:
                parsed = fast[1](text)
    except Exception as exc:
        raise DecodeError(message_type, exc) from exc
    return parsed
