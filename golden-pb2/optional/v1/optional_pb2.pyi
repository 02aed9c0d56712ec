from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class Profile(_message.Message):
    __slots__ = ("nickname", "age", "id")
    NICKNAME_FIELD_NUMBER: _ClassVar[int]
    AGE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    nickname: str
    age: int
    id: str
    def __init__(self, nickname: _Optional[str] = ..., age: _Optional[int] = ..., id: _Optional[str] = ...) -> None: ...
