import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import wrappers_pb2 as _wrappers_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Genre(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GENRE_UNSPECIFIED: _ClassVar[Genre]
    GENRE_FICTION: _ClassVar[Genre]
    GENRE_HISTORY: _ClassVar[Genre]
GENRE_UNSPECIFIED: Genre
GENRE_FICTION: Genre
GENRE_HISTORY: Genre

class Author(_message.Message):
    __slots__ = ("display_name", "born")
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    BORN_FIELD_NUMBER: _ClassVar[int]
    display_name: str
    born: _timestamp_pb2.Timestamp
    def __init__(self, display_name: _Optional[str] = ..., born: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Book(_message.Message):
    __slots__ = ("name", "title", "author", "page_count", "genre", "tags")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    PAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    GENRE_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    name: str
    title: str
    author: Author
    page_count: int
    genre: Genre
    tags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., title: _Optional[str] = ..., author: _Optional[_Union[Author, _Mapping]] = ..., page_count: _Optional[int] = ..., genre: _Optional[_Union[Genre, str]] = ..., tags: _Optional[_Iterable[str]] = ...) -> None: ...

class GetBookRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListFilter(_message.Message):
    __slots__ = ("genre", "title_prefix")
    GENRE_FIELD_NUMBER: _ClassVar[int]
    TITLE_PREFIX_FIELD_NUMBER: _ClassVar[int]
    genre: Genre
    title_prefix: str
    def __init__(self, genre: _Optional[_Union[Genre, str]] = ..., title_prefix: _Optional[str] = ...) -> None: ...

class ListBooksRequest(_message.Message):
    __slots__ = ("parent", "page_size", "tags", "filter", "include_drafts", "published_after", "min_pages")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_DRAFTS_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_AFTER_FIELD_NUMBER: _ClassVar[int]
    MIN_PAGES_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    tags: _containers.RepeatedScalarFieldContainer[str]
    filter: ListFilter
    include_drafts: bool
    published_after: _timestamp_pb2.Timestamp
    min_pages: int
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., tags: _Optional[_Iterable[str]] = ..., filter: _Optional[_Union[ListFilter, _Mapping]] = ..., include_drafts: _Optional[bool] = ..., published_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., min_pages: _Optional[int] = ...) -> None: ...

class ListBooksResponse(_message.Message):
    __slots__ = ("books", "request")
    BOOKS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    books: _containers.RepeatedCompositeFieldContainer[Book]
    request: ListBooksRequest
    def __init__(self, books: _Optional[_Iterable[_Union[Book, _Mapping]]] = ..., request: _Optional[_Union[ListBooksRequest, _Mapping]] = ...) -> None: ...

class CreateBookRequest(_message.Message):
    __slots__ = ("parent", "book", "request_id")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    BOOK_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    parent: str
    book: Book
    request_id: str
    def __init__(self, parent: _Optional[str] = ..., book: _Optional[_Union[Book, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class UpdateBookRequest(_message.Message):
    __slots__ = ("book", "update_mask")
    BOOK_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    book: Book
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, book: _Optional[_Union[Book, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class DeleteBookRequest(_message.Message):
    __slots__ = ("name", "force")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    force: bool
    def __init__(self, name: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class DeleteBookResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: str
    def __init__(self, deleted: _Optional[str] = ...) -> None: ...

class BorrowBookRequest(_message.Message):
    __slots__ = ("name", "reader", "period")
    NAME_FIELD_NUMBER: _ClassVar[int]
    READER_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    name: str
    reader: str
    period: _duration_pb2.Duration
    def __init__(self, name: _Optional[str] = ..., reader: _Optional[str] = ..., period: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class WatchShelfRequest(_message.Message):
    __slots__ = ("parent", "count", "fail_after")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    FAIL_AFTER_FIELD_NUMBER: _ClassVar[int]
    parent: str
    count: int
    fail_after: int
    def __init__(self, parent: _Optional[str] = ..., count: _Optional[int] = ..., fail_after: _Optional[int] = ...) -> None: ...

class InspectRequest(_message.Message):
    __slots__ = ("error_code", "error_detail", "sleep_ms")
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_DETAIL_FIELD_NUMBER: _ClassVar[int]
    SLEEP_MS_FIELD_NUMBER: _ClassVar[int]
    error_code: int
    error_detail: str
    sleep_ms: int
    def __init__(self, error_code: _Optional[int] = ..., error_detail: _Optional[str] = ..., sleep_ms: _Optional[int] = ...) -> None: ...

class InspectReply(_message.Message):
    __slots__ = ("metadata", "time_remaining")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    METADATA_FIELD_NUMBER: _ClassVar[int]
    TIME_REMAINING_FIELD_NUMBER: _ClassVar[int]
    metadata: _containers.ScalarMap[str, str]
    time_remaining: float
    def __init__(self, metadata: _Optional[_Mapping[str, str]] = ..., time_remaining: _Optional[float] = ...) -> None: ...

class Everything(_message.Message):
    __slots__ = ("big", "unsigned_big", "small", "ratio", "flag", "blob", "genre", "numbers", "counts", "when", "how_long", "maybe", "maybe_flag", "text", "author", "snake_case_name")
    class CountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    BIG_FIELD_NUMBER: _ClassVar[int]
    UNSIGNED_BIG_FIELD_NUMBER: _ClassVar[int]
    SMALL_FIELD_NUMBER: _ClassVar[int]
    RATIO_FIELD_NUMBER: _ClassVar[int]
    FLAG_FIELD_NUMBER: _ClassVar[int]
    BLOB_FIELD_NUMBER: _ClassVar[int]
    GENRE_FIELD_NUMBER: _ClassVar[int]
    NUMBERS_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    WHEN_FIELD_NUMBER: _ClassVar[int]
    HOW_LONG_FIELD_NUMBER: _ClassVar[int]
    MAYBE_FIELD_NUMBER: _ClassVar[int]
    MAYBE_FLAG_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    SNAKE_CASE_NAME_FIELD_NUMBER: _ClassVar[int]
    big: int
    unsigned_big: int
    small: int
    ratio: float
    flag: bool
    blob: bytes
    genre: Genre
    numbers: _containers.RepeatedScalarFieldContainer[int]
    counts: _containers.ScalarMap[str, int]
    when: _timestamp_pb2.Timestamp
    how_long: _duration_pb2.Duration
    maybe: _wrappers_pb2.Int64Value
    maybe_flag: _wrappers_pb2.BoolValue
    text: str
    author: Author
    snake_case_name: str
    def __init__(self, big: _Optional[int] = ..., unsigned_big: _Optional[int] = ..., small: _Optional[int] = ..., ratio: _Optional[float] = ..., flag: _Optional[bool] = ..., blob: _Optional[bytes] = ..., genre: _Optional[_Union[Genre, str]] = ..., numbers: _Optional[_Iterable[int]] = ..., counts: _Optional[_Mapping[str, int]] = ..., when: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., how_long: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., maybe: _Optional[_Union[_wrappers_pb2.Int64Value, _Mapping]] = ..., maybe_flag: _Optional[_Union[_wrappers_pb2.BoolValue, _Mapping]] = ..., text: _Optional[str] = ..., author: _Optional[_Union[Author, _Mapping]] = ..., snake_case_name: _Optional[str] = ...) -> None: ...

class RaiseRequest(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class RaiseReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
