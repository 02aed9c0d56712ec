from shop.common.v1 import money_pb2 as _money_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Order(_message.Message):
    __slots__ = ("lines",)
    class Line(_message.Message):
        __slots__ = ("sku", "price")
        SKU_FIELD_NUMBER: _ClassVar[int]
        PRICE_FIELD_NUMBER: _ClassVar[int]
        sku: str
        price: _money_pb2.Money
        def __init__(self, sku: _Optional[str] = ..., price: _Optional[_Union[_money_pb2.Money, _Mapping]] = ...) -> None: ...
    LINES_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedCompositeFieldContainer[Order.Line]
    def __init__(self, lines: _Optional[_Iterable[_Union[Order.Line, _Mapping]]] = ...) -> None: ...
