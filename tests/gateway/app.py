"""The `library` service behind the gateway tests (golden/gateway/v1)."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator

import micro
from golden.gateway.v1 import (
    Author,
    Book,
    BorrowBookRequest,
    CreateBookRequest,
    DeleteBookRequest,
    DeleteBookResponse,
    Everything,
    Genre,
    GetBookRequest,
    InspectReply,
    InspectRequest,
    ListBooksRequest,
    ListBooksResponse,
    UpdateBookRequest,
    WatchShelfRequest,
)
from golden.gateway.v1.gateway_micro import LibraryHandler, register_library_handler

#: printed (then the milliseconds) as ``inspect`` starts sleeping, for tests to wait on
SLEEPING = "inspect: sleeping "
BORN = datetime.datetime(1815, 12, 10, tzinfo=datetime.UTC)


def book(name: str, title: str = "") -> Book:
    return Book(
        name=name,
        title=title or f"Title of {name}",
        author=Author(display_name="Ada Lovelace", born=BORN),
        page_count=2**40,
        genre=Genre.FICTION,
        tags=["classic"],
    )


class Library(LibraryHandler):
    def __init__(self, node: str) -> None:
        self.node = node

    async def get_book(self, request: GetBookRequest, context: micro.Context) -> Book:
        if "missing" in request.name:
            raise micro.errors.not_found("library", f"no book {request.name}")
        context.set_header("book-source", f"node {self.node}")
        context.set_trailer("book-checksum", "c0ffee")
        context.set_trailer("book-checksum", "again")
        context.set_trailer("book-raw-bin", b"\x00\xff")
        return book(request.name, f"{request.name} (node {self.node})")

    async def list_books(
        self, request: ListBooksRequest, context: micro.Context
    ) -> ListBooksResponse:
        return ListBooksResponse(books=[book(f"{request.parent}/books/1")], request=request)

    async def create_book(self, request: CreateBookRequest, context: micro.Context) -> Book:
        created = request.book or Book()
        created.name = f"{request.parent}/books/{request.request_id or 'new'}"
        return created

    async def update_book(self, request: UpdateBookRequest, context: micro.Context) -> Book:
        updated = request.book or Book()
        paths = ",".join(request.update_mask.paths) if request.update_mask else ""
        updated.title = f"{updated.title} (mask: {paths})"
        return updated

    async def put_book(self, request: Book, context: micro.Context) -> Book:
        return request

    async def delete_book(
        self, request: DeleteBookRequest, context: micro.Context
    ) -> DeleteBookResponse:
        return DeleteBookResponse(deleted=request.name + (" (forced)" if request.force else ""))

    async def get_title(self, request: GetBookRequest, context: micro.Context) -> Book:
        return book(request.name)

    async def get_author(self, request: GetBookRequest, context: micro.Context) -> Book:
        return book(request.name)

    async def archive_book(self, request: GetBookRequest, context: micro.Context) -> Book:
        archived = book(request.name)
        archived.tags = ["archived"]
        return archived

    async def borrow_book(self, request: BorrowBookRequest, context: micro.Context) -> Book:
        period = request.period.total_seconds() if request.period else 0
        return book(request.name, f"borrowed by {request.reader} for {period:g}s")

    async def watch_shelf(
        self, request: WatchShelfRequest, context: micro.Context
    ) -> AsyncIterator[Book]:
        if request.fail_after < 0:
            raise micro.errors.Error("library", 409, "the shelf is locked")
        context.set_header("shelf-size", str(request.count))
        context.set_trailer("shelf-end", "not copied: the body has begun")
        for i in range(request.count):
            if request.fail_after and i == request.fail_after:
                raise micro.errors.conflict("library", f"the shelf changed after {i} books")
            yield book(f"{request.parent}/books/{i}")
            await asyncio.sleep(0)

    async def inspect(self, request: InspectRequest, context: micro.Context) -> InspectReply:
        if request.sleep_ms:
            print(f"{SLEEPING}{request.sleep_ms} ms", flush=True)  # a test waits for this line
            await asyncio.sleep(request.sleep_ms / 1000)
        if request.error_code:
            raise micro.errors.Error("library", request.error_code, request.error_detail)
        remaining = context.time_remaining()
        metadata = {
            key: value if isinstance(value, str) else value.hex()
            for key, value in context.metadata.items()
        }
        return InspectReply(
            metadata=metadata, time_remaining=-1 if remaining is None else remaining
        )

    async def echo(self, request: Everything, context: micro.Context) -> Everything:
        return request

    async def upload(self, requests: AsyncIterator[Book], context: micro.Context) -> Book:
        titles = [b.title async for b in requests]
        if "locked" in titles:
            raise micro.errors.conflict("library", "the shelf is locked")
        context.set_trailer("upload-count", str(len(titles)))
        return Book(name=f"uploads/{len(titles)}", title=", ".join(titles))

    async def shelve(
        self, requests: AsyncIterator[Book], context: micro.Context
    ) -> AsyncIterator[Book]:
        # one answer per request, as each arrives; "locked" first fails the call before any
        # answer, "boom" fails it midway
        context.set_header("shelve-mode", "duplex")
        async for request in requests:
            if request.title == "boom":
                raise micro.errors.conflict("library", "the shelf fell over")
            if request.title == "locked":
                raise micro.errors.Error("library", 423, "the shelf is locked")
            yield Book(name=f"shelved/{request.title}", title=request.title, tags=request.tags)


def build_service(name: str, node: str) -> micro.Service:
    service = micro.Service(name, metadata={"node": node})
    register_library_handler(service, Library(node))
    return service
