from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class EchoRequest(_message.Message):
    __slots__ = ("text", "fail", "sleep_ms")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    FAIL_FIELD_NUMBER: _ClassVar[int]
    SLEEP_MS_FIELD_NUMBER: _ClassVar[int]
    text: str
    fail: str
    sleep_ms: int
    def __init__(self, text: _Optional[str] = ..., fail: _Optional[str] = ..., sleep_ms: _Optional[int] = ...) -> None: ...

class EchoReply(_message.Message):
    __slots__ = ("text", "metadata", "peer", "deadline_remaining")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TEXT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_REMAINING_FIELD_NUMBER: _ClassVar[int]
    text: str
    metadata: _containers.ScalarMap[str, str]
    peer: str
    deadline_remaining: float
    def __init__(self, text: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., peer: _Optional[str] = ..., deadline_remaining: _Optional[float] = ...) -> None: ...

class CountRequest(_message.Message):
    __slots__ = ("to", "delay_ms")
    TO_FIELD_NUMBER: _ClassVar[int]
    DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    to: int
    delay_ms: int
    def __init__(self, to: _Optional[int] = ..., delay_ms: _Optional[int] = ...) -> None: ...

class CountReply(_message.Message):
    __slots__ = ("n",)
    N_FIELD_NUMBER: _ClassVar[int]
    n: int
    def __init__(self, n: _Optional[int] = ...) -> None: ...

class SumRequest(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: int
    def __init__(self, value: _Optional[int] = ...) -> None: ...

class SumReply(_message.Message):
    __slots__ = ("total", "count")
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    total: int
    count: int
    def __init__(self, total: _Optional[int] = ..., count: _Optional[int] = ...) -> None: ...

class ChatMessage(_message.Message):
    __slots__ = ("text",)
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...
